/**
 * The load-balancer role: per org, an nginx `upstream` of the nodes serving it and a server block
 * for its website domains, in `lbh-balancer.<org>.conf`. Routes are node-local (no org copy, no
 * generation, no digest): the provider points them at the nodes that may serve the org.
 *
 * Writes go through the same validated group commit as the sites (config-commits.ts: nginx -t
 * before the SQLite commit) and answer only once nginx's previous workers have drained, so a
 * backend taken out of a route gets no more requests through this node when the write returns.
 */
import type { BalancerRoute } from "../sdk/schemas";
import type { BalancerRecord } from "./api";
import type { ConfigCommits } from "./config-commits";
import { ApiFailure, notFound } from "./errors";
import type { NginxSites } from "./nginx";
import type { ReloadDrain } from "./reload-drain";
import type { Store } from "./store";

/** Not "lbh." (the sites' prefix), so site and route files never fall in each other's scope. */
export const BALANCER_PREFIX = "lbh-balancer.";

export interface BalancerOptions {
  store: Store;
  sites: NginxSites;
  drain: ReloadDrain;
  commits: ConfigCommits;
  agentName: string;
  /** nginx `listen` parameter of the routes' server blocks: the load balancer's public address. */
  listen: string;
  warn: (msg: string, fields: Record<string, unknown>) => void;
}

export const balancerFileName = (org: string): string => `${BALANCER_PREFIX}${org}.conf`;

/** The route file of one org, or of every org when `org` is undefined. */
const balancerScope =
  (org?: string) =>
  (file: string): boolean =>
    org === undefined ? file.startsWith(BALANCER_PREFIX) && file.endsWith(".conf") : file === balancerFileName(org);

/** One upstream and server block. Org, domains and backends were validated to hold no nginx syntax. */
export function renderBalancer(agentName: string, listen: string, org: string, route: BalancerRoute): string {
  const upstream = `lbh-balancer-${org}`;
  return [
    `# Managed by the lbhosting agent "${agentName}": load-balancer route of org ${org}.`,
    "# Rewritten from the agent's database on every change; local edits are lost.",
    `upstream ${upstream} {`,
    // One failure takes a backend out for 2 s; proxy_next_upstream retries the request elsewhere.
    ...route.backends.map((backend) => `    server ${backend} max_fails=1 fail_timeout=2s;`),
    "}",
    "server {",
    `    listen ${listen};`,
    `    server_name ${route.domains.join(" ")};`,
    "    location / {",
    `        proxy_pass http://${upstream};`,
    "        proxy_set_header Host $host;",
    "        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
    "        proxy_next_upstream error timeout http_502 http_503 http_504;",
    "        proxy_connect_timeout 2s;",
    "    }",
    "}",
    "",
  ].join("\n");
}

export class Balancer {
  constructor(private readonly options: BalancerOptions) {}

  private render(org: string, route: BalancerRoute): string {
    return renderBalancer(this.options.agentName, this.options.listen, org, route);
  }

  list(): BalancerRecord[] {
    return this.options.store.listRoutes().map(({ org, route }) => ({ org, ...route }));
  }

  get(org: string): BalancerRecord {
    const route = this.options.store.getRoute(org);
    if (!route) throw notFound(`the load-balancer route of organization "${org}"`);
    return { org, ...route };
  }

  /** Create or replace the org's route; answers once nginx serves it and the old workers are gone. */
  async put(org: string, route: BalancerRoute): Promise<{ record: BalancerRecord; created: boolean }> {
    const created = await this.commit(org, () => {
      this.rejectTakenDomains(org, route.domains);
      const fresh = this.options.store.getRoute(org) === undefined;
      this.options.store.putRoute(org, route);
      return fresh;
    });
    return { record: { org, ...route }, created };
  }

  /** Remove the org's route; answers once the old workers (still proxying to its backends) are gone. */
  async delete(org: string): Promise<void> {
    await this.commit(org, () => {
      if (!this.options.store.deleteRoute(org)) throw notFound(`the load-balancer route of organization "${org}"`);
    });
  }

  /** Re-render every route from the database (on start). */
  async renderAll(): Promise<void> {
    const desired = new Map(
      this.options.store.listRoutes().map(({ org, route }) => [balancerFileName(org), this.render(org, route)]),
    );
    try {
      await this.options.drain.activate(await this.options.sites.stage([{ scope: balancerScope(), desired }]));
    } catch (error) {
      if (!(error instanceof ApiFailure)) throw error;
      this.options.warn("load-balancer configuration kept as it was", { reason: error.message });
    }
  }

  /** nginx only warns about a server name in two server blocks, and serves just one of them. */
  private rejectTakenDomains(org: string, domains: string[]): void {
    for (const other of this.options.store.listRoutes()) {
      if (other.org === org) continue;
      const index = domains.findIndex((domain) => other.route.domains.includes(domain));
      if (index >= 0) {
        throw new ApiFailure(
          409,
          "domain_taken",
          `domain "${domains[index]}" is already routed for organization "${other.org}" on this node`,
          [{ path: `domains.${index}`, message: `is already routed for organization "${other.org}"` }],
        );
      }
    }
  }

  /** Change the DB through the validated group commit; resolves once nginx runs it and the old workers drained. */
  private commit<T>(org: string, change: () => T): Promise<T> {
    const render = () => {
      const route = this.options.store.getRoute(org);
      return new Map(route ? [[balancerFileName(org), this.render(org, route)]] : []);
    };
    return this.options.commits.submit({
      apply: () => {
        const result = change();
        return {
          finish: () => result,
          nginx: [{ key: `balancer:${org}`, scope: balancerScope(org), render }],
          ftp: [],
        };
      },
    });
  }
}
