/**
 * The load-balancer role's part of the wire contract: an org's route (its website domains, its FTP
 * address and the nodes serving them) and how HAProxy sees each node.
 */
import { z } from "zod";
import {
  domainSchema,
  ftpMaxSessionsSchema,
  listenAddressSchema,
  nodeNameSchema,
  portRangeSchema,
  type PortRange,
  uniqueList,
} from "./fields";

/** Where a node serves: its web server, its FTP server (with passive ports) and its FTP session limit. */
const backendAddressFields = {
  /** Where its web server serves the org's sites. */
  http: listenAddressSchema.optional(),
  /** Where its web server serves the org's sites over HTTPS (the load balancer passes TLS through). */
  https: listenAddressSchema.optional(),
  /** Where its FTP server listens (control connections). */
  ftp: listenAddressSchema.optional(),
  /** Its FTP server's passive ports; they must not overlap another node's (data connections are routed by port). */
  passivePorts: portRangeSchema.optional(),
  /** Its FTP server's session limit (pure-ftpd's -c, the agent's --ftp-max-sessions): beyond it sessions queue at the load balancer. */
  maxSessions: ftpMaxSessionsSchema.optional(),
};

type BackendAddresses = {
  http?: string;
  https?: string;
  ftp?: string;
  passivePorts?: PortRange;
  maxSessions?: number;
};

/** The rules every set of backend addresses keeps, registered or routed. */
function withAddressRules<T extends z.ZodType<BackendAddresses>>(schema: T) {
  return schema
    .refine((backend) => backend.http !== undefined || backend.ftp !== undefined, {
      message: "must give http, ftp or both",
      path: ["http"],
    })
    .refine((backend) => (backend.ftp === undefined) === (backend.passivePorts === undefined), {
      message: "ftp and passivePorts go together (FTP through the load balancer needs passive mode)",
      path: ["passivePorts"],
    })
    .refine((backend) => backend.maxSessions === undefined || backend.ftp !== undefined, {
      message: "needs ftp (it limits the node's FTP sessions)",
      path: ["maxSessions"],
    })
    .refine((backend) => backend.https === undefined || backend.http !== undefined, {
      message: "needs http (the load balancer checks a node's sites over HTTP too)",
      path: ["https"],
    });
}

/** A node's addresses as an administrator registers them with a load balancer (wire/access.ts). */
export const backendAddressesSchema = withAddressRules(z.strictObject(backendAddressFields));

/** One serving node of a route: where its web server and FTP server answer, and its share of the load. */
export const balancerBackendSchema = withAddressRules(
  z.strictObject({
    /** The node's name: the server name on the load balancer, shown by `lbhosting status`. */
    name: nodeNameSchema,
    ...backendAddressFields,
    /** Relative share of new connections (HAProxy weight, default 1). */
    weight: z.number().int().min(1).max(256).optional(),
  }),
);
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
    /**
     * The domains of its websites with a certificate: HTTPS for the org's domains passes through to
     * its nodes' HTTPS addresses, checked over TLS with the first of these as the name asked for.
     */
    tlsDomains: uniqueList(domainSchema, "domain").optional(),
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
    route.tlsDomains?.forEach((domain, index) => {
      if (!route.domains.includes(domain)) {
        ctx.addIssue({ code: "custom", path: ["tlsDomains", index], message: "must be one of domains" });
      }
    });
    if (route.tlsDomains?.length && !route.backends.some((backend) => backend.https !== undefined)) {
      ctx.addIssue({ code: "custom", path: ["tlsDomains"], message: "needs a backend with https" });
    }
    if (route.ftp && !route.backends.some((backend) => backend.ftp !== undefined)) {
      ctx.addIssue({ code: "custom", path: ["ftp"], message: "needs a backend with ftp and passivePorts" });
    }
  });
export type BalancerRoute = z.infer<typeof balancerRouteSchema>;

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
      https: serverViewSchema.optional(),
      ftp: serverViewSchema.optional(),
    }),
  ),
});
export type BalancerStatus = z.infer<typeof balancerStatusSchema>;

/** A load-balancer route as stored: the org and its `BalancerRoute`. */
export const balancerRecordSchema = z.object({
  org: z.string(),
  domains: z.array(z.string()),
  backends: z.array(
    z.object({
      name: z.string(),
      http: z.string().optional(),
      https: z.string().optional(),
      ftp: z.string().optional(),
      passivePorts: z.tuple([z.number(), z.number()]).optional(),
      weight: z.number().optional(),
      maxSessions: z.number().optional(),
    }),
  ),
  ftp: z.object({ listen: z.string() }).optional(),
  tlsDomains: z.array(z.string()).optional(),
});
export type BalancerRecord = z.infer<typeof balancerRecordSchema>;
export const balancerListSchema = z.object({ routes: z.array(balancerRecordSchema) });
export const balancerDeletedSchema = z.object({ org: z.string(), deleted: z.literal(true) });
export type BalancerDeleted = z.infer<typeof balancerDeletedSchema>;
