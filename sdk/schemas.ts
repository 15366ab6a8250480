/**
 * The zod schemas shared by the SDK, the dynamic provider (`check`) and the hosting agent
 * (request validation). One schema per input shape; every rule that keeps a value from
 * injecting into nginx / FTP configuration or escaping an org's content folder lives here.
 */
import { z } from "zod";
import { CRYPT_SHA512_HASH } from "./password";

/** The value Pulumi sends for inputs that are not known yet during preview. */
export const UNKNOWN_VALUE = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

const DNS_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
/** Printable text without control characters, quotes, `$`, `;`, braces or backslashes. */
// eslint-disable-next-line no-control-regex -- control characters are exactly what this rejects
const SAFE_TEXT = /^[^\u0000-\u001f\u007f"'`$;{}\\]*$/;
const PATH_SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;

export const orgNameSchema = z
  .string()
  .regex(DNS_LABEL, "must be a DNS label: 1-63 lowercase letters, digits or '-', not starting or ending with '-'");

export const serviceNameSchema = z
  .string()
  .regex(DNS_LABEL, "must be a DNS label: 1-63 lowercase letters, digits or '-', not starting or ending with '-'");

export const usernameSchema = z
  .string()
  .regex(
    /^[a-z][a-z0-9._-]{0,31}$/,
    "must start with a lowercase letter and contain only lowercase letters, digits, '.', '_' or '-' (at most 32)",
  );

export const domainSchema = z
  .string()
  .max(253, "must be at most 253 characters")
  .regex(
    /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$/,
    "must be a lowercase DNS name such as www.example.com (letters, digits, '-' and '.')",
  );

/**
 * A folder relative to the organization's content folder on the NAS: "." for the folder itself,
 * otherwise '/'-separated segments that cannot be "..", hidden, absolute or contain odd characters.
 */
export const contentPathSchema = z
  .string()
  .max(255, "must be at most 255 characters")
  .refine(
    (path) => path === "." || (path.length > 0 && path.split("/").every((segment) => PATH_SEGMENT.test(segment))),
    "must be '.' or a relative path of segments made of letters, digits, '.', '_' or '-' (no '..', no leading '/' or '.')",
  );

export const displayNameSchema = z
  .string()
  .max(128, "must be at most 128 characters")
  .regex(SAFE_TEXT, "must not contain control characters, quotes, '$', ';', braces or backslashes");

export const emailSchema = z.email("must be an email address").max(254);
/** On the wire "" clears an email. */
const emailOrEmptySchema = z.union([z.literal(""), emailSchema], { error: "must be an email address or empty" });

export const passwordSchema = z
  .string()
  .min(8, "must be at least 8 characters")
  .max(128, "must be at most 128 characters")
  // eslint-disable-next-line no-control-regex -- control characters are exactly what this rejects
  .regex(/^[^\u0000-\u001f\u007f]*$/, "must not contain control characters");

/** crypt(3) SHA-512 ("$6$"), the hash pure-ftpd verifies; the only form a password is stored in. */
export const passwordHashSchema = z
  .string()
  .regex(CRYPT_SHA512_HASH, "must be a crypt(3) SHA-512 hash ($6$salt$hash, rounds from 1000 if given)");

/** An agent's base URL: http(s)://host[:port] with no credentials, path, query or fragment. */
export const endpointSchema = z
  .string()
  .max(2048)
  .refine((value) => {
    try {
      const url = new URL(value);
      return (
        (url.protocol === "http:" || url.protocol === "https:") &&
        url.username === "" &&
        url.password === "" &&
        (url.pathname === "/" || url.pathname === "") &&
        url.search === "" &&
        url.hash === ""
      );
    } catch {
      return false;
    }
  }, "must be an agent URL such as https://host:8443 (http or https, no path, query or credentials)");

/** Canonical form of an endpoint, so "http://h:1/" and "http://h:1" are the same node. */
export function normalizeEndpoint(endpoint: string): string {
  const url = new URL(endpoint);
  return `${url.protocol}//${url.host}`;
}

/** A node's name (an agent's --name): its X-Served-By header and its server name on the load balancer. */
export const nodeNameSchema = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/,
    "must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit",
  );

