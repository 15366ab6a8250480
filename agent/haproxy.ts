/**
 * HAProxy for the load-balancer role: the configuration rendered from the routes (pure), and the
 * control of a running HAProxy (master-worker mode) through its master CLI socket — reload, each
 * worker's stats, draining a server — plus `haproxy -c` to validate a configuration before use.
 * Everything that waits is asynchronous (a child process or a socket), never on the event loop.
 *
 * Why HAProxy (see docs/ARCHITECTURE.md): `balance leastconn`, active health checks, TCP mode for
 * FTP, a runtime API to drain a server, and reloads that hand the listening sockets to the new
 * worker (`expose-fd listeners`), so no connection is refused while the configuration changes.
 */
import { execFile } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { BalancerBackend, BalancerRoute, PortRange } from "../sdk/schemas";
import { ApiFailure } from "./errors";

const CHECK_TIMEOUT_MS = 15_000;
const CLI_TIMEOUT_MS = 5_000;
const RELOAD_TIMEOUT_MS = 15_000;
const POLL_MS = 50;
const MAX_MESSAGE = 2000;
/** HAProxy reads at most 64 words a line: domains go into ACL lines of this many. */
const DOMAINS_PER_LINE = 40;

export interface HaproxyBinary {
  bin: string;
  /** The operator's main configuration (its `global` section), loaded before the agent's file. */
  mainConf?: string;
  /** The master CLI socket (`haproxy -W -S <socket>`): reloads, stats and drains go through it. */
  masterSocket: string;
}

/** A route as stored, with its org. */
export interface OrgRoute {
  org: string;
  route: BalancerRoute;
}

// ---------------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------------

export const webBackendName = (org: string): string => `lbh_web_${org}`;
export const ftpBackendName = (org: string): string => `lbh_ftp_${org}`;

const hostOf = (address: string): string => address.slice(0, address.lastIndexOf(":"));
const portOf = (address: string): number => Number(address.slice(address.lastIndexOf(":") + 1));

/** One passive-port range on the load balancer's FTP host, forwarded to the node that opens those ports. */
export interface DataRoute {
  /** The load balancer's FTP host (the routes' `ftp.listen` host), which nodes advertise for passive mode. */
  listenHost: string;
  range: PortRange;
  /** The node's FTP host: a data connection keeps its port. */
  nodeHost: string;
  node: string;
}

/** Every passive range to forward, one entry per distinct (LB host, range, node host). */
export function dataRoutes(routes: OrgRoute[]): DataRoute[] {
  const seen = new Map<string, DataRoute>();
  for (const { route } of routes) {
    if (!route.ftp) continue;
    const listenHost = hostOf(route.ftp.listen);
    for (const backend of route.backends) {
      if (!backend.ftp || !backend.passivePorts) continue;
      const entry = { listenHost, range: backend.passivePorts, nodeHost: hostOf(backend.ftp), node: backend.name };
      seen.set(`${listenHost} ${entry.range.join("-")} ${entry.nodeHost}`, entry);
    }
  }
  return [...seen.values()].sort(
    (a, b) =>
      a.listenHost.localeCompare(b.listenHost) || a.range[0] - b.range[0] || a.nodeHost.localeCompare(b.nodeHost),
  );
}

const dataBackendName = (data: DataRoute): string => `lbh_ftpdata_${data.nodeHost}_${data.range[0]}-${data.range[1]}`;

const serverLine = (backend: BalancerBackend, address: string, check: string): string =>
  `    server ${backend.name} ${address} ${check} weight ${backend.weight ?? 1}`;

function webSection({ org, route }: OrgRoute): string[] {
  const servers = route.backends.filter((backend) => backend.http !== undefined);
  return [
    `backend ${webBackendName(org)}`,
    "    mode http",
    "    balance leastconn",
    "    option forwardfor",
    // Active check: the node's web server answers for the org's first domain (a 404 is still a live nginx).
    "    option httpchk",
    `    http-check send meth HEAD uri / ver HTTP/1.1 hdr Host ${route.domains[0]}`,
    "    http-check expect rstatus ^[234]",
    // A node that refuses or drops a connection before its checks have failed: retry on another one.
    "    retries 3",
    "    option redispatch 1",
    "    retry-on conn-failure empty-response",
    ...servers.map((backend) => serverLine(backend, backend.http as string, "check")),
    "",
  ];
}

