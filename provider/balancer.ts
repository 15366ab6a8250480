/**
 * The load balancer in front of an organization: its website domains and its FTP address route to
 * the primary and to every secondary that holds an in-sync copy. Promotion adds secondaries only
 * after their copy is verified; demotion takes them out of the route (the LB drains them) before
 * their copy goes.
 */
import type { BalancerBackend, BalancerRoute, NodeInfo } from "../wire";
import type { OrgRef } from "../sdk/inputs";
import type { SecondarySyncStatus } from "../sdk/outputs";
import { AgentError, unlessNotFound, type AgentClient, type ClientFactory } from "./client";
import { differs } from "./inputs";

/** The org's own load-balancing settings; `routeOrg` keeps the route's current ones when not given. */
export interface LoadBalancing {
  /** Where the load balancer accepts the org's FTP sessions ("host:port"), or none. */
  ftp?: string;
  /** Share of new connections per node (agent endpoint → 1-256); unlisted nodes weigh 1. */
  weights?: Record<string, number>;
}

/** The primary plus the secondaries whose copy is in sync: the nodes that may serve. */
export function servingNodes(primary: string, secondaries: SecondarySyncStatus[], exclude: string[] = []): string[] {
  const inSync = secondaries.filter((secondary) => secondary.state === "in-sync").map((s) => s.endpoint);
  // The new primary of a move or failover may still be listed as an in-sync secondary.
  return [...new Set([primary, ...inSync])].filter((endpoint) => !exclude.includes(endpoint));
}

/** Where a node serves, as the load balancer reaches it; undefined for a node that serves nothing. */
export function backendOf(endpoint: string, node: NodeInfo, weight: number | undefined): BalancerBackend | undefined {
  // A bare port listens on every address of the node: reach it at the agent's own host.
  const reachable = (listen: string | null | undefined) =>
    listen === null || listen === undefined ? undefined : listen.replace(/^(\d+)$/, `${new URL(endpoint).hostname}:$1`);
  const http = reachable(node.httpListen);
  const https = http === undefined ? undefined : reachable(node.httpsListen);
  const ftp =
    node.ftpListen !== null && node.ftpPassivePorts
      ? {
          ftp: node.ftpListen,
          passivePorts: node.ftpPassivePorts,
          ...(node.ftpMaxSessions ? { maxSessions: node.ftpMaxSessions } : {}),
        }
      : {};
  if (http === undefined && !("ftp" in ftp)) return undefined;
  return {
    name: node.name,
    ...(http ? { http } : {}),
    ...(https ? { https } : {}),
    ...ftp,
    ...(weight && weight !== 1 ? { weight } : {}),
  };
}

/**
 * Points the org's route on its load balancer at `nodes` (agent endpoints) for the enabled
 * websites' domains and, with `ftp`, its FTP service, registering those nodes with it first;
 * removes the route when nothing is left to serve. Without `settings` (a user's or service's change) the route keeps its FTP address and
 * weights. A no-op when unchanged.
 */
export async function routeOrg(
  org: OrgRef,
  nodes: string[],
  clientFor: ClientFactory,
  settings?: LoadBalancing,
): Promise<void> {
  if (!org.loadBalancer) return;
  const balancer = clientFor(org.loadBalancer);
  const websites = (await clientFor(org.primary).listServices(org.name)).filter(
    (service) => service.kind === "website",
  );
  const enabled = websites.filter((site) => site.enabled);
  const domains = [...new Set(enabled.flatMap((site) => site.domains))].sort();
  const tlsDomains = [...new Set(enabled.flatMap((site) => (site.tls ? site.domains : [])))].sort();
  const current = await unlessNotFound(balancer.getRoute(org.name));
  const ftp = settings ? settings.ftp : current?.ftp?.listen;
  const infos = await Promise.all(
    nodes.map(async (endpoint) => ({ endpoint, node: await clientFor(endpoint).nodeInfo() })),
  );
  const weightOf = (endpoint: string, name: string) =>
    settings ? settings.weights?.[endpoint] : current?.backends.find((backend) => backend.name === name)?.weight;
  const reported = infos
    .map(({ endpoint, node }) => backendOf(endpoint, node, weightOf(endpoint, node.name)))
    .filter((backend): backend is BalancerBackend => backend !== undefined);
  // Nodes' HTTPS addresses only for an org with certificates: a route (and the nodes' registration)
  // of an HTTP-only org stays what it was before HTTPS existed.
  const backends: BalancerBackend[] =
    tlsDomains.length > 0 ? reported : reported.map(({ https: _https, ...backend }) => backend);
  const serves = backends.some((backend) => backend.http) && domains.length > 0;
  if ((!serves && ftp === undefined) || backends.length === 0) return unroute(balancer, org.name);
  const route: BalancerRoute = {
    domains: serves ? domains : [],
    backends,
    ...(ftp === undefined ? {} : { ftp: { listen: ftp } }),
    ...(serves && backends.some((backend) => backend.https) ? { tlsDomains } : {}),
  };
  if (current && !differs({ ...current, org: undefined }, route)) return;
  // Registered as they report themselves (an org with certificates may route their HTTPS later).
  await registerBackends(balancer, reported);
  await balancer.putRoute(org.name, route);
}

/**
 * Registers the route's nodes with the load balancer at the addresses they report, so that it
 * accepts them as backends. A stack holding only an org token may not register (403): it goes on,
 * and the route's `backend_not_registered` names the node an administrator must register.
 */
async function registerBackends(balancer: AgentClient, backends: BalancerBackend[]): Promise<void> {
  await Promise.all(
    backends.map(async ({ name, weight: _weight, ...addresses }) => {
      try {
        await balancer.registerBackend(name, addresses);
      } catch (error) {
        if (!(error instanceof AgentError && error.status === 403)) throw error;
      }
    }),
  );
}

/** Removes the org's route from a load balancer (already gone is fine). */
export async function unroute(balancer: AgentClient, org: string): Promise<void> {
  await unlessNotFound(balancer.deleteRoute(org));
}
