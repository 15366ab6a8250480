/**
 * Answers of the agent's HTTP API v1, as zod schemas: the client validates every answer with them. Responses are parsed
 * leniently (z.object, not strict) so the agent can add fields without breaking older clients.
 *
 *   GET    /v1/health                          → Health (no token)
 *   GET    /v1/orgs                            → OrgList
 *   PUT    /v1/orgs/{org}                      → OrgStatus (201 when created, else 200)
 *   GET    /v1/orgs/{org}                      → OrgStatus
 *   DELETE /v1/orgs/{org}                      → Deleted
 *   GET    /v1/orgs/{org}/users                → UserList
 *   PUT    /v1/orgs/{org}/users/{username}     → UserRecord (201 when created, else 200) + write headers
 *   GET    /v1/orgs/{org}/users/{username}     → UserRecord
 *   DELETE /v1/orgs/{org}/users/{username}     → WriteResult
 *   GET    /v1/orgs/{org}/services             → ServiceList
 *   PUT    /v1/orgs/{org}/services/{service}   → ServiceRecord (201 when created, else 200) + write headers
 *   GET    /v1/orgs/{org}/services/{service}   → ServiceRecord
 *   DELETE /v1/orgs/{org}/services/{service}   → WriteResult
 *   GET    /v1/orgs/{org}/snapshot             → Snapshot
 *   GET    /v1/orgs/{org}/changes?since=N      → ChangesResult (410 when the log does not reach back)
 *   PUT    /v1/orgs/{org}/replica              → OrgStatus (body ReplicaBody)
 *   POST   /v1/orgs/{org}/replica/changes      → OrgStatus (body ReplicaChangesBody)
 *   DELETE /v1/orgs/{org}/replica[?epoch=N]    → Deleted (with epoch: also a former primary's org)
 *   POST   /v1/orgs/{org}/promote              → OrgStatus (body PromoteBody: a copy becomes the primary)
 *   GET    /v1/node                            → NodeInfo
 *   GET    /v1/balancer                        → BalancerList
 *   PUT    /v1/balancer/{org}                  → BalancerRecord (201 when created, else 200; body BalancerRoute)
 *   GET    /v1/balancer/{org}                  → BalancerRecord
 *   DELETE /v1/balancer/{org}                  → BalancerDeleted
 *   GET    /v1/balancer/{org}/status           → BalancerStatus (HAProxy's view of each node, live)
 *
 * "Write headers": a user/service PUT answers with the stored record (as GET does), a DELETE with
 * WriteResult; both report the org's state after the write (writes that arrive together commit
 * together, and each reports the org after all of them) in `x-lbhosting-generation`,
 * `x-lbhosting-digest` and `x-lbhosting-changed` ("true" / "false"), and what a sync needs next:
 * `x-lbhosting-secondaries` (the org's active secondaries, comma-separated, empty when none) and,
 * when the write appended to a primary's change log, `x-lbhosting-change` (that log entry as
 * base64url JSON). A write answers once it is durable and the configuration including it is live.
 *
 * A balancer PUT or DELETE answers once HAProxy runs the new routes; a node taken out is drained
 * first (no new connections, the open ones finish), at most about 30 s: allow for that in timeouts.
 * 409 `domain_taken` / `address_taken` / `passive_ports_taken` when another org's route on this
 * node holds the domain, the FTP address or overlapping passive ports; 422 `haproxy_rejected`
 * when HAProxy refuses the configuration, 502 `haproxy_unreachable` when its master CLI does not
 * answer (nothing changes in either case).
 */
import { z } from "zod";
import {
  digestSchema as digest,
  ftpMaxSessionsSchema,
  ftpTlsSchema,
  generationSchema as generation,
  orgNameSchema,
  portRangeSchema,
} from "./fields";
import { type ServiceRecord, changeSchema, epochSchema, serviceRecordSchema, userRecordSchema } from "./records";
import { certificateSummary, certificateSummarySchema } from "./tls";
import { WRITE_HEADERS } from "./write-answer";

