/**
 * The load balancer's HAProxy configuration as rendered from routes, the checks that keep routes of
 * different orgs from colliding, what a change drains, and reading HAProxy's master CLI answers
 * (routing, health and draining through a real HAProxy are in tests/integration/). Also where the
 * agent finds nginx's master pid to await a site reload.
 */
import { expect } from "chai";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import {
  type OrgRoute,
  checkTiming,
  dataRoutes,
  renderHaproxy as renderWithMap,
  renderHostMap,
  routeConflict,
  serversLeaving,
} from "../../agent/src/render/haproxy/config";
import { haproxyChange } from "../../agent/src/render/haproxy/runtime-changes";
import { HaproxyControl, isHealthy, parseShowProc, parseShowStat } from "../../agent/src/render/haproxy/control";
import { nginxPidFile } from "../../agent/src/render/nginx/reload-live";
import { balancerRouteSchema } from "../../wire";
import type { ApiFailure } from "../../agent/src/errors";
import { checkRegistered, checkRegistrable } from "../../agent/src/balancer/registered-backends";

const webA = {
  name: "web-a",
  http: "127.0.8.1:8080",
  ftp: "127.0.8.1:2121",
  passivePorts: [30100, 30199] as [number, number],
};
const webB = {
  name: "web-b",
  http: "127.0.8.2:8080",
  ftp: "127.0.8.2:2121",
  passivePorts: [30200, 30299] as [number, number],
};
const HOST_MAP = "/var/lib/lbh/lbhosting.hosts.map";
const renderHaproxy = (agent: string, listen: string | undefined, routes: OrgRoute[]) =>
  renderWithMap(agent, { http: listen }, routes, HOST_MAP);

const acme: OrgRoute = {
  org: "acme",
  route: {
    domains: ["www.acme.test", "acme.test"],
    backends: [webA, { ...webB, weight: 3 }],
    ftp: { listen: "127.0.8.3:21" },
  },
};

