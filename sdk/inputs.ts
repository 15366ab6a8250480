/**
 * The resource inputs' schemas: what `check` validates before anything runs. They are made of the
 * wire contract's field rules, so an input `check` accepts is one the agent accepts too.
 */
import { z } from "zod";
import {
  contentPathSchema,
  displayNameSchema,
  emailSchema,
  endpointSchema,
  listenAddressSchema,
  managedBySchema,
  normalizeEndpoint,
  orgNameSchema,
  passwordSchema,
  serviceNameSchema,
  uniqueList,
  usernameSchema,
} from "../wire/fields";
import {
  ftpBodySchema,
  orgSettingsSchema,
  userBodySchema,
  websiteBodySchema,
  websiteTlsIssues,
} from "../wire/requests";

/** The value Pulumi sends for inputs that are not known yet during preview. */
export const UNKNOWN_VALUE = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

const syncTriggerSchema = z.union([z.string().max(256), z.number()]);

export const organizationInputsSchema = z
  .strictObject({
    name: orgNameSchema,
    displayName: displayNameSchema.optional(),
    primary: endpointSchema,
    secondaries: uniqueList(endpointSchema, "secondary").optional(),
    loadBalanced: z.boolean().optional(),
    syncTrigger: syncTriggerSchema.optional(),
    adopt: z.boolean().optional(),
    loadBalancer: endpointSchema.optional(),
    loadBalancerFtp: listenAddressSchema.optional(),
    nodeWeights: z.record(endpointSchema, z.number().int().min(1).max(256)).optional(),
    allowDataLoss: z.boolean().optional(),
    managedBy: managedBySchema.optional(),
  })
  .superRefine((org, ctx) => {
    if (org.loadBalancerFtp !== undefined && org.loadBalancer === undefined) {
      ctx.addIssue({ code: "custom", path: ["loadBalancerFtp"], message: "needs loadBalancer" });
    }
    const nodes = [org.primary, ...(org.secondaries ?? [])].map(normalizeEndpoint);
    for (const endpoint of Object.keys(org.nodeWeights ?? {})) {
      if (!endpointSchema.safeParse(endpoint).success || !nodes.includes(normalizeEndpoint(endpoint))) {
        ctx.addIssue({
          code: "custom",
          path: ["nodeWeights", endpoint],
          message: "must name the primary or a secondary",
        });
      }
    }
    if (org.loadBalanced && (org.secondaries ?? []).length === 0) {
      ctx.addIssue({
        code: "custom",
        path: ["loadBalanced"],
        message: "loadBalanced: true requires at least one secondary",
      });
    }
    if (org.secondaries?.some((secondary) => normalizeEndpoint(secondary) === normalizeEndpoint(org.primary))) {
      ctx.addIssue({ code: "custom", path: ["secondaries"], message: "must not list the primary" });
    }
  });
export type OrganizationInputs = z.infer<typeof organizationInputsSchema>;

/** How users and services name their organization: its name, primary agent and load balancer. */
export const orgRefSchema = z.object({
  name: orgNameSchema,
  primary: endpointSchema,
  loadBalancer: endpointSchema.optional(),
  /** Where the load balancer accepts the org's FTP sessions (the FTP services' URLs). */
  loadBalancerFtp: listenAddressSchema.optional(),
});
export type OrgRef = z.infer<typeof orgRefSchema>;

export const orgUserInputsSchema = z.strictObject({
  organization: orgRefSchema,
  username: usernameSchema,
  password: passwordSchema,
  displayName: displayNameSchema.optional(),
  email: emailSchema.optional(),
  enabled: z.boolean().optional(),
  access: uniqueList(serviceNameSchema, "service").optional(),
  adopt: z.boolean().optional(),
  managedBy: managedBySchema.optional(),
});
export type OrgUserInputs = z.infer<typeof orgUserInputsSchema>;

