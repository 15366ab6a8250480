/** `/v1/orgs/{org}/services/{service}/acme-challenges/{token}`: a website's ACME HTTP-01 answers on this node. */
import type { FastifyInstance, FastifyRequest } from "fastify";
import { acmeChallengeBodySchema, acmeTokenSchema } from "../../../../wire";
import type { AcmeChallenges } from "../../domain/acme-challenges";
import { ApiFailure } from "../../errors";
import { orgOf, parse, serviceOf } from "../params";

const tokenOf = (request: FastifyRequest): string =>
  parse(acmeTokenSchema, (request.params as { token?: string }).token, "token");

export function acmeChallengeRoutes(app: FastifyInstance, challenges: AcmeChallenges): void {
  app.put("/v1/orgs/:org/services/:service/acme-challenges/:token", async (request) => {
    const [org, service, token] = [orgOf(request), serviceOf(request), tokenOf(request)];
    const { keyAuthorization } = parse(acmeChallengeBodySchema, request.body);
    if (!keyAuthorization.startsWith(`${token}.`)) {
      throw new ApiFailure(400, "invalid_request", "keyAuthorization must start with the path's token", [
        { path: "keyAuthorization", message: "must be '<token>.<thumbprint>' for the path's token" },
      ]);
    }
    await challenges.put(org, service, token, keyAuthorization);
    return { token };
  });
  app.delete("/v1/orgs/:org/services/:service/acme-challenges/:token", async (request) => {
    const token = tokenOf(request);
    await challenges.remove(orgOf(request), serviceOf(request), token);
    return { token };
  });
}