describe("agent load balancer: HAProxy configuration", function () {
  it("renders the shared web frontend, a least-busy checked web backend, and FTP with passive ranges", function () {
    const text = renderHaproxy("lb-1", "127.0.8.3:80", [acme]);
    expect(text).to.include("frontend lbh_http\n    mode http\n    bind 127.0.8.3:80\n");
    // Domains are in the host map, which the runtime API changes without a reload.
    expect(text).to.include(`    http-request set-var(txn.backend) var(txn.host),map(${HOST_MAP})\n`);
    expect(text).to.include("    use_backend %[var(txn.backend)] if { var(txn.backend) -m found }\n");
    expect(text).not.to.include("acme.test acme.test");
    expect(text).to.include("    default_backend lbh_no_route\n");
    expect(text).to.include("backend lbh_web_acme\n    mode http\n    balance leastconn\n");
    // The check reads the agent's file in the site's document root: only a 200 keeps a node in.
    expect(text).to.include(
      "    http-check send meth GET uri /.well-known/lbhosting/health ver HTTP/1.1 hdr Host www.acme.test\n" +
        "    http-check expect status 200\n",
    );
    expect(text).not.to.include("rstatus");
    expect(text).to.include("    server web-a 127.0.8.1:8080 check weight 1\n");
    expect(text).to.include("    server web-b 127.0.8.2:8080 check weight 3\n");
    expect(text).to.include("frontend lbh_ftp_acme\n    mode tcp\n    bind 127.0.8.3:21\n");
    expect(text).to.include("backend lbh_ftp_acme\n    mode tcp\n    balance leastconn\n");
    expect(text, "a refused FTP connection is retried elsewhere").to.match(
      /backend lbh_ftp_acme\n( {4}.*\n)* {4}option redispatch 1\n/,
    );
    // Each node's pure-ftpd is checked once (a greeting), and the org's servers follow that check.
    expect(text).to.include("backend lbh_ftp_checks\n    mode tcp\n");
    expect(text).to.include("    tcp-check expect rstring ^220\n");
    expect(text).to.include("    server ftp_127.0.8.1_2121 127.0.8.1:2121 check inter 1s\n");
    expect(text).to.include("    server web-a 127.0.8.1:2121 track lbh_ftp_checks/ftp_127.0.8.1_2121 weight 1\n");
    // Data connections: each node's passive range on the LB's FTP host goes to that node, same port.
    expect(text).to.include("    bind 127.0.8.3:30100-30199\n    bind 127.0.8.3:30200-30299\n");
    expect(text).to.include("    use_backend lbh_ftpdata_127.0.8.1_30100-30199 if { dst_port 30100:30199 }\n");
    expect(text).to.include(
      "backend lbh_ftpdata_127.0.8.2_30200-30299\n    mode tcp\n    timeout server 5m\n    server web-b 127.0.8.2\n",
    );
  });

  it("checks each org's web backend every second up to 100 backends, then less often, every second once a check fails", function () {
    const routes = (count: number) =>
      Array.from({ length: count }, (_, i) => ({
        org: `o${i}`,
        route: { ...acme.route, domains: [`www.o${i}.test`] },
      }));
    expect(checkTiming(routes(2))).to.equal("inter 1s fastinter 1s downinter 1s fall 3 rise 2");
    expect(checkTiming(routes(100))).to.match(/^inter 1s /);
    expect(checkTiming(routes(101))).to.match(/^inter 2s /);
    expect(checkTiming(routes(1000))).to.match(/^inter 10s fastinter 1s /);
    const ftpOnly = routes(250).map(({ org, route }) => ({ org, route: { ...route, domains: [] } }));
    expect(checkTiming(ftpOnly), "FTP backends track one check per node").to.match(/^inter 1s /);
    const text = renderHaproxy("lb-1", ":80", routes(250));
    expect(text).to.include("    default-server inter 3s fastinter 1s downinter 1s fall 3 rise 2\n");
    expect(text, "a node's FTP check stays every second").to.include("127.0.8.1:2121 check inter 1s\n");
  });

  it("passes HTTPS through by SNI to the org's nodes, checked over TLS, drained and weighted like the web servers", function () {
    const secure: OrgRoute = {
      org: "acme",
      route: {
        domains: ["www.acme.test", "acme.test"],
        tlsDomains: ["acme.test", "www.acme.test"],
        backends: [
          { name: "web-a", http: "127.0.8.1:8080", https: "127.0.8.1:8443" },
          { name: "web-b", http: "127.0.8.2:8080", https: "127.0.8.2:8443", weight: 2 },
        ],
      },
    };
    const listen = { http: "127.0.8.3:80", https: "127.0.8.3:443" };
    const text = renderWithMap("lb-1", listen, [secure], HOST_MAP);
    expect(text).to.include("frontend lbh_https\n    mode tcp\n    bind 127.0.8.3:443\n");
    expect(text).to.include("    tcp-request content accept if { req.ssl_hello_type 1 }\n");
    expect(text).to.include(`    use_backend %[req.ssl_sni,lower,map(${HOST_MAP}),regsub(^lbh_web_,lbh_tls_)]\n`);
    expect(text).to.include("backend lbh_tls_acme\n    mode tcp\n    balance leastconn\n");
    expect(text).to.include(
      "    server web-b 127.0.8.2:8443 check check-ssl verify none check-sni acme.test weight 2\n",
    );
    expect(text).to.include("hdr Host acme.test\n");
    // Without an HTTPS address, or without a route with certificates, no HTTPS frontend.
    expect(renderWithMap("lb-1", { http: listen.http }, [secure], HOST_MAP)).not.to.include("lbh_https");
    expect(renderWithMap("lb-1", listen, [acme], HOST_MAP)).not.to.include("lbh_https");
    // A node leaving is drained from the HTTPS backend too; a weight changes at run time.
    const without = { ...secure, route: { ...secure.route, backends: secure.route.backends.slice(0, 1) } };
    expect(serversLeaving([secure], [without])).to.deep.equal(["lbh_web_acme/web-b", "lbh_tls_acme/web-b"]);
    const heavier = {
      ...secure,
      route: { ...secure.route, backends: [secure.route.backends[0], { ...secure.route.backends[1], weight: 5 }] },
    };
    expect(haproxyChange([secure], [heavier], HOST_MAP)).to.deep.equal({
      kind: "runtime",
      commands: ["set server lbh_web_acme/web-b weight 5", "set server lbh_tls_acme/web-b weight 5"],
      config: true,
    });
    // A node joining with HTTPS needs the HTTPS backend's server: a reload.
    expect(haproxyChange([without], [secure], HOST_MAP).kind).to.equal("reload");
    expect(balancerRouteSchema.safeParse({ ...secure.route, tlsDomains: ["shop.acme.test"] }).success).to.equal(false);
    const httpOnly = { ...secure.route, backends: [{ name: "web-a", http: "127.0.8.1:8080" }] };
    expect(balancerRouteSchema.safeParse(httpOnly).success).to.equal(false);
  });

  it("checks each node's FTP server once however many orgs it serves", function () {
    const orgs = ["acme", "bravo", "carol"].map((org, i) => ({
      org,
      route: { ...acme.route, domains: [`www.${org}.test`], ftp: { listen: `127.0.8.3:${2100 + i}` } },
    }));
    const text = renderHaproxy("lb-1", ":80", orgs);
    expect(text.match(/ check inter 1s\n/g)?.length, "one check line per node FTP address").to.equal(2);
    expect(text.match(/track lbh_ftp_checks\//g)).to.have.length(6);
    expect(text).not.to.match(/backend lbh_ftp_acme\n( {4}.*\n)* {4}option tcp-check/);
    expect(renderHaproxy("lb-1", ":80", [{ org: "acme", route: { ...acme.route, ftp: undefined } }])).not.to.include(
      "lbh_ftp_checks",
    );
  });

  it("renders only the web part without ftp, and no web backend for an FTP-only route", function () {
    const webOnly = renderHaproxy("lb-1", ":80", [{ org: "acme", route: { ...acme.route, ftp: undefined } }]);
    expect(webOnly).to.include("backend lbh_web_acme\n");
    expect(webOnly).not.to.include("lbh_ftp");
    const ftpOnly = renderHaproxy("lb-1", ":80", [{ org: "acme", route: { ...acme.route, domains: [] } }]);
    expect(ftpOnly).not.to.include("lbh_web_acme");
    expect(ftpOnly).to.include("frontend lbh_ftp_acme\n");
  });

  it("maps every domain to its org's web backend in the host map, one line each, sorted", function () {
    const domains = Array.from({ length: 100 }, (_, i) => `d${i}.acme.test`);
    const globex: OrgRoute = { org: "globex", route: { domains: ["globex.test"], backends: [webA] } };
    const map = renderHostMap([{ org: "acme", route: { domains, backends: [webA] } }, globex]);
    const lines = map.split("\n").filter(Boolean);
    expect(lines).to.have.length(101);
    expect(lines).to.include("d99.acme.test lbh_web_acme");
    expect(lines).to.include("globex.test lbh_web_globex");
    expect([...lines].sort()).to.deep.equal(lines);
    expect(renderHostMap([])).to.equal("");
  });

  it("forwards a passive range shared by two orgs (the same node) once", function () {
    const globex: OrgRoute = {
      org: "globex",
      route: { domains: ["globex.test"], backends: [webA], ftp: { listen: "127.0.8.3:2122" } },
    };
    expect(dataRoutes([acme, globex])).to.deep.equal([
      { listenHost: "127.0.8.3", range: [30100, 30199], nodeHost: "127.0.8.1", node: "web-a" },
      { listenHost: "127.0.8.3", range: [30200, 30299], nodeHost: "127.0.8.2", node: "web-b" },
    ]);
    expect(routeConflict("globex", globex.route, [acme], { http: "127.0.8.3:80" })).to.equal(undefined);
  });

  it("refuses what would collide with another org's route on the same load balancer", function () {
    const conflict = (route: OrgRoute["route"]) => routeConflict("globex", route, [acme], { http: "127.0.8.3:80" });
    expect(conflict({ domains: ["globex.test", "acme.test"], backends: [webB] })).to.deep.include({
      code: "domain_taken",
      path: "domains.1",
    });
    expect(conflict({ domains: [], backends: [webB], ftp: { listen: "127.0.8.3:21" } })).to.deep.include({
      code: "address_taken",
      path: "ftp.listen",
    });
    expect(conflict({ domains: [], backends: [webB], ftp: { listen: "127.0.8.3:80" } })).to.deep.include({
      code: "address_taken",
    });
    const other = { name: "web-c", ftp: "127.0.8.5:21", passivePorts: [30150, 30160] as [number, number] };
    expect(conflict({ domains: [], backends: [other], ftp: { listen: "127.0.8.3:2122" } })).to.deep.include({
      code: "passive_ports_taken",
      path: "backends.0.passivePorts",
    });
    const overPort = { ...other, passivePorts: [2100, 2200] as [number, number] };
    expect(conflict({ domains: [], backends: [overPort], ftp: { listen: "127.0.8.3:2122" } })).to.deep.include({
      code: "address_taken",
    });
    // A tenant may read these: they never name the other org.
    const refusals = [
      conflict({ domains: ["acme.test"], backends: [webB] }),
      conflict({ domains: [], backends: [webB], ftp: { listen: "127.0.8.3:21" } }),
      conflict({ domains: [], backends: [other], ftp: { listen: "127.0.8.3:2122" } }),
    ];
    for (const refusal of refusals) expect(refusal?.message).to.be.a("string").and.not.include('"acme"');
    // Another LB host: the same ports are free there.
    expect(conflict({ domains: [], backends: [other], ftp: { listen: "127.0.8.4:21" } })).to.equal(undefined);
  });

  it("drains the servers a change removes or moves, not the ones it keeps or adds", function () {
    const moved = { ...webB, http: "127.0.8.2:9090" };
    const after: OrgRoute = { org: "acme", route: { ...acme.route, backends: [webA, moved], ftp: undefined } };
    expect(serversLeaving([acme], after ? [after] : []).sort()).to.deep.equal([
      "lbh_ftp_acme/web-a",
      "lbh_ftp_acme/web-b",
      "lbh_web_acme/web-b",
    ]);
    expect(serversLeaving([acme], [acme])).to.deep.equal([]);
    expect(serversLeaving([], [acme])).to.deep.equal([]);
    expect(serversLeaving([acme], []).length).to.equal(4);
  });

  it("validates routes: names, addresses, ranges and what FTP needs", function () {
    const issues = (route: unknown) =>
      balancerRouteSchema.safeParse(route).error?.issues.map((issue) => issue.path.join(".")) ?? [];
    expect(issues(acme.route)).to.deep.equal([]);
    expect(issues({ domains: ["a.test"], backends: [webA, { ...webB, name: "web-a" }] })).to.include("backends.1.name");
    expect(issues({ domains: ["a.test"], backends: [webA, { ...webB, passivePorts: [30199, 30250] }] })).to.include(
      "backends.1.passivePorts",
    );
    expect(issues({ domains: [], backends: [webA] })).to.include("domains");
    expect(issues({ domains: ["a.test"], backends: [{ name: "x", ftp: "127.0.0.1:21" }] })).to.include(
      "backends.0.passivePorts",
    );
    expect(
      issues({ domains: [], backends: [{ name: "x", http: "127.0.0.1:80" }], ftp: { listen: "127.0.0.1:21" } }),
    ).to.include("ftp");
    expect(issues({ domains: ["a.test"], backends: [{ ...webA, name: "web a" }] })).to.include("backends.0.name");
    expect(issues({ domains: ["a.test"], backends: [{ ...webA, passivePorts: [300, 200] }] })).to.include(
      "backends.0.passivePorts",
    );
    expect(issues({ domains: ["a.test"], backends: [{ ...webA, weight: 0 }] })).to.include("backends.0.weight");
    expect(issues({ domains: ["a.test"], backends: [{ ...webA, maxSessions: 8 }] })).to.deep.equal([]);
    for (const bad of [1, 2.5, "8", 100_001]) {
      expect(issues({ domains: ["a.test"], backends: [{ ...webA, maxSessions: bad }] }), String(bad)).to.include(
        "backends.0.maxSessions",
      );
    }
    expect(issues({ domains: ["a.test"], backends: [{ name: "x", http: "127.0.0.1:80", maxSessions: 8 }] })).to.include(
      "backends.0.maxSessions",
    );
  });

  it("caps each node's FTP sessions one below its limit (the last slot is the check's); excess ones queue", function () {
    const limited: OrgRoute = {
      org: "acme",
      route: {
        ...acme.route,
        backends: [
          { ...webA, maxSessions: 3 },
          { ...webB, maxSessions: 8 },
        ],
      },
    };
    const text = renderHaproxy("lb-1", ":80", [limited]);
    expect(text).to.include(
      "    server web-a 127.0.8.1:2121 track lbh_ftp_checks/ftp_127.0.8.1_2121 weight 1 maxconn 2\n",
    );
    expect(text).to.include(
      "    server web-b 127.0.8.2:2121 track lbh_ftp_checks/ftp_127.0.8.2_2121 weight 1 maxconn 7\n",
    );
    expect(text, "no cap on the web servers").to.include("    server web-a 127.0.8.1:8080 check weight 1\n");
    expect(text).to.match(/backend lbh_ftp_acme\n( {4}.*\n)* {4}timeout queue 30s\n/);
    expect(renderHaproxy("lb-1", ":80", [acme]), "no limit given, no cap").not.to.include("maxconn");
  });
});

describe("agent load balancer: changes without a reload", function () {
  const change = (before: OrgRoute[], after: OrgRoute[]) => haproxyChange(before, after, HOST_MAP);
  const withRoute = (route: Partial<OrgRoute["route"]>): OrgRoute => ({
    org: "acme",
    route: { ...acme.route, ...route },
  });
  const globex: OrgRoute = { org: "globex", route: { domains: ["globex.test"], backends: [webA] } };

  it("changes the host map for a route whose domains change (the check's first domain kept)", function () {
    const after = withRoute({ domains: ["www.acme.test", "shop.acme.test"] });
    expect(change([acme, globex], [after, globex])).to.deep.equal({
      kind: "runtime",
      commands: [`add map ${HOST_MAP} shop.acme.test lbh_web_acme`, `del map ${HOST_MAP} acme.test`],
      config: false,
    });
    // What lets the agent leave the configuration file alone: it does not show those domains.
    expect(renderHaproxy("lb-1", ":80", [after, globex])).to.equal(renderHaproxy("lb-1", ":80", [acme, globex]));
  });

  it("moves a domain from one org to another with set map", function () {
    const before = [acme, { ...globex, route: { ...globex.route, domains: ["globex.test"] } }];
    const after = [
      withRoute({ domains: ["www.acme.test"] }),
      { ...globex, route: { ...globex.route, domains: ["globex.test", "acme.test"] } },
    ];
    expect(change(before, after)).to.deep.equal({
      kind: "runtime",
      commands: [`set map ${HOST_MAP} acme.test lbh_web_globex`],
      config: false,
    });
  });

  it("sets the weight of a server in the web and FTP backends that have it", function () {
    const after = withRoute({ backends: [webA, { ...webB, weight: 5 }] });
    expect(change([acme], [after])).to.deep.equal({
      kind: "runtime",
      commands: ["set server lbh_web_acme/web-b weight 5", "set server lbh_ftp_acme/web-b weight 5"],
      config: true,
    });
    expect(change([acme], [acme])).to.deep.equal({ kind: "none" });
  });

  it("adds a node joining a route's web backend only with add server, enabled with its checks", function () {
    const webC = { name: "web-c", http: "127.0.8.4:8080", weight: 2 };
    const after = withRoute({
      domains: ["www.acme.test", "c.acme.test"],
      backends: [webA, { ...webB, weight: 3 }, webC],
    });
    expect(change([acme], [after])).to.deep.equal({
      kind: "runtime",
      commands: [
        "add server lbh_web_acme/web-c 127.0.8.4:8080 check weight 2 inter 1s fastinter 1s downinter 1s fall 3 rise 2",
        "enable health lbh_web_acme/web-c",
        "enable server lbh_web_acme/web-c",
        `add map ${HOST_MAP} c.acme.test lbh_web_acme`,
        `del map ${HOST_MAP} acme.test`,
      ],
      config: true,
    });
    // The same server line, with the defaults' check timing, as the configuration gives it.
    expect(renderHaproxy("lb-1", ":80", [after])).to.include("    server web-c 127.0.8.4:8080 check weight 2\n");
    expect(renderHaproxy("lb-1", ":80", [after])).to.include(
      "    default-server inter 1s fastinter 1s downinter 1s fall 3 rise 2\n",
    );
    const withFtp = { ...webC, ftp: "127.0.8.4:21", passivePorts: [30300, 30399] as [number, number] };
    expect(change([acme], [withRoute({ backends: [...acme.route.backends, withFtp] })]).kind, "with FTP").to.equal(
      "reload",
    );
  });

  it("reloads for a structural change: a node, an address, a new org, FTP, the check's domain", function () {
    expect(change([acme], [withRoute({ backends: [webA] })]).kind, "a node leaves").to.equal("reload");
    expect(change([acme], [withRoute({ backends: [webA, { ...webB, http: "127.0.8.2:8081" }] })]).kind).to.equal(
      "reload",
    );
    expect(change([acme], [acme, globex]).kind, "a new org backend").to.equal("reload");
    expect(change([acme], [withRoute({ ftp: undefined })]).kind, "FTP listener").to.equal("reload");
    expect(change([acme], [withRoute({ domains: ["acme.test"] })]).kind, "health check Host").to.equal("reload");
    expect(change([acme], [withRoute({ domains: [] })]).kind, "no more web backend").to.equal("reload");
  });
});

describe("agent load balancer: HAProxy's master CLI answers", function () {
  it("reads the workers of `show proc`, current and old, and the reload counters", function () {
    const text = [
      "#<PID>          <type>          <reloads>       <uptime>        <version>",
      "19394           master          2 [failed: 1]   0d00h10m16s     2.6.12-1+deb12u4",
      "# workers",
      "28284           worker          0               0d00h00m01s     2.6.12-1+deb12u4",
      "# old workers",
      "28087           worker          1               0d00h00m07s     2.6.12-1+deb12u4",
      "# programs",
      "",
    ].join("\n");
    expect(parseShowProc(text)).to.deep.equal({ reloads: 2, failedReloads: 1, current: [28284], old: [28087] });
  });

  it("reads server rows of `show stat` by column name", function () {
    const csv = [
      "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight",
      "lbh_web_acme,web-a,0,0,3,4,,9,0,0,,0,,0,0,0,0,UP,1",
      "lbh_web_acme,web-b,0,0,0,1,,2,0,0,,0,,0,0,0,0,DOWN 1/2,1",
      "lbh_web_acme,BACKEND,0,0,3,4,,11,0,0,0,0,,0,0,0,0,UP,2",
      "lbh_http,FRONTEND,,,3,4,,11,0,0,0,0,0,,,,,OPEN,",
      "",
    ].join("\n");
    expect(parseShowStat(csv)).to.deep.equal([
      { backend: "lbh_web_acme", server: "web-a", status: "UP", active: 3 },
      { backend: "lbh_web_acme", server: "web-b", status: "DOWN 1/2", active: 0 },
    ]);
    expect(parseShowStat("Unknown command\n")).to.deep.equal([]);
  });

  it("tries the master socket again while it is away (a reload re-executes the master), and gives up in bounded time", async function () {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lbh-master-cli-"));
    const masterSocket = path.join(dir, "master.sock");
    const control = new HaproxyControl({ bin: "haproxy", masterSocket });
    const received: string[] = [];
    const server = net.createServer((socket) =>
      socket.on("data", (line) => {
        received.push(line.toString());
        socket.end("answered\n");
      }),
    );
    try {
      const answer = control.command("show proc");
      setTimeout(() => server.listen(masterSocket), 150); // away for a while, then back
      expect(await answer).to.equal("answered\n");
      expect(received, "sent once, after the master came back").to.deep.equal(["show proc\n"]);

      await new Promise((resolve) => server.close(resolve));
      const failure = await control.command("show proc").then(
        () => undefined,
        (error: NodeJS.ErrnoException) => error,
      );
      expect(failure?.code).to.be.oneOf(["ENOENT", "ECONNREFUSED"]);
    } finally {
      server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("counts a server healthy while HAProxy sends it new connections", function () {
    expect(["UP", "UP 1/3", "no check"].every(isHealthy)).to.equal(true);
    expect(["DOWN", "DOWN 1/2", "DRAIN", "MAINT", "NOLB"].some(isHealthy)).to.equal(false);
  });
});

describe("agent sites: the nginx pid file", function () {
  let dir: string;
  const mainConf = (text: string) => {
    const file = path.join(dir, "nginx.conf");
    fs.writeFileSync(file, text);
    return file;
  };

  beforeEach(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "lbh-drain-"));
  });

  afterEach(function () {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("takes --nginx-pid-file as given", function () {
    expect(nginxPidFile({ bin: "nginx", pidFile: "/run/x.pid", mainConf: mainConf("pid /run/y.pid;\n") })).to.equal(
      "/run/x.pid",
    );
  });

  it("reads the main configuration's pid directive, relative to the prefix", function () {
    const conf = mainConf("# pid /commented/out.pid;\nuser www-data;\n  pid   logs/nginx.pid ;\nevents {}\n");
    expect(nginxPidFile({ bin: "nginx", mainConf: conf, prefix: "/srv/nginx" })).to.equal("/srv/nginx/logs/nginx.pid");
    expect(nginxPidFile({ bin: "nginx", mainConf: conf })).to.equal(undefined);
    expect(nginxPidFile({ bin: "nginx", mainConf: mainConf('pid "/run/nginx.pid";\n') })).to.equal("/run/nginx.pid");
  });

  it("knows no pid file without a main configuration or pid directive", function () {
    expect(nginxPidFile({ bin: "nginx" })).to.equal(undefined);
    expect(nginxPidFile({ bin: "nginx", mainConf: mainConf("events {}\n") })).to.equal(undefined);
    expect(nginxPidFile({ bin: "nginx", mainConf: path.join(dir, "missing.conf") })).to.equal(undefined);
  });
});

describe("agent load balancer: registered backends", function () {
  const api = { host: "127.0.40.3", port: 8443 };
  const failureOf = (fn: () => void): ApiFailure | undefined => {
    try {
      fn();
    } catch (error) {
      return error as ApiFailure;
    }
    return undefined;
  };

  it("refuses to register link-local, unspecified and the agent's own API addresses, naming the field", function () {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ http: "169.254.169.254:80" }, "http"],
      [{ http: "127.0.40.1:80", ftp: "169.254.0.1:21", passivePorts: [30000, 30009] }, "ftp"],
      [{ http: "0.0.0.0:80" }, "http"],
      [{ http: "127.0.40.3:8443" }, "http"],
      [{ http: "localhost:8443" }, "http"],
    ];
    for (const [addresses, field] of cases) {
      const failure = failureOf(() => checkRegistrable(addresses, api));
      expect(failure?.status, JSON.stringify(addresses)).to.equal(400);
      expect(failure?.details.map((detail) => detail.path)).to.deep.equal([field]);
    }
    // Another host on the same port, the same host on another port: fine.
    for (const http of ["127.0.40.1:8443", "127.0.40.3:8080", "169.253.0.1:80"]) {
      expect(
        failureOf(() => checkRegistrable({ http }, api)),
        http,
      ).to.equal(undefined);
    }
    // An API on every address: that port on any host may be this agent.
    const wildcard = { host: "0.0.0.0", port: 8443 };
    expect(failureOf(() => checkRegistrable({ http: "10.0.0.5:8443" }, wildcard))?.status).to.equal(400);
  });

  it("accepts a route only of registered nodes at exactly their registered addresses (weight aside)", function () {
    const registered = new Map([
      ["web-a", { http: "127.0.40.1:80", https: "127.0.40.1:443" }],
      ["web-b", { http: "127.0.40.2:80", ftp: "127.0.40.2:21", passivePorts: [30000, 30009] as [number, number] }],
    ]);
    const lookup = (name: string) => registered.get(name);
    const route = (...backends: Array<Record<string, unknown>>) =>
      balancerRouteSchema.parse({ domains: ["a.test"], backends });
    expect(
      failureOf(() => checkRegistered(route({ name: "web-a", http: "127.0.40.1:80", weight: 5 }), lookup)),
    ).to.equal(undefined);
    // A route of an org with certificates uses the node's HTTPS address too; one without, not.
    const secure = { name: "web-a", http: "127.0.40.1:80", https: "127.0.40.1:443" };
    expect(failureOf(() => checkRegistered(route(secure), lookup))).to.equal(undefined);
    const full = { name: "web-b", http: "127.0.40.2:80", ftp: "127.0.40.2:21", passivePorts: [30000, 30009] };
    expect(failureOf(() => checkRegistered(route(full), lookup))).to.equal(undefined);
    const refused: Array<[ReturnType<typeof route>, string]> = [
      [route({ name: "web-a", http: "169.254.169.254:80" }), "backends.0"],
      [route({ name: "web-a", http: "127.0.40.1:80" }, { name: "web-z", http: "127.0.40.9:80" }), "backends.1"],
      [route({ ...full, passivePorts: [30000, 30010] }), "backends.0"],
      [route({ name: "web-b", http: "127.0.40.2:80" }), "backends.0"],
      [route({ ...secure, https: "127.0.40.1:8443" }), "backends.0"],
      [route({ ...full, https: "127.0.40.2:443" }), "backends.0"],
    ];
    for (const [body, path] of refused) {
      const failure = failureOf(() => checkRegistered(body, lookup));
      expect(failure?.status).to.equal(422);
      expect(failure?.code).to.equal("backend_not_registered");
      expect(failure?.details.map((detail) => detail.path)).to.deep.equal([path]);
      expect(failure?.message).to.match(/an administrator must register it/);
      expect(failure?.message).to.not.include("127.0.40.");
    }
  });
});
