/**
 * The load balancer in front of an organization: its website domains route to the primary and
 * to every secondary that holds an in-sync copy. Promotion adds secondaries only after their copy
 * is verified; demotion takes them out of the route (the LB drains them) before their copy goes.
 */
import type { OrgRef, SecondarySyncStatus } from "../sdk/schemas";
import { isNotFound, type AgentClient } from "./client";
import type { ClientFactory } from "./sync";
import { differs } from "./inputs";

/** The primary plus the secondaries whose copy is in sync: the nodes that may serve. */
export function servingNodes(primary: string, secondaries: SecondarySyncStatus[], exclude: string[] = []): string[] {
  const inSync = secondaries.filter((secondary) => secondary.state === "in-sync").map((s) => s.endpoint);
  return [primary, ...inSync].filter((endpoint) => !exclude.includes(endpoint));
}

/**
 * Points the org's route on its load balancer at `nodes` (agent endpoints) for the enabled
 * websites' domains; removes the route when nothing is left to serve. A no-op when unchanged.
 */
export async function routeOrg(org: OrgRef, nodes: string[], clientFor: ClientFactory): Promise<void> {
  if (!org.loadBalancer) return;
  const balancer = clientFor(org.loadBalancer);
  const primary = clientFor(org.primary);
  const websites = (await primary.listServices(org.name)).filter((service) => service.kind === "website");
  const domains = [...new Set(websites.filter((site) => site.enabled).flatMap((site) => site.domains))].sort();
  const listens = await Promise.all(nodes.map(async (endpoint) => servingAddress(endpoint, clientFor)));
  const backends = listens.filter((listen): listen is string => listen !== undefined);
  if (domains.length === 0 || backends.length === 0) return unroute(balancer, org.name);
  const current = await balancer.getRoute(org.name).catch((error: unknown) => {
    if (isNotFound(error)) return undefined;
    throw error;
  });
  if (current && !differs(current.domains, domains, true) && !differs(current.backends, backends, true)) return;
  await balancer.putRoute(org.name, { domains, backends });
}

/** Where a node's nginx serves ("host:port"), or undefined for a config-only node. */
async function servingAddress(endpoint: string, clientFor: ClientFactory): Promise<string | undefined> {
  const { httpListen } = await clientFor(endpoint).nodeInfo();
  if (httpListen === null) return undefined;
  // A bare port listens on every address of the node: reach it at the agent's own host.
  return /^\d+$/.test(httpListen) ? `${new URL(endpoint).hostname}:${httpListen}` : httpListen;
}

/** Removes the org's route from a load balancer (already gone is fine). */
export async function unroute(balancer: AgentClient, org: string): Promise<void> {
  try {
    await balancer.deleteRoute(org);
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
}
