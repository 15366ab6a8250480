/** Reading a request's path parameters, query and headers through the wire schemas (400 when they do not fit). */
import type { FastifyRequest } from "fastify";
import { z } from "zod";
import { OWNER_HEADER, managedBySchema, orgNameSchema, serviceNameSchema, usernameSchema } from "../../../wire";
import type { WriteOptions } from "../domain/roles";
import { validationFailure } from "../errors";

export function parse<T>(schema: z.ZodType<T>, value: unknown, prefix?: string): T {
  const result = schema.safeParse(value);
  if (!result.success) throw validationFailure(result.error, prefix);
  return result.data;
}

const forceQuery = z.object({ force: z.enum(["true", "false"], "must be true or false").optional() });
const generationText = z.string().regex(/^\d{1,15}$/, "must be a non-negative integer");
const sinceQuery = z.object({ since: generationText });
const epochQuery = z.object({ epoch: generationText.optional() });

type Params = Record<string, string | undefined>;
export const orgOf = (request: FastifyRequest): string => parse(orgNameSchema, (request.params as Params).org, "org");
export const usernameOf = (request: FastifyRequest): string =>
  parse(usernameSchema, (request.params as Params).username, "username");
export const serviceOf = (request: FastifyRequest): string =>
  parse(serviceNameSchema, (request.params as Params).service, "service");

export const sinceOf = (request: FastifyRequest): number => Number(parse(sinceQuery, request.query).since);

export const epochOf = (request: FastifyRequest): number | undefined => {
  const { epoch } = parse(epochQuery, request.query);
  return epoch === undefined ? undefined : Number(epoch);
};

export const writeOptions = (request: FastifyRequest): WriteOptions => ({
  force: parse(forceQuery, request.query).force === "true",
});

/** An org, user or service PUT's options: also the owner it may overwrite (OWNER_HEADER), when given. */
export const memberWriteOptions = (request: FastifyRequest): WriteOptions => {
  const owner = request.headers[OWNER_HEADER];
  return {
    ...writeOptions(request),
    ...(owner === undefined ? {} : { owner: parse(managedBySchema, owner, OWNER_HEADER) }),
  };
};
