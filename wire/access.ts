/**
 * Who may do what on an agent: organization tokens (one org, on one node) and the nodes an
 * administrator registered with a load balancer (the only backends an org's route may name).
 * Both are administered with the node's admin token only.
 */
import { z } from "zod";
import { backendAddressesSchema } from "./balancer";
import { managedBySchema } from "./fields";

/** An org token's id: chosen by the agent, shown in lists and used to revoke it. */
export const orgTokenIdSchema = z.string().regex(/^[a-z0-9]{16}$/, "must be 16 lowercase letters or digits");

/** `POST /v1/orgs/{org}/tokens`: a label saying who holds the token (e.g. the tenant stack's name). */
export const orgTokenRequestSchema = z.strictObject({ label: managedBySchema.default("") });
export type OrgTokenRequest = z.input<typeof orgTokenRequestSchema>;

/** One org token as listed: never its secret (the agent keeps only a hash of it). */
export const orgTokenSchema = z.object({
  id: orgTokenIdSchema,
  org: z.string(),
  label: z.string(),
  createdAt: z.string(),
});
export type OrgToken = z.infer<typeof orgTokenSchema>;

/** The answer to `POST /v1/orgs/{org}/tokens`: the only time the secret is shown. */
export const issuedOrgTokenSchema = orgTokenSchema.extend({ token: z.string() });
export type IssuedOrgToken = z.infer<typeof issuedOrgTokenSchema>;

export const orgTokenListSchema = z.object({ tokens: z.array(orgTokenSchema) });

/**
 * `PUT /v1/backends/{name}` on a load balancer: a node an org's route may send traffic to, with
 * the addresses it may be reached at. A route's backend must be one of these, at these addresses.
 */
export const registeredBackendSchema = backendAddressesSchema;
export type RegisteredBackend = z.infer<typeof registeredBackendSchema>;

/** The answer to `DELETE /v1/orgs/{org}/tokens/{id}`: from the next request on, the token is refused. */
export const revokedOrgTokenSchema = z.object({ id: z.string(), org: z.string(), revoked: z.literal(true) });
export type RevokedOrgToken = z.infer<typeof revokedOrgTokenSchema>;

/**
 * One registered node, as `PUT /v1/backends/{name}` and `GET /v1/backends` answer it (lenient, like
 * every answer but the replicated records: a newer agent may add fields).
 */
export const registeredBackendRecordSchema = z.object({
  name: z.string(),
  http: z.string().optional(),
  ftp: z.string().optional(),
  passivePorts: z.tuple([z.number(), z.number()]).optional(),
  maxSessions: z.number().optional(),
});
export type RegisteredBackendRecord = z.infer<typeof registeredBackendRecordSchema>;

/** The answer to `DELETE /v1/backends/{name}`. */
export const backendDeletedSchema = z.object({ name: z.string(), deleted: z.literal(true) });

/** `GET /v1/backends`: the registered nodes, by name. */
export const registeredBackendListSchema = z.object({ backends: z.array(registeredBackendRecordSchema) });
