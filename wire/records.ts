/**
 * The replicated records of the wire contract: what a snapshot holds, what the change log
 * carries and what the digest covers. Canonical forms: every field present, defaults applied.
 */
import { z } from "zod";
import {
  contentPathSchema,
  digestSchema,
  domainSchema,
  endpointSchema,
  generationSchema,
  orgNameSchema,
  passwordHashSchema,
  serviceNameSchema,
  usernameSchema,
} from "./fields";
import { certificatePemSchema, privateKeyPemSchema } from "./tls";

/**
 * An org's Unix id: the uid and gid its writable FTP accounts run as and that owns its content
 * folder, the same on every node of the org (the content is on one NAS). At least 1000 (never a
 * system account), below 2^31 (uid_t is signed on some systems).
 */
const unixIdSchema = z
  .number()
  .int()
  .min(1000)
  .max(2 ** 31 - 1);

export const orgRecordSchema = z.strictObject({
  name: orgNameSchema,
  displayName: z.string(),
  loadBalanced: z.boolean(),
  secondaries: z.array(endpointSchema),
  managedBy: z.string(),
  /**
   * Allocated by the org's primary when it creates the org, then carried by snapshots and
   * `org.put` changes, so copies use the primary's. Absent only in records of agents before it.
   */
  unixId: unixIdSchema.optional(),
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

/**
 * A website's HTTPS: its certificate (the site's first, then its issuers) and key, and how plain
 * HTTP is answered. Replicated whole, so every node of the org serves the same certificate, and
 * covered by the digest, so a copy holding another one is drifted. Absent on an HTTP-only site,
 * so those records (and digests) are what they were before HTTPS existed.
 */
export const websiteTlsRecordSchema = z.strictObject({
  certificate: certificatePemSchema,
  privateKey: privateKeyPemSchema,
  /** Plain HTTP requests are redirected to HTTPS (ACME challenges and the load balancer's check excepted). */
  httpsRedirect: z.boolean(),
  /** HTTPS answers carry Strict-Transport-Security (one year). */
  hsts: z.boolean(),
});
export type WebsiteTlsRecord = z.infer<typeof websiteTlsRecordSchema>;

export const serviceRecordSchema = z.discriminatedUnion("kind", [
  z.strictObject({
    name: serviceNameSchema,
    kind: z.literal("website"),
    enabled: z.boolean(),
    domains: z.array(domainSchema),
    documentRoot: contentPathSchema,
    tls: websiteTlsRecordSchema.optional(),
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

/** The org's active secondaries: those that hold a copy, as its record says. */
export const activeSecondaries = (record: Pick<OrgRecord, "loadBalanced" | "secondaries">): string[] =>
  record.loadBalanced ? record.secondaries : [];

/**
 * An org's epoch: raised each time another node becomes its primary (failover, move), so a node
 * that still believes it is the primary at a lower epoch is fenced (its replication is refused).
 * Absent (an older agent or client) means 0.
 */
export const epochSchema = z.number().int().nonnegative().default(0);

/** An org's whole replicated configuration at one generation. */
export const snapshotSchema = z.strictObject({
  generation: generationSchema,
  digest: digestSchema,
  /** The primary's epoch: a copy following a higher epoch refuses it (409 stale_epoch). */
  epoch: epochSchema,
  org: orgRecordSchema,
  users: z.array(userRecordSchema),
  services: z.array(serviceRecordSchema),
});
export type Snapshot = z.infer<typeof snapshotSchema>;

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
