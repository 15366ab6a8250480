/**
 * Which route changes HAProxy can take through its runtime API instead of a reload (pure
 * functions). The configuration holds the structure — backends, servers and their addresses,
 * listeners, the health check's Host (a route's first domain) — and the host map, the servers'
 * weights and new web servers are what the runtime API changes in place: `add map`/`set map`/
 * `del map` on the host map, `set server … weight`, and `add server` for a node joining a route's
 * web backend only (HAProxy 2.6's dynamic servers). A change to anything else in a route — a node
 * leaving (it is drained first) or joining with FTP (its passive range needs a listener) — or a
 * route created or deleted, is structural and needs a reload. Only the routes that changed are looked at, so a
 * change costs O(the change), not O(the server).
 */
import type { BalancerBackend, BalancerRoute } from "../../../../wire";
import { canonicalJson } from "../../../../wire";
import {
  type OrgRoute,
  addWebServer,
  checkTiming,
  ftpBackendName,
  hostMapEntries,
  passesTls,
  tlsBackendName,
  webBackendName,
} from "./config";

/**
 * What HAProxy must do to run the next routes: nothing, runtime commands (`config`: whether the
 * configuration file changes too — a weight or a server, not only domains), or a reload.
 */
export type HaproxyChange =
  { kind: "none" } | { kind: "runtime"; commands: string[]; config: boolean } | { kind: "reload" };

const withoutWeight = (backend: BalancerBackend): BalancerBackend => {
  const copy = { ...backend };
  delete copy.weight;
  return copy;
};

/** Everything of a route the configuration is made of, weights aside: equal ones render alike. */
const structureOf = (route: BalancerRoute): string =>
  canonicalJson({
    ...route,
    domains: route.domains.slice(0, 1),
    tlsDomains: route.tlsDomains?.slice(0, 1),
    backends: route.backends.map(withoutWeight),
  });

/** A node `add server` can take: joining the route's web backend, with nothing for FTP. */
const joinsWebOnly = (route: BalancerRoute, backend: BalancerBackend): boolean =>
  route.domains.length > 0 &&
  backend.http !== undefined &&
  backend.https === undefined &&
  backend.ftp === undefined &&
  backend.passivePorts === undefined &&
  backend.maxSessions === undefined;

/** Each routed server's weight, by "backend/server". */
function serverWeights(routes: OrgRoute[]): Map<string, number> {
  const weights = new Map<string, number>();
  for (const { org, route } of routes) {
    for (const backend of route.backends) {
      const weight = backend.weight ?? 1;
      if (backend.http !== undefined && route.domains.length > 0) {
        weights.set(`${webBackendName(org)}/${backend.name}`, weight);
      }
      if (backend.https !== undefined && passesTls(route)) {
        weights.set(`${tlsBackendName(org)}/${backend.name}`, weight);
      }
      if (backend.ftp !== undefined && route.ftp) weights.set(`${ftpBackendName(org)}/${backend.name}`, weight);
    }
  }
  return weights;
}

/**
 * The map commands taking the changed routes' domains from `before` to `after`: additions and
 * moves (`set map`: `del map` removes every entry of a key) first, removals last. A domain can
 * only move between changed routes: an unchanged one still holds its domains.
 */
function mapCommands(before: OrgRoute[], after: OrgRoute[], hostMap: string): string[] {
  const old = hostMapEntries(before);
  const next = hostMapEntries(after);
  const commands: string[] = [];
  for (const [domain, backend] of next) {
    const was = old.get(domain);
    if (was === undefined) commands.push(`add map ${hostMap} ${domain} ${backend}`);
    else if (was !== backend) commands.push(`set map ${hostMap} ${domain} ${backend}`);
  }
  for (const domain of old.keys()) if (!next.has(domain)) commands.push(`del map ${hostMap} ${domain}`);
  return commands;
}

/** How HAProxy takes `after` when it runs `before`. */
export function haproxyChange(before: OrgRoute[], after: OrgRoute[], hostMap: string): HaproxyChange {
  const previous = new Map(before.map(({ org, route }) => [org, route]));
  if (previous.size !== after.length) return { kind: "reload" };
  const changedBefore: OrgRoute[] = [];
  const changedAfter: OrgRoute[] = [];
  const servers: string[] = [];
  // The same number of web backends as HAProxy runs (a change of it is a reload): the same timing.
  const timing = checkTiming(after);
  for (const { org, route } of after) {
    const was = previous.get(org);
    if (was === undefined) return { kind: "reload" };
    if (was === route) continue;
    const known = new Set(was.backends.map((backend) => backend.name));
    const joining = route.backends.filter((backend) => !known.has(backend.name) && joinsWebOnly(route, backend));
    const kept = { ...route, backends: route.backends.filter((backend) => !joining.includes(backend)) };
    if (structureOf(was) !== structureOf(kept)) return { kind: "reload" };
    for (const backend of joining) {
      const server = `${webBackendName(org)}/${backend.name}`;
      // A dynamic server starts in maintenance, its checks off: both on once it exists.
      servers.push(addWebServer(org, backend, timing), `enable health ${server}`, `enable server ${server}`);
    }
    changedBefore.push({ org, route: was });
    changedAfter.push({ org, route });
  }
  const old = serverWeights(changedBefore);
  const weights = [...serverWeights(changedAfter)]
    .filter(([server, weight]) => old.has(server) && old.get(server) !== weight)
    .map(([server, weight]) => `set server ${server} weight ${weight}`);
  const commands = [...servers, ...mapCommands(changedBefore, changedAfter, hostMap), ...weights];
  if (commands.length === 0) return { kind: "none" };
  return { kind: "runtime", commands, config: servers.length + weights.length > 0 };
}
