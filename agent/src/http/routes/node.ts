/** `/v1/health` (the one open route) and `/v1/node`: who this node is and what it serves. */
import type { FastifyInstance } from "fastify";
import type { Health, NodeInfo } from "../../../../wire";

export function nodeRoutes(app: FastifyInstance, node: NodeInfo): void {
  const health: Health = { name: node.name, version: node.version };
  app.get("/v1/health", async () => health);
  app.get("/v1/node", async () => node);
}
