/**
 * The load balancer's HAProxy configuration, rendered from its routes (pure functions): the
 * shared web frontend, per org a least-busy health-checked web backend and FTP frontend and
 * backend, the passive data frontends; plus what a change drains and which routes of different
 * orgs collide. Running HAProxy is haproxy-control.ts.
 *
 * Why HAProxy (see docs/ARCHITECTURE.md): `balance leastconn`, active health checks, TCP mode for
 * FTP, a runtime API to drain a server, and reloads that hand the listening sockets to the new
 * worker (`expose-fd listeners`), so no connection is refused while the configuration changes.
 */
import type { BalancerBackend, BalancerRoute, PortRange } from "../../../../wire";
import { SITE_CHECK_PATH } from "../site-check";

/** A route as stored, with its org. */
export interface OrgRoute {
  org: string;
  route: BalancerRoute;
}

export const webBackendName = (org: string): string => `lbh_web_${org}`;
export const ftpBackendName = (org: string): string => `lbh_ftp_${org}`;
/** An org's HTTPS backend: the web backend's name with `tls` for `web`, which the HTTPS frontend relies on. */
export const tlsBackendName = (org: string): string => `lbh_tls_${org}`;

/** Whether a route passes HTTPS through: it has domains with a certificate and nodes serving HTTPS. */
export const passesTls = (route: BalancerRoute): boolean =>
  (route.tlsDomains?.length ?? 0) > 0 && route.backends.some((backend) => backend.https !== undefined);

const hostOf = (address: string): string => address.slice(0, address.lastIndexOf(":"));
const portOf = (address: string): number => Number(address.slice(address.lastIndexOf(":") + 1));

