/** `/v1/orgs/{org}/replica` and `/promote`: what a primary's sync and a failover call on a copy. */
import type { FastifyInstance } from "fastify";
import { type Deleted, promoteBodySchema, replicaBodySchema, replicaChangesBodySchema } from "../../../../wire";
import type { Replication } from "../../domain/replication";
import { epochOf, orgOf, parse } from "../params";

export function replicaRoutes(app: FastifyInstance, replication: Replication, replicaBodyLimit: number): void {
  const replicaLimit = { bodyLimit: replicaBodyLimit };
  app.put("/v1/orgs/:org/replica", replicaLimit, async (request) =>
    replication.importReplica(orgOf(request), parse(replicaBodySchema, request.body)),
  );
  app.post("/v1/orgs/:org/replica/changes", replicaLimit, async (request) =>
    replication.applyChanges(orgOf(request), parse(replicaChangesBodySchema, request.body)),
  );
  app.delete("/v1/orgs/:org/replica", async (request): Promise<Deleted> => {
    const org = orgOf(request);
    await replication.deleteReplica(org, epochOf(request));
    return { name: org, deleted: true };
  });
  app.post("/v1/orgs/:org/promote", async (request) =>
    replication.promote(orgOf(request), parse(promoteBodySchema, request.body)),
  );
}
