/**
 * Registers route backends with a load-balancer agent, as its administrator does before a route
 * may name them (PUT /v1/backends/{name} with the node's addresses; a backend's weight is the
 * route's own, not registered).
 */
import type { AgentClient } from "./agent-http";

interface Backend {
  name: string;
  weight?: number;
  [field: string]: unknown;
}

export async function registerBackends(balancer: AgentClient, backends: Backend[]): Promise<void> {
  for (const { name, ...fields } of backends) {
    const addresses = Object.fromEntries(Object.entries(fields).filter(([field]) => field !== "weight"));
    const answer = await balancer.put(`/v1/backends/${name}`, addresses);
    if (answer.status !== 200 && answer.status !== 201) {
      throw new Error(`registering backend ${name}: HTTP ${answer.status} ${answer.text}`);
    }
  }
}
