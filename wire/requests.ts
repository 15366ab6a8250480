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

export const websiteBodySchema = z.strictObject({
  kind: z.literal("website"),
  domains: uniqueList(domainSchema, "domain").min(1, "must list at least one domain"),
  documentRoot: contentPathSchema,
  ...serviceCommon,
});

export const ftpBodySchema = z.strictObject({
  kind: z.literal("ftp"),
  rootPath: contentPathSchema,
  writable: z.boolean().default(false),
  ...serviceCommon,
});

/** `PUT /v1/orgs/{org}/services/{service}`: a website or an FTP service. */
export const serviceBodySchema = z.discriminatedUnion("kind", [websiteBodySchema, ftpBodySchema]);
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
