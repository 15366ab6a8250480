/** `/v1/balancer`: the load-balancer routes this node serves through HAProxy. */
import type { FastifyInstance } from "fastify";
import { type BalancerDeleted, balancerRouteSchema } from "../../../../wire";
import type { Balancer } from "../../balancer/balancer";
import { orgOf, parse } from "../params";

export function balancerRoutes(app: FastifyInstance, balancer: Balancer): void {
  app.get("/v1/balancer", async () => ({ routes: balancer.list() }));
  app.put("/v1/balancer/:org", async (request, reply) => {
    const org = orgOf(request);
    const { record, created } = await balancer.put(org, parse(balancerRouteSchema, request.body));
    return reply.code(created ? 201 : 200).send(record);
  });
  app.get("/v1/balancer/:org", async (request) => balancer.get(orgOf(request)));
  app.get("/v1/balancer/:org/status", async (request) => balancer.status(orgOf(request)));
  app.delete("/v1/balancer/:org", async (request): Promise<BalancerDeleted> => {
    const org = orgOf(request);
    await balancer.delete(org);
    return { org, deleted: true };
  });
}