function ftpSections({ org, route }: OrgRoute): string[] {
  if (!route.ftp) return [];
  const servers = route.backends.filter((backend) => backend.ftp !== undefined);
  return [
    `frontend ${ftpBackendName(org)}`,
    "    mode tcp",
    `    bind ${route.ftp.listen}`,
    "    timeout client 30m",
    `    default_backend ${ftpBackendName(org)}`,
    "",
    `backend ${ftpBackendName(org)}`,
    "    mode tcp",
    // Sessions are long and uneven: send each new one to the node with the fewest open.
    "    balance leastconn",
    "    timeout server 30m",
    "    option tcp-check",
    "    tcp-check connect",
    "    tcp-check expect rstring ^220",
    '    tcp-check send "QUIT\\r\\n"',
    ...servers.map((backend) => serverLine(backend, backend.ftp as string, "check")),
    "",
  ];
}

/** Passive data: one frontend per LB FTP host binding every range, each range to the node that owns it. */
function dataSections(data: DataRoute[]): string[] {
  const lines: string[] = [];
  for (const listenHost of [...new Set(data.map((entry) => entry.listenHost))]) {
    const ranges = data.filter((entry) => entry.listenHost === listenHost);
    lines.push(
      `frontend lbh_ftpdata_on_${listenHost}`,
      "    mode tcp",
      ...ranges.map((entry) => `    bind ${listenHost}:${entry.range[0]}-${entry.range[1]}`),
      "    timeout client 5m",
      ...ranges.map(
        (entry) => `    use_backend ${dataBackendName(entry)} if { dst_port ${entry.range[0]}:${entry.range[1]} }`,
      ),
      "",
    );
  }
  for (const entry of data) {
    const backend = dataBackendName(entry);
    if (lines.includes(`backend ${backend}`)) continue;
    // No port: HAProxy connects to the port the client asked for, which the node opened for this session.
    lines.push(
      `backend ${backend}`,
      "    mode tcp",
      "    timeout server 5m",
      `    server ${entry.node} ${entry.nodeHost}`,
      "",
    );
  }
  return lines;
}

function httpFrontend(httpListen: string, routes: OrgRoute[]): string[] {
  const web = routes.filter(({ route }) => route.domains.length > 0);
  const acls = web.flatMap(({ org, route }) => {
    const lines: string[] = [];
    for (let i = 0; i < route.domains.length; i += DOMAINS_PER_LINE) {
      lines.push(`    acl host_${org} var(txn.host) -m str ${route.domains.slice(i, i + DOMAINS_PER_LINE).join(" ")}`);
    }
    return lines;
  });
  return [
    "frontend lbh_http",
    "    mode http",
    `    bind ${httpListen}`,
    "    timeout client 1m",
    "    timeout http-keep-alive 10s",
    "    http-request set-var(txn.host) req.hdr(host),field(1,:),lower",
    ...acls,
    ...web.map(({ org }) => `    use_backend ${webBackendName(org)} if host_${org}`),
    "    default_backend lbh_no_route",
    "",
    "backend lbh_no_route",
    "    mode http",
    '    http-request return status 404 content-type text/plain string "no site for this host on the load balancer"',
    "",
  ];
}

/**
 * The agent's whole HAProxy file: its own defaults, the shared HTTP frontend (sites by Host), and
 * per org a web backend and an FTP frontend and backend; the passive data frontends last. Every
 * interpolated value was validated by the route schema (names, domains and addresses hold no spaces
 * or HAProxy syntax).
 */
export function renderHaproxy(agentName: string, httpListen: string | undefined, routes: OrgRoute[]): string {
  const sorted = [...routes].sort((a, b) => a.org.localeCompare(b.org));
  return [
    `# Managed by the lbhosting agent "${agentName}": the load balancer's routes.`,
    "# Rewritten from the agent's database on every change; local edits are lost.",
    "defaults lbhosting",
    "    timeout connect 2s",
    "    timeout client 1m",
    "    timeout server 1m",
    "    timeout check 2s",
    // A node leaves after 3 failed checks a second apart and returns after 2 passed ones.
    "    default-server inter 1s fall 3 rise 2",
    "",
    ...(httpListen === undefined ? [] : httpFrontend(httpListen, sorted)),
    ...sorted.filter(({ route }) => route.domains.length > 0).flatMap(webSection),
    ...sorted.flatMap(ftpSections),
    ...dataSections(dataRoutes(sorted)),
  ].join("\n");
}

/** The (backend, server) pairs a configuration routes new connections to, with what they point at. */
export function routedServers(routes: OrgRoute[]): Map<string, string> {
  const servers = new Map<string, string>();
  for (const { org, route } of routes) {
    for (const backend of route.backends) {
      if (backend.http !== undefined && route.domains.length > 0) {
        servers.set(`${webBackendName(org)}/${backend.name}`, backend.http);
      }
      if (backend.ftp !== undefined && route.ftp) servers.set(`${ftpBackendName(org)}/${backend.name}`, backend.ftp);
    }
  }
  return servers;
}

