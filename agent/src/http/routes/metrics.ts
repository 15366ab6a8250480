/** `GET /metrics`: the agent's Prometheus metrics, behind the API's bearer token like every route but health. */
import type { FastifyInstance } from "fastify";
import type { AgentMetrics } from "../../metrics/agent-metrics";

export function metricsRoutes(app: FastifyInstance, metrics: Pick<AgentMetrics, "exposition">): void {
  app.get("/metrics", async (_request, reply) => {
    const { contentType, text } = await metrics.exposition();
    return reply.type(contentType).send(text);
  });
}