/** A serving address "host:port" (IPv4 or DNS name), as HAProxy's `bind` and `server` take it. */
export const listenAddressSchema = z
  .string()
  .regex(
    /^(?:(?:\d{1,3}\.){3}\d{1,3}|[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*):(?:[1-9]\d{0,4})$/,
    "must be host:port (an IPv4 address or DNS name, and a port)",
  )
  .refine((address) => Number(address.split(":")[1]) <= 65535, "port must be at most 65535");

const portSchema = z.number().int().min(1).max(65535);

/** An FTP server's passive port range `[low, high]`, as pure-ftpd's `-p low:high` takes it. */
export const portRangeSchema = z
  .tuple([portSchema, portSchema])
  .refine(([low, high]) => low <= high, "must be [low, high] with low <= high");
export type PortRange = z.infer<typeof portRangeSchema>;

const uniqueList = <T extends z.ZodType<string>>(item: T, what: string) =>
  z.array(item).refine((values) => new Set(values).size === values.length, `must not list the same ${what} twice`);

/** Who manages an object on an agent: the stack and resource that created it. */
export const managedBySchema = z
  .string()
  .max(512)
  .regex(SAFE_TEXT, "must not contain control characters, quotes, '$', ';', braces or backslashes");

// ---------------------------------------------------------------------------------------------
// Agent request bodies (HTTP API v1).
// ---------------------------------------------------------------------------------------------

export const orgSettingsSchema = z.strictObject({
  displayName: displayNameSchema.optional(),
  loadBalanced: z.boolean().optional(),
  secondaries: uniqueList(endpointSchema, "secondary").optional(),
  managedBy: managedBySchema.optional(),
});
export type OrgSettingsInput = z.infer<typeof orgSettingsSchema>;

export const userBodySchema = z
  .strictObject({
    password: passwordSchema.optional(),
    passwordHash: passwordHashSchema.optional(),
    displayName: displayNameSchema.optional(),
    email: emailOrEmptySchema.optional(),
    enabled: z.boolean().optional(),
    access: uniqueList(serviceNameSchema, "service").optional(),
    managedBy: managedBySchema.optional(),
  })
  .refine((body) => body.password === undefined || body.passwordHash === undefined, {
    message: "give either password or passwordHash, not both",
    path: ["password"],
  });
export type UserBody = z.infer<typeof userBodySchema>;

const serviceCommon = {
  enabled: z.boolean().optional(),
  managedBy: managedBySchema.optional(),
};

export const websiteBodySchema = z.strictObject({
  kind: z.literal("website"),
  domains: uniqueList(domainSchema, "domain").min(1, "must list at least one domain"),
  documentRoot: contentPathSchema,
  ...serviceCommon,
});

export const ftpBodySchema = z.strictObject({
  kind: z.literal("ftp"),
  rootPath: contentPathSchema,
  writable: z.boolean().optional(),
  ...serviceCommon,
});

export const serviceBodySchema = z.discriminatedUnion("kind", [websiteBodySchema, ftpBodySchema]);
export type ServiceBody = z.infer<typeof serviceBodySchema>;

// ---------------------------------------------------------------------------------------------
// Canonical replicated records: what a snapshot holds and what the digest covers.
// ---------------------------------------------------------------------------------------------

export const orgRecordSchema = z.strictObject({
  name: orgNameSchema,
  displayName: z.string(),
  loadBalanced: z.boolean(),
  secondaries: z.array(endpointSchema),
  managedBy: z.string(),
});
export type OrgRecord = z.infer<typeof orgRecordSchema>;

export const userRecordSchema = z.strictObject({
  username: usernameSchema,
  passwordHash: passwordHashSchema,
  displayName: z.string(),
  email: z.string(),
  enabled: z.boolean(),
  access: z.array(serviceNameSchema),
  managedBy: z.string(),
});
export type UserRecord = z.infer<typeof userRecordSchema>;

export const serviceRecordSchema = z.discriminatedUnion("kind", [
  z.strictObject({
    name: serviceNameSchema,
    kind: z.literal("website"),
    enabled: z.boolean(),
    domains: z.array(domainSchema),
    documentRoot: contentPathSchema,
    managedBy: z.string(),
  }),
  z.strictObject({
    name: serviceNameSchema,
    kind: z.literal("ftp"),
    enabled: z.boolean(),
    rootPath: contentPathSchema,
    writable: z.boolean(),
    managedBy: z.string(),
  }),
]);
export type ServiceRecord = z.infer<typeof serviceRecordSchema>;

/**
 * An org's epoch: raised each time another node becomes its primary (failover, move), so a node
 * that still believes it is the primary at a lower epoch is fenced (its replication is refused).
 * Absent (an older agent or client) means 0.
 */
export const epochSchema = z.number().int().nonnegative().default(0);

/** An org's whole replicated configuration at one generation. */
export const snapshotSchema = z.strictObject({
  generation: z.number().int().nonnegative(),
  digest: z.string().regex(/^[0-9a-f]{64}$/),
  /** The primary's epoch: a copy following a higher epoch refuses it (409 stale_epoch). */
  epoch: epochSchema,
  org: orgRecordSchema,
  users: z.array(userRecordSchema),
  services: z.array(serviceRecordSchema),
});
export type Snapshot = z.infer<typeof snapshotSchema>;

/** `PUT /v1/orgs/{org}/replica`: a snapshot plus the primary it came from. */
export const replicaBodySchema = snapshotSchema.extend({ primary: endpointSchema });
export type ReplicaBody = z.infer<typeof replicaBodySchema>;

/** One entry of an org's change log: the full resulting record, so replay is idempotent. */
export const changeSchema = z.discriminatedUnion("type", [
  z.strictObject({ generation: z.number().int().positive(), type: z.literal("org.put"), org: orgRecordSchema }),
  z.strictObject({ generation: z.number().int().positive(), type: z.literal("user.put"), user: userRecordSchema }),
  z.strictObject({ generation: z.number().int().positive(), type: z.literal("user.delete"), username: usernameSchema }),
  z.strictObject({
    generation: z.number().int().positive(),
    type: z.literal("service.put"),
    service: serviceRecordSchema,
  }),
  z.strictObject({
    generation: z.number().int().positive(),
    type: z.literal("service.delete"),
    name: serviceNameSchema,
  }),
]);
export type Change = z.infer<typeof changeSchema>;

/** `POST /v1/orgs/{org}/replica/changes`. */
export const replicaChangesBodySchema = z.strictObject({
  baseGeneration: z.number().int().nonnegative(),
  changes: z.array(changeSchema).max(10_000),
  /** The digest the copy must have after applying the changes (the primary's at that generation). */
  digest: z.string().regex(/^[0-9a-f]{64}$/),
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
  generation: z.number().int().nonnegative(),
  digest: z.string().regex(/^[0-9a-f]{64}$/),
});
export type PromoteBody = z.infer<typeof promoteBodySchema>;

/** `GET /v1/orgs/{org}`. */
export const orgStatusSchema = z.object({
  name: orgNameSchema,
  displayName: z.string(),
  role: z.enum(["primary", "secondary"]),
  primary: z.string().optional(),
  secondaries: z.array(z.string()),
  loadBalanced: z.boolean(),
  generation: z.number().int().nonnegative(),
  digest: z.string(),
  /** The org's epoch as this node holds it (a copy: its primary's when it was last synced). */
  epoch: epochSchema,
  /** Secondary copies only: a forced local edit (or any change not made by a sync) since the last sync. */
  drifted: z.boolean(),
  /** Secondary copies only: when a sync last wrote this copy (ISO 8601). */
  lastSyncedAt: z.string().optional(),
  managedBy: z.string(),
});
export type OrgStatus = z.infer<typeof orgStatusSchema>;

/** Error body of every non-2xx agent answer. */
export const apiErrorSchema = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    details: z.array(z.object({ path: z.string(), message: z.string() })).default([]),
  }),
});
export type ApiError = z.infer<typeof apiErrorSchema>;