/** One passive-port range on the load balancer's FTP host, forwarded to the node that opens those ports. */
interface DataRoute {
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

/**
 * Web checks a node gets from one load balancer, per second, at most. Each org's web backend checks
 * its own content on every node, so beyond this many backends their interval grows: 1,000 orgs
 * are checked every 10 s each instead of 1,000 requests a second to every node.
 */
const WEB_CHECKS_PER_SECOND = 100;

/**
 * Every server's check timing (the defaults' `default-server`): a node leaves after 3 failed
 * checks and returns after 2 passed ones. Checks come every second, or every ⌈web backends / 100⌉
 * seconds past 100 backends; once one fails (`fastinter`), and while a node is down (`downinter`),
 * every second. The timing changes only with the number of web backends, i.e. with a reload. A
 * server added at run time (`add server`) does not take `default-server`, so it is given these itself.
 */
export function checkTiming(routes: OrgRoute[]): string {
  const backends =
    routes.filter(({ route }) => route.domains.length > 0).length +
    routes.filter(({ route }) => passesTls(route)).length;
  const inter = Math.max(1, Math.ceil(backends / WEB_CHECKS_PER_SECOND));
  return `inter ${inter}s fastinter 1s downinter 1s fall 3 rise 2`;
}

/** The runtime API's `add server` of a node's web server, with what its configuration line and the defaults give it. */
export const addWebServer = (org: string, backend: BalancerBackend, timing: string): string =>
  `add server ${webBackendName(org)}/${backend.name} ${backend.http as string} check weight ${backend.weight ?? 1} ${timing}`;

/**
 * Every org's FTP goes to the same pure-ftpd on a node, so each node FTP address is checked once,
 * in this backend, and each org's FTP server tracks that check: a thousand orgs cost one check a
 * second per node, not a thousand (each would make pure-ftpd fork a session process).
 */
const FTP_CHECKS = "lbh_ftp_checks";

/** The check server of a node FTP address ("127.0.42.1:2121" → "ftp_127.0.42.1_2121"). */
const ftpCheckName = (address: string): string => `ftp_${address.replace(/[^\w.-]/g, "_")}`;

/**
 * A node's FTP server line, tracking its address's check. With its session limit (pure-ftpd's -c),
 * HAProxy sends it one session fewer: the last slot is the check's, which pure-ftpd would otherwise
 * greet with "421 … maximum" on a full node (marking it down) and which could take a session's place.
 */
const ftpServerLine = (backend: BalancerBackend): string =>
  serverLine(backend, backend.ftp as string, `track ${FTP_CHECKS}/${ftpCheckName(backend.ftp as string)}`) +
  (backend.maxSessions === undefined ? "" : ` maxconn ${backend.maxSessions - 1}`);

/** The backend holding one check per node FTP address the routes use (none without FTP routes). */
function ftpChecksSection(routes: OrgRoute[]): string[] {
  const addresses = new Set<string>();
  for (const { route } of routes) {
    if (!route.ftp) continue;
    for (const backend of route.backends) if (backend.ftp !== undefined) addresses.add(backend.ftp);
  }
  if (addresses.size === 0) return [];
  return [
    `backend ${FTP_CHECKS}`,
    "    mode tcp",
    // A greeting is a working pure-ftpd; QUIT ends the session it started.
    "    option tcp-check",
    "    tcp-check connect",
    "    tcp-check expect rstring ^220",
    '    tcp-check send "QUIT\\r\\n"',
    // One per node, whatever the number of orgs: every second.
    ...[...addresses].sort().map((address) => `    server ${ftpCheckName(address)} ${address} check inter 1s`),
    "",
  ];
}

/** The check that a node serves the org's content: the agent's check file, asked for as `name`. */
const contentCheck = (name: string): string[] => [
  "    option httpchk",
  `    http-check send meth GET uri ${SITE_CHECK_PATH} ver HTTP/1.1 hdr Host ${name}`,
  "    http-check expect status 200",
];

function webSection({ org, route }: OrgRoute): string[] {
  const servers = route.backends.filter((backend) => backend.http !== undefined);
  return [
    `backend ${webBackendName(org)}`,
    "    mode http",
    "    balance leastconn",
    "    option forwardfor",
    // Active check: the node serves the org's content, i.e. reads the agent's check file in the
    // document root of the org's first domain; a node answering 403/404 (content it cannot read,
    // an unmounted NAS) leaves the rotation.
    ...contentCheck(route.domains[0]),
    // A node that refuses or drops a connection before its checks have failed: retry on another one.
    "    retries 3",
    "    option redispatch 1",
    "    retry-on conn-failure empty-response",
    ...servers.map((backend) => serverLine(backend, backend.http as string, "check")),
    "",
  ];
}

/**
 * HTTPS passed through to the org's nodes (their nginx holds the certificate, so keys never reach
 * the load balancer). The check asks a node for the org's check file over TLS, naming the org's
 * first HTTPS domain: it passes when the node completes the handshake for that name and serves the
 * org's content. It does not verify the certificate: trusting it is the client's decision (an
 * uploaded or ACME certificate, of a CA the load balancer need not know); the check proves serving.
 */
function tlsSection({ org, route }: OrgRoute): string[] {
  if (!passesTls(route)) return [];
  const name = (route.tlsDomains as string[])[0];
  const servers = route.backends.filter((backend) => backend.https !== undefined);
  return [
    `backend ${tlsBackendName(org)}`,
    "    mode tcp",
    "    balance leastconn",
    ...contentCheck(name),
    // A node that refuses the connection before its checks have failed: try another one.
    "    retries 3",
    "    option redispatch 1",
    ...servers.map((backend) =>
      serverLine(backend, backend.https as string, `check check-ssl verify none check-sni ${name}`),
    ),
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
    // Sessions beyond every node's limit wait here for a free slot, as long as an FTP client
    // usually waits for the server's greeting, instead of being refused by pure-ftpd.
    "    timeout queue 30s",
    // A node whose FTP server died gets new sessions until its check fails (ftpChecksSection): a
    // refused connection is retried on another node instead of closing the client's.
    "    retries 3",
    "    option redispatch 1",
    ...servers.map(ftpServerLine),
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

/**
 * The shared web frontend. A request's Host goes through the host map (domain → org web backend),
 * so which domains an org has lives in the map, not in the configuration: HAProxy's runtime API
 * changes a map entry without a reload (runtime-changes.ts).
 */
function httpFrontend(httpListen: string, hostMap: string): string[] {
  return [
    "frontend lbh_http",
    "    mode http",
    `    bind ${httpListen}`,
    "    timeout client 1m",
    "    timeout http-keep-alive 10s",
    "    http-request set-var(txn.host) req.hdr(host),field(1,:),lower",
    `    http-request set-var(txn.backend) var(txn.host),map(${hostMap})`,
    "    use_backend %[var(txn.backend)] if { var(txn.backend) -m found }",
    "    default_backend lbh_no_route",
    "",
    "backend lbh_no_route",
    "    mode http",
    '    http-request return status 404 content-type text/plain string "no site for this host on the load balancer"',
    "",
  ];
}

/**
 * The shared HTTPS frontend: TLS passes through, so the org is found by the name the client asks
 * for in its handshake (SNI), read before any byte is forwarded. The host map gives the org's web
 * backend for that name, and its HTTPS backend has the same name with `tls` for `web`: so the
 * runtime API's map changes route HTTPS as they route HTTP. A name the map does not hold, or an
 * org without HTTPS, gets no backend: the connection is closed.
 */
function httpsFrontend(httpsListen: string, hostMap: string): string[] {
  return [
    "frontend lbh_https",
    "    mode tcp",
    `    bind ${httpsListen}`,
    "    timeout client 1m",
    "    tcp-request inspect-delay 5s",
    "    tcp-request content accept if { req.ssl_hello_type 1 }",
    `    use_backend %[req.ssl_sni,lower,map(${hostMap}),regsub(^lbh_web_,lbh_tls_)]`,
    "    default_backend lbh_no_tls_route",
    "",
    "backend lbh_no_tls_route",
    "    mode tcp",
    "",
  ];
}

/** The host map file next to the agent's HAProxy file (`lbhosting.cfg` → `lbhosting.hosts.map`). */
export const hostMapFile = (confFile: string): string => confFile.replace(/(\.cfg)?$/, ".hosts.map");

/** The host map's entries: each routed domain → its org's web backend. */
export function hostMapEntries(routes: OrgRoute[]): Map<string, string> {
  const entries = new Map<string, string>();
  for (const { org, route } of routes) {
    for (const domain of route.domains) entries.set(domain, webBackendName(org));
  }
  return entries;
}

/** The host map file's text (HAProxy reads it on start and reload), one "domain backend" a line. */
export function renderHostMap(routes: OrgRoute[]): string {
  // Code-unit order: cheap at thousands of domains, and the same on every machine.
  const lines = [...hostMapEntries(routes)].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return lines.map(([domain, backend]) => `${domain} ${backend}\n`).join("");
}

/**
 * The agent's whole HAProxy file: its own defaults, the shared HTTP frontend (sites by Host), and
 * per org a web backend and an FTP frontend and backend; the passive data frontends last. Every
 * interpolated value was validated by the route schema (names, domains and addresses hold no spaces
 * or HAProxy syntax).
 */
export function renderHaproxy(
  agentName: string,
  listen: { http?: string; https?: string },
  routes: OrgRoute[],
  hostMap: string,
): string {
  const sorted = [...routes].sort((a, b) => a.org.localeCompare(b.org));
  const https = listen.https !== undefined && sorted.some(({ route }) => passesTls(route));
  return [
    `# Managed by the lbhosting agent "${agentName}": the load balancer's routes.`,
    "# Rewritten from the agent's database on every change; local edits are lost.",
    "defaults lbhosting",
    "    timeout connect 2s",
    "    timeout client 1m",
    "    timeout server 1m",
    "    timeout check 2s",
    `    default-server ${checkTiming(routes)}`,
    "",
    ...(listen.http === undefined ? [] : httpFrontend(listen.http, hostMap)),
    ...(https ? httpsFrontend(listen.https as string, hostMap) : []),
    ...sorted.filter(({ route }) => route.domains.length > 0).flatMap(webSection),
    ...(https ? sorted.flatMap(tlsSection) : []),
    ...sorted.flatMap(ftpSections),
    ...ftpChecksSection(sorted),
    ...dataSections(dataRoutes(sorted)),
  ].join("\n");
}

/** The (backend, server) pairs a configuration routes new connections to, with what they point at. */
function routedServers(routes: OrgRoute[]): Map<string, string> {
  const servers = new Map<string, string>();
  for (const { org, route } of routes) {
    for (const backend of route.backends) {
      if (backend.http !== undefined && route.domains.length > 0) {
        servers.set(`${webBackendName(org)}/${backend.name}`, backend.http);
      }
      if (backend.https !== undefined && passesTls(route)) {
        servers.set(`${tlsBackendName(org)}/${backend.name}`, backend.https);
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
  webListen: { http?: string; https?: string },
): { code: string; message: string; path: string } | undefined {
  for (const other of others) {
    const index = route.domains.findIndex((domain) => other.route.domains.includes(domain));
    if (index >= 0) {
      return {
        code: "domain_taken",
        path: `domains.${index}`,
        // Never the other org's name: a tenant may ask (errors quote nothing of another org).
        message: `domain "${route.domains[index]}" is already routed for another organization on this node`,
      };
    }
  }
  if (!route.ftp) return undefined;
  const listen = route.ftp.listen;
  const taken = others.find((other) => other.route.ftp?.listen === listen);
  if (taken || listen === webListen.http || listen === webListen.https) {
    const owner = taken ? "another organization" : "the load balancer's web traffic";
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
    const port = [listen, ...others.map((other) => other.route.ftp?.listen), webListen.http, webListen.https]
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
