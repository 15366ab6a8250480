/** `/v1/backends`: the nodes an admin registered with this load balancer, the only ones a route may name. */
import type { FastifyInstance } from "fastify";
import type { AddressInfo } from "node:net";
import { nodeNameSchema, registeredBackendSchema } from "../../../../wire";
import type { Balancer } from "../../balancer/balancer";
import type { ApiAddress } from "../../balancer/registered-backends";
import { parse } from "../params";

const nameOf = (params: unknown): string => parse(nodeNameSchema, (params as { name?: string }).name, "name");

export function backendRoutes(app: FastifyInstance, balancer: Balancer): void {
  // Where this API listens, once it does: a backend there would let a route reach the API.
  const api = (): ApiAddress | undefined => {
    const address = app.server.address() as AddressInfo | string | null;
    return address === null || typeof address === "string" ? undefined : { host: address.address, port: address.port };
  };
  app.get("/v1/backends", async () => ({ backends: balancer.listBackends() }));
  app.put("/v1/backends/:name", async (request, reply) => {
    const name = nameOf(request.params);
    const addresses = parse(registeredBackendSchema, request.body);
    const { record, created } = await balancer.registerBackend(name, addresses, api());
    return reply.code(created ? 201 : 200).send(record);
  });
  app.delete("/v1/backends/:name", async (request) => {
    const name = nameOf(request.params);
    await balancer.unregisterBackend(name);
    return { name, deleted: true };
  });
}