const webServiceCommon = {
  organization: orgRefSchema,
  name: serviceNameSchema,
  enabled: z.boolean().optional(),
  adopt: z.boolean().optional(),
  managedBy: managedBySchema.optional(),
};

/**
 * `tls: { acme }`: the provider obtains the certificate from an ACME server (provider/acme.ts) and
 * uploads it as `{ certificate, privateKey }`; the agent never sees this shape.
 */
export const acmeSettingsSchema = z.strictObject({
  email: emailSchema,
  /** The ACME directory URL (default: Let's Encrypt's production directory). */
  directory: z
    .url({ protocol: /^https$/, error: "must be an https:// URL" })
    .max(2048)
    .optional(),
  /** Days before its expiry a certificate is renewed (default 30). */
  renewBefore: z.number().int().min(1).max(3650).optional(),
});
export type AcmeSettings = z.infer<typeof acmeSettingsSchema>;

export const webServiceInputsSchema = z
  .discriminatedUnion("kind", [
    z.strictObject({
      ...webServiceCommon,
      ...websiteBodySchema.pick({
        kind: true,
        domains: true,
        documentRoot: true,
        httpsRedirect: true,
        hsts: true,
      }).shape,
      tls: z.union([websiteBodySchema.shape.tls.unwrap(), z.strictObject({ acme: acmeSettingsSchema })]).optional(),
    }),
    z.strictObject({
      ...webServiceCommon,
      kind: z.literal("ftp"),
      rootPath: contentPathSchema,
      writable: z.boolean().optional(),
    }),
  ])
  .superRefine((inputs, ctx) => {
    if (inputs.kind === "website") websiteTlsIssues(inputs, (issue) => ctx.addIssue({ code: "custom", ...issue }));
  });
export type WebServiceInputs = z.infer<typeof webServiceInputsSchema>;

/**
 * SyncCheck: the organization it reads, and one short value standing for every member it waits
 * for (`<count>:<hash>`, made by the SDK from their ids), so its state does not grow with them.
 */
export const syncCheckInputsSchema = z.strictObject({
  organization: orgRefSchema,
  after: z
    .string()
    .regex(/^\d+:[0-9a-f]{16}$/, "must be '<count>:<16 hex digits>', as the SDK makes it")
    .optional(),
});
export type SyncCheckInputs = z.infer<typeof syncCheckInputsSchema>;

/**
 * OrgAccess: organization tokens for one org on the nodes it may live on (and on its load
 * balancer, which then accepts those nodes as the org's backends).
 */
export const orgAccessInputsSchema = z.strictObject({
  organization: orgNameSchema,
  nodes: uniqueList(endpointSchema, "node").pipe(z.array(z.string()).min(1, "must list at least one node")),
  loadBalancer: endpointSchema.optional(),
  label: managedBySchema.optional(),
});
export type OrgAccessInputs = z.infer<typeof orgAccessInputsSchema>;

/**
 * What each setting a program may leave out means: the agent's own defaults, read once from its
 * request schemas (wire/requests.ts), so the provider and the agent apply the same.
 */
export const organizationDefaults = {
  ...orgSettingsSchema.parse({}),
  // Provider-side settings, which the agent never sees.
  nodeWeights: {} as Record<string, number>,
  allowDataLoss: false,
};
export const orgUserDefaults = z.object(userBodySchema.shape).omit({ password: true, passwordHash: true }).parse({});
export const webServiceDefaults = {
  website: websiteBodySchema.pick({ enabled: true, managedBy: true }).parse({}),
  ftp: ftpBodySchema.pick({ enabled: true, managedBy: true, writable: true }).parse({}),
};

/**
 * Inputs with each setting left out at its default: what an operation compares and sends, where
 * the inputs enter it. Never stored: state keeps the inputs as the program gave them.
 */
export function withDefaults<T extends object, D extends object>(inputs: T, defaults: D): T & D {
  const given = Object.fromEntries(Object.entries(inputs).filter(([, value]) => value !== undefined));
  return { ...defaults, ...given } as T & D;
}
