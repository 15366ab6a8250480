/**
 * What the client checks each agent answer against (provider/client.ts), one schema per answer of
 * wire/responses.ts. Records, snapshots and change-log pages are the replicated format and stay
 * exact: a client forwards them to secondaries, and a field it dropped would change their digest.
 * Every other answer is lenient (unknown fields are ignored), so a newer agent may add fields.
 */
import { z } from "zod";
import {
  backendDeletedSchema,
  issuedOrgTokenSchema,
  orgTokenListSchema,
  registeredBackendListSchema,
  registeredBackendRecordSchema,
  revokedOrgTokenSchema,
} from "./access";
import { balancerDeletedSchema, balancerRecordSchema, balancerStatusSchema } from "./balancer";
import { acmeTokenSchema } from "./fields";
import { snapshotSchema, userRecordSchema } from "./records";
import {
  changesResultSchema,
  deletedSchema,
  healthSchema,
  nodeInfoSchema,
  orgStatusSchema,
  serviceViewSchema,
  writeResultSchema,
} from "./responses";

/** A user's record or a service's view as GET and PUT answer it, further fields ignored. */
const userAnswer = z.object(userRecordSchema.shape);
const [websiteRecord, ftpRecord] = serviceViewSchema.options;
const serviceAnswer = z.discriminatedUnion("kind", [z.object(websiteRecord.shape), z.object(ftpRecord.shape)]);

/** The schema of every answer the client reads, by what it answers. */
export const agentAnswerSchemas = {
  health: healthSchema,
  orgStatus: orgStatusSchema,
  orgDeleted: deletedSchema,
  user: userAnswer,
  /** An agent from before the list envelope answered a bare array. */
  users: z.union([z.array(userAnswer), z.object({ users: z.array(userAnswer) }).transform((body) => body.users)]),
  service: serviceAnswer,
  services: z.union([
    z.array(serviceAnswer),
    z.object({ services: z.array(serviceAnswer) }).transform((body) => body.services),
  ]),
  /** A user/service DELETE's body (its write headers carry the rest). */
  writeResult: writeResultSchema,
  snapshot: snapshotSchema,
  changes: changesResultSchema,
  nodeInfo: nodeInfoSchema,
  route: balancerRecordSchema,
  routeDeleted: balancerDeletedSchema,
  balancerStatus: balancerStatusSchema,
  issuedOrgToken: issuedOrgTokenSchema,
  orgTokens: orgTokenListSchema.transform((body) => body.tokens),
  revokedOrgToken: revokedOrgTokenSchema,
  backend: registeredBackendRecordSchema,
  backends: registeredBackendListSchema.transform((body) => body.backends),
  backendDeleted: backendDeletedSchema,
  /** PUT and DELETE of an ACME challenge answer: the token it was about. */
  acmeChallenge: z.object({ token: acmeTokenSchema }),
} as const;
