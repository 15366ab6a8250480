/**
 * Which route changes HAProxy can take through its runtime API instead of a reload (pure
 * functions). The configuration holds the structure — backends, servers and their addresses,
 * listeners, the health check's Host — and the host map and the servers' weights are what the
 * runtime API changes in place: `add map`/`set map`/`del map` on the host map and `set server …
 * weight`. A change whose configuration differs from the previous one beyond weights is
 * structural and needs a reload.
 */
import type { BalancerBackend } from "../../../../wire";
import { type OrgRoute, ftpBackendName, hostMapEntries, webBackendName } from "./config";

/** What HAProxy must do to run the next routes: nothing, runtime commands, or a reload. */
export type HaproxyChange = { kind: "none" } | { kind: "runtime"; commands: string[] } | { kind: "reload" };

const withoutWeight = (backend: BalancerBackend): BalancerBackend => {
  const copy = { ...backend };
  delete copy.weight;
  return copy;
};

const withoutWeights = (routes: OrgRoute[]): OrgRoute[] =>
  routes.map(({ org, route }) => ({ org, route: { ...route, backends: route.backends.map(withoutWeight) } }));

/** Each routed server's weight, by "backend/server". */
function serverWeights(routes: OrgRoute[]): Map<string, number> {
  const weights = new Map<string, number>();
  for (const { org, route } of routes) {
    for (const backend of route.backends) {
      const weight = backend.weight ?? 1;
      if (backend.http !== undefined && route.domains.length > 0)
        weights.set(`${webBackendName(org)}/${backend.name}`, weight);
      if (backend.ftp !== undefined && route.ftp) weights.set(`${ftpBackendName(org)}/${backend.name}`, weight);
    }
  }
  return weights;
}

/** The map commands taking the host map from `before` to `after`: additions and changes first, removals last. */
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

/**
 * How HAProxy takes `after` when it runs `before`. `render` is the configuration's renderer: equal
 * renders but for weights mean the same structure (the domains are in the host map, not in it).
 */
export function haproxyChange(
  before: OrgRoute[],
  after: OrgRoute[],
  render: (routes: OrgRoute[]) => string,
  hostMap: string,
): HaproxyChange {
  if (render(withoutWeights(before)) !== render(withoutWeights(after))) return { kind: "reload" };
  const old = serverWeights(before);
  const weights = [...serverWeights(after)]
    .filter(([server, weight]) => old.get(server) !== weight)
    .map(([server, weight]) => `set server ${server} weight ${weight}`);
  const commands = [...mapCommands(before, after, hostMap), ...weights];
  return commands.length === 0 ? { kind: "none" } : { kind: "runtime", commands };
}
