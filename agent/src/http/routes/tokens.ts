/** `/v1/orgs/{org}/tokens`: the org's tokens on this node, issued and revoked by the admin (scope.ts). */
import type { FastifyInstance } from "fastify";
import { orgTokenIdSchema, orgTokenRequestSchema } from "../../../../wire";
import type { OrgTokens } from "../../domain/org-tokens";
import { orgOf, parse } from "../params";

export function tokenRoutes(app: FastifyInstance, tokens: OrgTokens): void {
  app.post("/v1/orgs/:org/tokens", async (request, reply) => {
    const org = orgOf(request);
    const { label } = parse(orgTokenRequestSchema, request.body ?? {});
    return reply.code(201).send(await tokens.issue(org, label));
  });
  app.get("/v1/orgs/:org/tokens", async (request) => ({ tokens: tokens.list(orgOf(request)) }));
  app.delete("/v1/orgs/:org/tokens/:id", async (request) => {
    const org = orgOf(request);
    const id = parse(orgTokenIdSchema, (request.params as { id?: string }).id, "id");
    return tokens.revoke(org, id);
  });
}
