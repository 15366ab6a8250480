/**
 * Request bodies of the agent's HTTP API v1. Each schema applies the defaults of what a client
 * leaves out, once, where the request enters the agent: `…Body` is what a client may send,
 * `…BodyWithDefaults` what the agent works with.
 */
import { z } from "zod";
import {
  contentPathSchema,
  digestSchema,
  displayNameSchema,
  domainSchema,
  emailOrEmptySchema,
  endpointSchema,
  generationSchema,
  managedBySchema,
  passwordHashSchema,
  passwordSchema,
  serviceNameSchema,
  uniqueList,
} from "./fields";
import { changeSchema, epochSchema, snapshotSchema } from "./records";
import { certificatePemSchema, privateKeyPemSchema, tlsProblems } from "./tls";

/** `PUT /v1/orgs/{org}`: the org's settings; omitted ones take their defaults. */
export const orgSettingsSchema = z.strictObject({
  displayName: displayNameSchema.default(""),
  loadBalanced: z.boolean().default(false),
  secondaries: uniqueList(endpointSchema, "secondary").default([]),
  managedBy: managedBySchema.default(""),
});
export type OrgSettingsInput = z.input<typeof orgSettingsSchema>;
export type OrgSettings = z.output<typeof orgSettingsSchema>;

/**
 * `PUT /v1/orgs/{org}/users/{username}`: omitted settings take their defaults; an omitted
 * password keeps the stored one (a new user needs one).
 */
export const userBodySchema = z
  .strictObject({
    password: passwordSchema.optional(),
    passwordHash: passwordHashSchema.optional(),
    displayName: displayNameSchema.default(""),
    email: emailOrEmptySchema.default(""),
    enabled: z.boolean().default(true),
    access: uniqueList(serviceNameSchema, "service").default([]),
    managedBy: managedBySchema.default(""),
  })
  .refine((body) => body.password === undefined || body.passwordHash === undefined, {
    message: "give either password or passwordHash, not both",
    path: ["password"],
  });
export type UserBody = z.input<typeof userBodySchema>;
export type UserBodyWithDefaults = z.output<typeof userBodySchema>;

const serviceCommon = {
  enabled: z.boolean().default(true),
  managedBy: managedBySchema.default(""),
};

/** A website's uploaded certificate (the site's first, then its issuers) and its key. */
const tlsMaterialSchema = z.strictObject({
  certificate: certificatePemSchema,
  privateKey: privateKeyPemSchema,
});

export const websiteBodySchema = z.strictObject({
  kind: z.literal("website"),
  domains: uniqueList(domainSchema, "domain").min(1, "must list at least one domain"),
  documentRoot: contentPathSchema,
  tls: tlsMaterialSchema.optional(),
  /** With tls: redirect plain HTTP to HTTPS (default true). */
  httpsRedirect: z.boolean().optional(),
  /** With tls: send Strict-Transport-Security (default false: browsers remember it for a year). */
  hsts: z.boolean().optional(),
  ...serviceCommon,
});

/** A website's TLS settings as stored (defaults applied), or undefined for an HTTP-only site. */
export const websiteTlsOf = (body: z.output<typeof websiteBodySchema>) =>
  body.tls && { ...body.tls, httpsRedirect: body.httpsRedirect ?? true, hsts: body.hsts ?? false };

/**
 * A website's TLS settings against its domains: the certificate is readable, matches its key, is
 * not expired, covers every domain and lists its chain in order; redirect and HSTS need it. Each
 * problem names its field and quotes nothing of the key or certificate.
 */
export function websiteTlsIssues(
  site: { domains?: unknown; tls?: unknown; httpsRedirect?: unknown; hsts?: unknown },
  addIssue: (issue: { path: (string | number)[]; message: string }) => void,
  now = new Date(),
): void {
  for (const flag of ["httpsRedirect", "hsts"] as const) {
    if (site[flag] !== undefined && site.tls === undefined) addIssue({ path: [flag], message: "needs tls" });
  }
  // Material that is not PEM (or not known yet, in a preview) has its issue from the field's own schema.
  const material = tlsMaterialSchema.safeParse(site.tls);
  if (!material.success) return;
  const domains = Array.isArray(site.domains) ? site.domains.filter((d): d is string => typeof d === "string") : [];
  for (const problem of tlsProblems(material.data.certificate, material.data.privateKey, domains, now)) {
    addIssue({ path: ["tls", problem.path], message: problem.message });
  }
}

export const ftpBodySchema = z.strictObject({
  kind: z.literal("ftp"),
  rootPath: contentPathSchema,
  writable: z.boolean().default(false),
  ...serviceCommon,
});

/** `PUT /v1/orgs/{org}/services/{service}`: a website or an FTP service. */
export const serviceBodySchema = z
  .discriminatedUnion("kind", [websiteBodySchema, ftpBodySchema])
  .superRefine((body, ctx) => {
    if (body.kind === "website") websiteTlsIssues(body, (issue) => ctx.addIssue({ code: "custom", ...issue }));
  });
export type ServiceBody = z.input<typeof serviceBodySchema>;
export type ServiceBodyWithDefaults = z.output<typeof serviceBodySchema>;

/** `PUT /v1/orgs/{org}/replica`: a snapshot plus the primary it came from. */
export const replicaBodySchema = snapshotSchema.extend({ primary: endpointSchema });
export type ReplicaBody = z.infer<typeof replicaBodySchema>;

/** `POST /v1/orgs/{org}/replica/changes`. */
export const replicaChangesBodySchema = z.strictObject({
  baseGeneration: generationSchema,
  changes: z.array(changeSchema).max(10_000),
  /** The digest the copy must have after applying the changes (the primary's at that generation). */
  digest: digestSchema,
  /** The primary sending the changes: a copy taken from another primary refuses them (409). */
  primary: endpointSchema.optional(),
  /**
   * The sending primary's epoch: lower than the copy's → 409 stale_epoch; higher → the copy now
   * follows this primary (the delta re-parents it after a failover or move).
   */
  epoch: epochSchema,
});
export type ReplicaChangesBody = z.infer<typeof replicaChangesBodySchema>;

/**
 * `POST /v1/orgs/{org}/promote`: make this node's secondary copy the org's primary, at the copy's
 * generation, with a raised epoch. `generation` and `digest` are the copy as the caller saw it
 * (409 if it has changed since).
 */
export const promoteBodySchema = z.strictObject({
  epoch: z.number().int().positive(),
  generation: generationSchema,
  digest: digestSchema,
});
export type PromoteBody = z.infer<typeof promoteBodySchema>;

/**
 * `PUT /v1/orgs/{org}/services/{service}/acme-challenges/{token}`: the key authorization to serve
 * at `/.well-known/acme-challenge/{token}` (RFC 8555 §8.3: the token, '.', the account key's
 * SHA-256 JWK thumbprint in base64url). Checked against the path's token by the route.
 */
export const acmeChallengeBodySchema = z.strictObject({
  keyAuthorization: z
    .string()
    .regex(/^[A-Za-z0-9_-]{22,128}\.[A-Za-z0-9_-]{43}$/, "must be '<token>.<43 base64url characters>'"),
});