/** Servers `before` routes to that `after` does not (gone, or now pointing elsewhere): they are drained first. */
export function serversLeaving(before: OrgRoute[], after: OrgRoute[]): string[] {
  const next = routedServers(after);
  return [...routedServers(before)].filter(([key, address]) => next.get(key) !== address).map(([key]) => key);
}

/** Why `route` for `org` cannot share this load balancer with the other routes, or undefined. */
export function routeConflict(
  org: string,
  route: BalancerRoute,
  others: OrgRoute[],
  httpListen: string | undefined,
): { code: string; message: string; path: string } | undefined {
  for (const other of others) {
    const index = route.domains.findIndex((domain) => other.route.domains.includes(domain));
    if (index >= 0) {
      return {
        code: "domain_taken",
        path: `domains.${index}`,
        message: `domain "${route.domains[index]}" is already routed for organization "${other.org}" on this node`,
      };
    }
  }
  if (!route.ftp) return undefined;
  const listen = route.ftp.listen;
  const taken = others.find((other) => other.route.ftp?.listen === listen);
  if (taken || listen === httpListen) {
    const owner = taken ? `organization "${taken.org}"` : "the load balancer's web traffic";
    return {
      code: "address_taken",
      path: "ftp.listen",
      message: `${listen} is already used for ${owner} on this node`,
    };
  }
  const mine = dataRoutes([{ org, route }]);
  const theirs = dataRoutes(others);
  for (const entry of mine) {
    const clash = theirs.find(
      (other) =>
        other.listenHost === entry.listenHost &&
        other.range[0] <= entry.range[1] &&
        entry.range[0] <= other.range[1] &&
        (other.range.join() !== entry.range.join() || other.nodeHost !== entry.nodeHost),
    );
    if (clash) {
      const index = route.backends.findIndex((backend) => backend.name === entry.node);
      return {
        code: "passive_ports_taken",
        path: `backends.${index}.passivePorts`,
        message:
          `passive ports ${entry.range.join("-")} on ${entry.listenHost} overlap ${clash.range.join("-")}, ` +
          `which go to ${clash.nodeHost} (${clash.node}) for another organization on this node`,
      };
    }
    const port = [listen, ...others.map((other) => other.route.ftp?.listen), httpListen]
      .filter((address): address is string => address !== undefined && hostOf(address) === entry.listenHost)
      .map(portOf)
      .find((used) => used >= entry.range[0] && used <= entry.range[1]);
    if (port !== undefined) {
      const index = route.backends.findIndex((backend) => backend.name === entry.node);
      return {
        code: "address_taken",
        path: `backends.${index}.passivePorts`,
        message: `passive ports ${entry.range.join("-")} include port ${port}, already listened on at ${entry.listenHost}`,
      };
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Control
// ---------------------------------------------------------------------------------------------

/** The master and its workers, from the master CLI's `show proc`. */
export interface Processes {
  reloads: number;
  failedReloads: number;
  /** The worker of the current configuration. */
  current: number[];
  /** Workers of earlier configurations, still finishing their connections. */
  old: number[];
}

export function parseShowProc(text: string): Processes {
  const processes: Processes = { reloads: 0, failedReloads: 0, current: [], old: [] };
  let section: "current" | "old" | undefined;
  for (const line of text.split("\n")) {
    if (line.startsWith("# workers")) section = "current";
    else if (line.startsWith("# old workers")) section = "old";
    else if (line.startsWith("#")) section = undefined;
    const master = /^\d+\s+master\s+(\d+)\s+\[failed:\s*(\d+)\]/.exec(line);
    if (master) {
      processes.reloads = Number(master[1]);
      processes.failedReloads = Number(master[2]);
    }
    const worker = /^(\d+)\s+worker\b/.exec(line);
    if (worker && section) processes[section].push(Number(worker[1]));
  }
  return processes;
}

/** One server row of `show stat`. */
export interface ServerStat {
  backend: string;
  server: string;
  status: string;
  active: number;
}

export function parseShowStat(csv: string): ServerStat[] {
  const lines = csv.split("\n").filter((line) => line.trim() !== "");
  const header = lines[0]?.replace(/^#\s*/, "").split(",") ?? [];
  const column = (name: string) => header.indexOf(name);
  const [px, sv, scur, status] = ["pxname", "svname", "scur", "status"].map(column);
  if ([px, sv, scur, status].some((index) => index < 0)) return [];
  return lines
    .slice(1)
    .map((line) => line.split(","))
    .filter((cells) => cells[sv] !== "FRONTEND" && cells[sv] !== "BACKEND")
    .map((cells) => ({
      backend: cells[px],
      server: cells[sv],
      status: cells[status],
      active: Number(cells[scur]) || 0,
    }));
}

/** HAProxy sends it new connections: up (or still up while failing checks) and not drained. */
export const isHealthy = (status: string): boolean => /^(UP|no check)/.test(status);

function runFile(bin: string, args: string[]): Promise<{ ok: boolean; output: string }> {
  return new Promise((resolve) => {
    execFile(bin, args, { timeout: CHECK_TIMEOUT_MS, encoding: "utf8" }, (error, stdout, stderr) => {
      const output = `${stderr}${stdout}`.trim().slice(0, MAX_MESSAGE);
      resolve({ ok: error === null, output: output || (error?.message ?? "") });
    });
  });
}

/** A running HAProxy, driven through its master CLI. */
export class HaproxyControl {
  constructor(private readonly haproxy: HaproxyBinary) {}

  /** `haproxy -c` of the main configuration plus `text`; a 422 `haproxy_rejected` when it refuses. */
  async validate(text: string, next: string): Promise<void> {
    const candidate = path.join(path.dirname(next), `.${path.basename(next)}.check-${process.pid}`);
    await fs.promises.writeFile(candidate, text, { mode: 0o644 });
    try {
      const main = this.haproxy.mainConf ? ["-f", this.haproxy.mainConf] : [];
      const result = await runFile(this.haproxy.bin, ["-c", "-q", ...main, "-f", candidate]);
      if (!result.ok) {
        throw new ApiFailure(422, "haproxy_rejected", `HAProxy rejected the new configuration: ${result.output}`);
      }
    } finally {
      await fs.promises.rm(candidate, { force: true });
    }
  }

  /** One master CLI command (`@!<pid> …` goes to that worker); the master answers and closes. */
  command(line: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = net.createConnection(this.haproxy.masterSocket);
      let answer = "";
      socket.setEncoding("utf8");
      socket.setTimeout(CLI_TIMEOUT_MS, () =>
        socket.destroy(new Error(`HAProxy's master CLI gave no answer within ${CLI_TIMEOUT_MS} ms`)),
      );
      socket.on("connect", () => socket.end(`${line}\n`));
      socket.on("data", (chunk: string) => (answer += chunk));
      socket.on("error", reject);
      socket.on("close", (hadError) => {
        if (!hadError) resolve(answer);
      });
    });
  }

  async processes(): Promise<Processes> {
    return parseShowProc(await this.command("show proc"));
  }

  /** Every worker's server rows, current worker first. */
  async stats(): Promise<Array<ServerStat & { current: boolean }>> {
    const { current, old } = await this.processes();
    const rows = await Promise.all(
      [...current, ...old].map(async (pid) => {
        const csv = await this.command(`@!${pid} show stat`).catch(() => "");
        return parseShowStat(csv).map((row) => ({ ...row, current: current.includes(pid) }));
      }),
    );
    return rows.flat();
  }

  /**
   * On the current worker: "drain" stops new connections to these `backend/server`s (open ones
   * carry on); "ready" takes them back.
   */
  async setState(servers: string[], state: "drain" | "ready"): Promise<void> {
    const { current } = await this.processes();
    for (const pid of current) {
      for (const server of servers) await this.command(`@!${pid} set server ${server} state ${state}`);
    }
  }

  /** Whether none of these `backend/server`s has a connection open on any worker. */
  async idle(servers: string[]): Promise<boolean> {
    const rows = await this.stats();
    return !rows.some((row) => row.active > 0 && servers.includes(`${row.backend}/${row.server}`));
  }

  /**
   * Reload (the master re-reads its files; the new worker takes over the listening sockets) and
   * resolve once a new worker runs them. Throws when HAProxy reports the reload failed or no new
   * worker appears in time; the previous worker then keeps serving.
   */
  async reload(): Promise<void> {
    const before = await this.processes();
    await this.command("reload").catch(() => ""); // the master may close the connection as it re-executes
    const deadline = Date.now() + RELOAD_TIMEOUT_MS;
    for (;;) {
      await sleep(POLL_MS);
      const now = await this.processes().catch(() => undefined); // the socket is briefly away during the re-exec
      if (now && now.failedReloads > before.failedReloads) throw new Error("HAProxy failed to load the configuration");
      if (now && now.reloads > before.reloads && now.current.some((pid) => !before.current.includes(pid))) return;
      if (Date.now() > deadline) throw new Error(`HAProxy did not reload within ${RELOAD_TIMEOUT_MS} ms`);
    }
  }
}
