/** `/v1/orgs`: the orgs this node holds, as primary or secondary copy. */
import type { FastifyInstance } from "fastify";
import { type Deleted, orgSettingsSchema } from "../../../../wire";
import type { OrgWrites } from "../../domain/orgs";
import type { Reads } from "../../domain/reads";
import { memberWriteOptions, orgOf, parse, sinceOf, writeOptions } from "../params";

export function orgRoutes(app: FastifyInstance, reads: Reads, orgs: OrgWrites): void {
  // An org token sees its own org only (scope.ts), and only once it exists on this node.
  app.get("/v1/orgs", async (request) => {
    const { principal } = request;
    const orgs = reads.listOrgs();
    return { orgs: principal?.kind === "org" ? orgs.filter((org) => org.name === principal.org) : orgs };
  });
  app.put("/v1/orgs/:org", async (request, reply) => {
    const org = orgOf(request);
    const options = memberWriteOptions(request);
    const body = parse(orgSettingsSchema, request.body ?? {});
    const { status, created } = await orgs.putOrg(org, body, options);
    return reply.code(created ? 201 : 200).send(status);
  });
  app.get("/v1/orgs/:org", async (request) => reads.orgStatus(orgOf(request)));
  app.delete("/v1/orgs/:org", async (request): Promise<Deleted> => {
    const org = orgOf(request);
    await orgs.deleteOrg(org, writeOptions(request));
    return { name: org, deleted: true };
  });
  app.get("/v1/orgs/:org/snapshot", async (request) => reads.snapshot(orgOf(request)));
  app.get("/v1/orgs/:org/changes", async (request) => {
    const org = orgOf(request);
    return reads.changesSince(org, sinceOf(request));
  });
}