// ---------------------------------------------------------------------------------------------
// Resource inputs: what `check` validates before anything runs.
// ---------------------------------------------------------------------------------------------

export const syncTriggerSchema = z.union([z.string().max(256), z.number()]);

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

export const webServiceInputsSchema = z.discriminatedUnion("kind", [
  z.strictObject({
    ...webServiceCommon,
    kind: z.literal("website"),
    domains: uniqueList(domainSchema, "domain").min(1, "must list at least one domain"),
    documentRoot: contentPathSchema,
  }),
  z.strictObject({
    ...webServiceCommon,
    kind: z.literal("ftp"),
    rootPath: contentPathSchema,
    writable: z.boolean().optional(),
  }),
]);
export type WebServiceInputs = z.infer<typeof webServiceInputsSchema>;

/** Where one secondary stands against its primary. */
export const secondaryStateSchema = z.enum(["in-sync", "behind", "drifted", "missing", "unreachable"]);
export type SecondaryState = z.infer<typeof secondaryStateSchema>;

export interface SecondarySyncStatus {
  endpoint: string;
  state: SecondaryState;
  generation: number;
  digest: string;
  lastSyncedAt: string;
  error?: string;
}

/**
 * A former primary of an org (before a failover or move) that may still hold it: kept in the
 * org's outputs until it is fenced — its org removed, or demoted into a copy of the new primary.
 * `unreachable`: not answering (it may come back still believing it is the primary);
 * `stale-primary`: it holds the org as primary at a lower epoch (secondaries refuse its replication);
 * `stale-copy`: it holds a copy the org no longer lists.
 */
export interface FencingStatus {
  endpoint: string;
  state: "unreachable" | "stale-primary" | "stale-copy";
  /** The epoch and generation it holds the org at, when it answered. */
  epoch?: number;
  generation?: number;
  error?: string;
}

// ---------------------------------------------------------------------------------------------
// Load balancer role: an agent on the LB host runs HAProxy in front of an org's serving nodes.
// ---------------------------------------------------------------------------------------------