/** `GET /v1/orgs/{org}`. */
export const orgStatusSchema = z.object({
  name: orgNameSchema,
  displayName: z.string(),
  role: z.enum(["primary", "secondary"]),
  primary: z.string().optional(),
  secondaries: z.array(z.string()),
  loadBalanced: z.boolean(),
  generation,
  digest: z.string(),
  /** The org's epoch as this node holds it (a copy: its primary's when it was last synced). */
  epoch: epochSchema,
  /** Secondary copies only: a forced local edit (or any change not made by a sync) since the last sync. */
  drifted: z.boolean(),
  /** Secondary copies only: when a sync last wrote this copy (ISO 8601). */
  lastSyncedAt: z.string().optional(),
  managedBy: z.string(),
  /** The uid and gid of the org's writable FTP accounts and content folder on this node (older agents leave it out). */
  unixId: z.number().int().optional(),
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

/** `GET /v1/node`: what the provider needs to know of a node to route traffic to it. */
export const nodeInfoSchema = z.object({
  name: z.string(),
  version: z.string(),
  /** Where this node's nginx serves the rendered sites, or null when it renders config only. */
  httpListen: z.string().nullable(),
  /** Where its nginx serves HTTPS sites, or null (older agents leave it out). */
  httpsListen: z.string().nullable().optional(),
  /** Where this node's FTP server listens, or null. */
  ftpListen: z.string().nullable(),
  /** Its FTP server's passive port range, or null (older agents leave it out). */
  ftpPassivePorts: portRangeSchema.nullable().optional(),
  /** Its FTP server's session limit (--ftp-max-sessions), or null (not given; older agents leave it out). */
  ftpMaxSessions: ftpMaxSessionsSchema.nullable().optional(),
  /** How its FTP server takes FTPS (--ftp-tls), or null (not given; older agents leave it out). */
  ftpTls: ftpTlsSchema.nullable().optional(),
});
export type NodeInfo = z.infer<typeof nodeInfoSchema>;

export const healthSchema = z.object({ name: z.string(), version: z.string() });
export type Health = z.infer<typeof healthSchema>;

/** Result of a user/service PUT or DELETE: the org's generation and digest after it. */
export const writeResultSchema = z.object({
  generation,
  digest,
  /** False when the request left the stored content as it was (no generation bump, no log entry). */
  changed: z.boolean(),
});
export type WriteResult = z.infer<typeof writeResultSchema>;

/** Read the write headers of a PUT answer (undefined when any is missing or malformed). */
export function writeResultFromHeaders(headers: { get(name: string): string | null }): WriteResult | undefined {
  const parsed = writeResultSchema.safeParse({
    generation: Number(headers.get(WRITE_HEADERS.generation) ?? "x"),
    digest: headers.get(WRITE_HEADERS.digest),
    changed:
      headers.get(WRITE_HEADERS.changed) === "true"
        ? true
        : headers.get(WRITE_HEADERS.changed) === "false"
          ? false
          : undefined,
  });
  return parsed.success ? parsed.data : undefined;
}

export const changesResultSchema = z.object({ generation, digest, epoch: epochSchema, changes: z.array(changeSchema) });
export type ChangesResult = z.infer<typeof changesResultSchema>;

export const orgListSchema = z.object({ orgs: z.array(orgStatusSchema) });
export const userListSchema = z.object({ users: z.array(userRecordSchema) });
/** A website's HTTPS as answers show it: the certificate's summary, never the PEM or the key. */
const websiteTlsViewSchema = certificateSummarySchema.extend({ httpsRedirect: z.boolean(), hsts: z.boolean() });
const [websiteRecord, ftpRecord] = serviceRecordSchema.options;
/** A service as GET and PUT answer it: its record, with a website's certificate and key summarized. */
export const serviceViewSchema = z.discriminatedUnion("kind", [
  websiteRecord.extend({ tls: websiteTlsViewSchema.optional() }),
  ftpRecord,
]);
export type ServiceView = z.infer<typeof serviceViewSchema>;

export function serviceView(service: ServiceRecord): ServiceView {
  if (service.kind !== "website" || service.tls === undefined) return service as ServiceView;
  const { certificate, httpsRedirect, hsts } = service.tls;
  return { ...service, tls: { ...certificateSummary(certificate), httpsRedirect, hsts } };
}

export const serviceListSchema = z.object({ services: z.array(serviceViewSchema) });

export const deletedSchema = z.object({ name: z.string(), deleted: z.literal(true) });
export type Deleted = z.infer<typeof deletedSchema>;