/** One serving node of a route: where its web server and FTP server answer, and its share of the load. */
export const balancerBackendSchema = z
  .strictObject({
    /** The node's name: the server name on the load balancer, shown by `lbhosting status`. */
    name: nodeNameSchema,
    /** Where its web server serves the org's sites. */
    http: listenAddressSchema.optional(),
    /** Where its FTP server listens (control connections). */
    ftp: listenAddressSchema.optional(),
    /** Its FTP server's passive ports; they must not overlap another node's (data connections are routed by port). */
    passivePorts: portRangeSchema.optional(),
    /** Relative share of new connections (HAProxy weight, default 1). */
    weight: z.number().int().min(1).max(256).optional(),
  })
  .refine((backend) => backend.http !== undefined || backend.ftp !== undefined, {
    message: "must give http, ftp or both",
    path: ["http"],
  })
  .refine((backend) => (backend.ftp === undefined) === (backend.passivePorts === undefined), {
    message: "ftp and passivePorts go together (FTP through the load balancer needs passive mode)",
    path: ["passivePorts"],
  });
export type BalancerBackend = z.infer<typeof balancerBackendSchema>;

const overlaps = (a: PortRange, b: PortRange): boolean => a[0] <= b[1] && b[0] <= a[1];

/**
 * `PUT /v1/balancer/{org}`: the org's website domains, its FTP address on the load balancer, and
 * the nodes serving them.
 */
export const balancerRouteSchema = z
  .strictObject({
    domains: uniqueList(domainSchema, "domain"),
    backends: z.array(balancerBackendSchema).min(1, "must list at least one backend"),
    /** Where the load balancer accepts the org's FTP sessions; passive data ports are bound on the same host. */
    ftp: z.strictObject({ listen: listenAddressSchema }).optional(),
  })
  .superRefine((route, ctx) => {
    if (route.domains.length === 0 && route.ftp === undefined) {
      ctx.addIssue({ code: "custom", path: ["domains"], message: "must list at least one domain unless ftp is given" });
    }
    route.backends.forEach((backend, index) => {
      const earlier = route.backends.slice(0, index);
      if (earlier.some((other) => other.name === backend.name)) {
        ctx.addIssue({ code: "custom", path: ["backends", index, "name"], message: "must not name a node twice" });
      }
      const range = backend.passivePorts;
      const clash = range && earlier.find((other) => other.passivePorts && overlaps(other.passivePorts, range));
      if (clash) {
        ctx.addIssue({
          code: "custom",
          path: ["backends", index, "passivePorts"],
          message: `must not overlap the passive ports of ${clash.name} (data connections are routed by port)`,
        });
      }
    });
    if (route.domains.length > 0 && !route.backends.some((backend) => backend.http !== undefined)) {
      ctx.addIssue({
        code: "custom",
        path: ["backends"],
        message: "must include a node with http to serve the domains",
      });
    }
    if (route.ftp && !route.backends.some((backend) => backend.ftp !== undefined)) {
      ctx.addIssue({ code: "custom", path: ["ftp"], message: "needs a backend with ftp and passivePorts" });
    }
  });
export type BalancerRoute = z.infer<typeof balancerRouteSchema>;

/** `GET /v1/node`: what the provider needs to know of a node to route traffic to it. */
export const nodeInfoSchema = z.object({
  name: z.string(),
  version: z.string(),
  /** Where this node's nginx serves the rendered sites, or null when it renders config only. */
  httpListen: z.string().nullable(),
  /** Where this node's FTP server listens, or null. */
  ftpListen: z.string().nullable(),
  /** Its FTP server's passive port range, or null (older agents leave it out). */
  ftpPassivePorts: portRangeSchema.nullable().optional(),
});
export type NodeInfo = z.infer<typeof nodeInfoSchema>;

/** How HAProxy sees one node for one kind of traffic, right now. */
export const serverViewSchema = z.object({
  /** HAProxy's status: "UP", "DOWN", "UP 1/3" (failing checks), "DOWN 1/2" (passing again), "DRAIN", "MAINT". */
  status: z.string(),
  /** Whether HAProxy sends it new connections: UP and passing its health check. */
  healthy: z.boolean(),
  /** Connections open to it now, over every HAProxy worker (old ones still finishing included). */
  active: z.number().int().nonnegative(),
});
export type ServerView = z.infer<typeof serverViewSchema>;

/** `GET /v1/balancer/{org}/status`: per node of the route, its web and FTP servers as HAProxy sees them. */
export const balancerStatusSchema = z.object({
  org: z.string(),
  nodes: z.array(
    z.object({
      name: z.string(),
      web: serverViewSchema.optional(),
      ftp: serverViewSchema.optional(),
    }),
  ),
});
export type BalancerStatus = z.infer<typeof balancerStatusSchema>;
