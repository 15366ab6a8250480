/**
 * `npm run bench:tenants` — issue 25's table: what one write costs on a server holding 10
 * organizations against one holding ORGS, measured in the same run (figures printed, never asserted).
 *
 * One hosting node on 127.0.90.1 (agent, real nginx with its own main config, real pure-ftpd
 * serving the agent's PureDB, each where installed; the output says which ran), populated through
 * the API with orgs each holding one website, one FTP service and USERS_PER_ORG users with FTP
 * access (a password hash computed once and given, so the agent hashes nothing). With `--lb`, a
 * load-balancer agent driving a real HAProxy on 127.0.90.3 routes each org's domain to the node.
 *
 * At 10 orgs, then at ORGS orgs: sequential single requests (min / median of 3) of a user upsert
 * with FTP access, a user update changing no FTP account, a website add and a route update (its
 * domains only); population rates at concurrency 8 over the last 10 orgs populated (users/s,
 * routes/s) with the agent's CPU per write (bench/cpu.ts: a figure a loaded machine cannot fool);
 * HAProxy reloads during the 3 route updates (from the agent's /metrics); the agent's peak RSS
 * since its last start (covering the bulk writes) and, after a restart, the time until
 * `/v1/health` answers, until its FTP accounts are ready (its start's FTP round, which runs while
 * it answers), and its RSS. Then the ratio ORGS / 10 of each figure.
 *
 *   ORGS=1000 USERS_PER_ORG=20 npm run bench:tenants [-- --lb]
 *
 * Progress goes to stderr, the table and a JSON line to stdout.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { hashPassword } from "../common/password";
import { call } from "../tests/support/agent-http";
import { findHaproxy } from "../tests/support/haproxy";
import { startHostingNode, type HostingNode } from "../tests/support/hosting-node";
import { findNginx } from "../tests/support/nginx";
import { freePort } from "../tests/support/ports";
import { findFtpBinaries } from "../tests/support/pureftpd";
import { processCpu } from "./cpu";

const ORGS = positiveInteger("ORGS", 1000);
const USERS_PER_ORG = positiveInteger("USERS_PER_ORG", 20);
const WITH_LB = process.argv.includes("--lb");
const SMALL = 10;
/** Population rates are measured over the last WINDOW orgs populated, so both sizes time the same work. */
const WINDOW = 10;
const CONCURRENCY = 8;
const REPEATS = 3;
const TOKEN = "bench-tenants-token-0123456789abcdef";
const WEB_HOST = "127.0.90.1";
const LB_HOST = "127.0.90.3";
const WEB_NODE = "tenants-web";
const HEALTH_LIMIT_MS = 120_000;
const REQUEST_TIMEOUT_MS = 120_000;
const RSS_SETTLE_MS = 1000;

function positiveInteger(name: string, fallback: number): number {
  const raw = process.env[name];
  const value = raw === undefined ? fallback : Number(raw);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${name} must be a positive integer`);
  return value;
}

/** An agent's API with a generous timeout: a write on a big, busy server may take seconds. */
function client(baseUrl: string) {
  const options = { token: TOKEN, keepAlive: true, timeoutMs: REQUEST_TIMEOUT_MS };
  return {
    get: (route: string) => call(baseUrl, "GET", route, options),
    put: (route: string, body: unknown) => call(baseUrl, "PUT", route, { ...options, body }),
  };
}
type AgentClient = ReturnType<typeof client>;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const progress = (line: string) => process.stderr.write(`[bench:tenants ${new Date().toISOString()}] ${line}\n`);
const loadAverage = () =>
  os
    .loadavg()
    .map((n) => n.toFixed(2))
    .join(" ");

const orgName = (i: number) => `t${String(i).padStart(5, "0")}`;
const domainOf = (i: number) => `www.${orgName(i)}.tenants.test`;
const userName = (j: number) => `u${String(j).padStart(3, "0")}`;

/** PUT that must answer 200 or 201; the error names the path and status, never the body sent. */
async function put(api: AgentClient, route: string, body: unknown): Promise<void> {
  const answer = await api.put(route, body);
  if (answer.status !== 200 && answer.status !== 201) {
    throw new Error(`PUT ${route}: HTTP ${answer.status} ${answer.text.slice(0, 500)}`);
  }
}

/** Runs task(0..count-1) with `concurrency` workers; calls `tick` after each task. */
async function pool(count: number, concurrency: number, task: (i: number) => Promise<void>, tick?: () => void) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) {
        await task(next++);
        tick?.();
      }
    }),
  );
}

/** Progress every 5 s while a long phase runs. */
function ticker(label: string, total: number): { tick: () => void; stop: () => void } {
  let done = 0;
  const timer = setInterval(() => progress(`${label}: ${done}/${total}, load ${loadAverage()}`), 5000);
  return { tick: () => done++, stop: () => clearInterval(timer) };
}

interface Throughput {
  perSecond: number;
  /** The agent's CPU per item (its threads and the children it waited for: nginx -t, haproxy -c): what load cannot fool. */
  cpuMsEach: number;
}

/** `count` items per second over `run`'s wall time, and the CPU the agent `pid` spent per item. */
async function throughput(count: number, pid: number, run: () => Promise<void>): Promise<Throughput> {
  const cpuBefore = processCpu(pid);
  const started = performance.now();
  await run();
  const seconds = (performance.now() - started) / 1000;
  return { perSecond: count / seconds, cpuMsEach: (1000 * (processCpu(pid) - cpuBefore)) / count };
}

/** Milliseconds of each of REPEATS sequential calls of `once(k)`. */
async function timed(once: (k: number) => Promise<void>): Promise<number[]> {
  const times: number[] = [];
  for (let k = 0; k < REPEATS; k++) {
    const started = performance.now();
    await once(k);
    times.push(performance.now() - started);
  }
  return times;
}

const minMedian = (times: number[]) => {
  const sorted = [...times].sort((a, b) => a - b);
  return { min: sorted[0], median: sorted[Math.floor(sorted.length / 2)] };
};

/** A field of /proc/<pid>/status in MB (VmRSS now, VmHWM: the peak since the process started). */
function memoryMb(pid: number, field: "VmRSS" | "VmHWM"): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1]);
  return kb / 1024;
}

/** HAProxy reloads so far, from the agent's /metrics (`…_haproxy_changes_total{how="reload"}`). */
async function haproxyReloads(api: AgentClient): Promise<{ count: number; source: string } | undefined> {
  const answer = await api.get("/metrics");
  if (answer.status !== 200) throw new Error(`GET /metrics: HTTP ${answer.status}`);
  const counter = "lbhosting_agent_haproxy_changes_total";
  const lines = answer.text.split("\n");
  if (!lines.some((line) => line.startsWith(`# TYPE ${counter} `))) return undefined;
  const count = lines
    .filter((line) => line.startsWith(`${counter}{`) && line.includes('how="reload"'))
    .reduce((total, line) => total + Number(line.slice(line.lastIndexOf(" ") + 1)), 0);
  return { count, source: `${counter}{how="reload"}` };
}

/**
 * Restarts the node's agent: ms from its spawn until /v1/health answers 200, until its FTP
 * accounts are ready (the start's FTP round, which runs while it answers), and its RSS a moment later.
 */
async function restartUntilHealthy(node: HostingNode): Promise<{ ms: number; ftpMs: number; rssMb: number }> {
  await node.agent.stop();
  const started = performance.now();
  await node.agent.restart("listening");
  const deadline = started + HEALTH_LIMIT_MS;
  for (;;) {
    const answer = await call(node.agent.url, "GET", "/v1/health", { timeoutMs: 5000 }).catch(() => undefined);
    if (answer?.status === 200) break;
    if (performance.now() > deadline) throw new Error(`${node.name}: not healthy within ${HEALTH_LIMIT_MS} ms`);
    await sleep(10);
  }
  const ms = performance.now() - started;
  const ftpMs = await node.agent.ftpReady;
  await sleep(RSS_SETTLE_MS);
  return { ms, ftpMs, rssMb: memoryMb(node.agent.pid, "VmRSS") };
}

interface Sized {
  orgs: number;
  accounts: number;
  userUpsertFtp: number[];
  userUpdateNoFtp: number[];
  websiteAdd: number[];
  routeUpdate?: number[];
  usersPerSecond: number;
  userCpuMs: number;
  routesPerSecond?: number;
  routeCpuMs?: number;
  reloadsDuringRouteUpdates?: number | "n/a";
  /** The metric the reloads were counted from. */
  reloadsSource?: string;
  restartMs: number;
  /** From the spawn until the start's FTP round ends (logins answered by the agent, not the PDB). */
  restartFtpMs: number;
  rssAfterRestartMb: number;
  peakRssMb: number;
  lbRestartMs?: number;
  lbRssAfterRestartMb?: number;
  lbPeakRssMb?: number;
  loadAverage: string;
}

interface Bench {
  web: HostingNode;
  api: AgentClient;
  lb?: { node: HostingNode; api: AgentClient; backend: { name: string; http: string } };
  hash: string;
  /** Domains of the first org's route (toggled by the route updates). */
  routeDomains: string[];
}

/** Orgs from..to-1: org, website and FTP service, then the users, then (with the LB) the routes; the rates. */
async function populate(bench: Bench, from: number, to: number): Promise<{ users: Throughput; routes?: Throughput }> {
  const count = to - from;
  const orgs = ticker(`orgs ${from}..${to - 1} with their website and FTP service`, count);
  await pool(
    count,
    CONCURRENCY,
    async (k) => {
      const org = orgName(from + k);
      await put(bench.api, `/v1/orgs/${org}`, {});
      await put(bench.api, `/v1/orgs/${org}/services/www`, {
        kind: "website",
        domains: [domainOf(from + k)],
        documentRoot: "www",
      });
      await put(bench.api, `/v1/orgs/${org}/services/files`, { kind: "ftp", rootPath: "files" });
    },
    orgs.tick,
  );
  orgs.stop();
  const total = count * USERS_PER_ORG;
  const users = ticker(`users of orgs ${from}..${to - 1}`, total);
  const userRate = await throughput(total, bench.web.agent.pid, () =>
    pool(
      total,
      CONCURRENCY,
      (n) =>
        put(
          bench.api,
          `/v1/orgs/${orgName(from + Math.floor(n / USERS_PER_ORG))}/users/${userName(n % USERS_PER_ORG)}`,
          {
            passwordHash: bench.hash,
            access: ["files"],
          },
        ),
      users.tick,
    ),
  );
  users.stop();
  const lb = bench.lb;
  if (!lb) return { users: userRate };
  const routes = ticker(`routes of orgs ${from}..${to - 1}`, count);
  const routeRate = await throughput(count, lb.node.agent.pid, () =>
    pool(
      count,
      CONCURRENCY,
      (k) =>
        put(lb.api, `/v1/balancer/${orgName(from + k)}`, { domains: [domainOf(from + k)], backends: [lb.backend] }),
      routes.tick,
    ),
  );
  routes.stop();
  return { users: userRate, routes: routeRate };
}

/** Grows the server from `held` orgs to `size` (the last WINDOW timed) and measures it. */
async function measureAt(bench: Bench, held: number, size: number): Promise<Sized> {
  const bulkEnd = Math.max(held, size - WINDOW);
  if (bulkEnd > held) {
    const started = performance.now();
    await populate(bench, held, bulkEnd);
    progress(`populated orgs ${held}..${bulkEnd - 1} in ${((performance.now() - started) / 1000).toFixed(0)} s`);
  }
  const rates = await populate(bench, bulkEnd, size);
  progress(
    `at ${size} orgs: ${rates.users.perSecond.toFixed(0)} users/s over the last ${size - bulkEnd} orgs; measuring`,
  );

  const first = orgName(0);
  const userUpsertFtp = await timed((k) =>
    put(bench.api, `/v1/orgs/${first}/users/probe-${size}-${k}`, { passwordHash: bench.hash, access: ["files"] }),
  );
  const userUpdateNoFtp = await timed((k) =>
    put(bench.api, `/v1/orgs/${first}/users/${userName(0)}`, {
      passwordHash: bench.hash,
      access: ["files"],
      displayName: `Probe ${size} ${k}`,
    }),
  );
  const websiteAdd = await timed((k) =>
    put(bench.api, `/v1/orgs/${first}/services/site-${size}-${k}`, {
      kind: "website",
      domains: [`site-${size}-${k}.${first}.tenants.test`],
      documentRoot: "www",
    }),
  );
  const lb = bench.lb;
  let routeUpdate: number[] | undefined;
  let reloads: number | "n/a" | undefined;
  let reloadsSource: string | undefined;
  if (lb) {
    const before = await haproxyReloads(lb.api);
    routeUpdate = await timed(async () => {
      const alternate = `alt.${first}.tenants.test`;
      bench.routeDomains = bench.routeDomains.includes(alternate) ? [domainOf(0)] : [domainOf(0), alternate];
      await put(lb.api, `/v1/balancer/${first}`, { domains: bench.routeDomains, backends: [lb.backend] });
    });
    const after = await haproxyReloads(lb.api);
    reloads = before === undefined || after === undefined ? "n/a" : after.count - before.count;
    reloadsSource = after?.source;
  }
  const peakRssMb = memoryMb(bench.web.agent.pid, "VmHWM");
  const lbPeakRssMb = lb ? memoryMb(lb.node.agent.pid, "VmHWM") : undefined;
  progress(`at ${size} orgs: restarting the agent${lb ? "s" : ""}`);
  const restart = await restartUntilHealthy(bench.web);
  const lbRestart = lb ? await restartUntilHealthy(lb.node) : undefined;
  return {
    orgs: size,
    accounts: size * USERS_PER_ORG,
    userUpsertFtp,
    userUpdateNoFtp,
    websiteAdd,
    routeUpdate,
    usersPerSecond: rates.users.perSecond,
    userCpuMs: rates.users.cpuMsEach,
    routesPerSecond: rates.routes?.perSecond,
    routeCpuMs: rates.routes?.cpuMsEach,
    reloadsDuringRouteUpdates: reloads,
    reloadsSource,
    restartMs: restart.ms,
    restartFtpMs: restart.ftpMs,
    rssAfterRestartMb: restart.rssMb,
    peakRssMb,
    lbRestartMs: lbRestart?.ms,
    lbRssAfterRestartMb: lbRestart?.rssMb,
    lbPeakRssMb,
    loadAverage: loadAverage(),
  };
}

/** The table: one row per figure, a column per size and the ratio large / small. */
function printTable(small: Sized, large: Sized): void {
  type Row = [label: string, figure: (s: Sized) => number[] | number | string | undefined, unit: string];
  const rows: Row[] = [
    ["user upsert with FTP access (min / median)", (s) => s.userUpsertFtp, "ms"],
    ["user update, no FTP change (min / median)", (s) => s.userUpdateNoFtp, "ms"],
    ["add one website (min / median)", (s) => s.websiteAdd, "ms"],
    ["load-balancer route update (min / median)", (s) => s.routeUpdate, "ms"],
    [`population at concurrency ${CONCURRENCY}`, (s) => s.usersPerSecond, "users/s"],
    ["  agent CPU per user written", (s) => s.userCpuMs, "ms"],
    [`LB population at concurrency ${CONCURRENCY}`, (s) => s.routesPerSecond, "routes/s"],
    ["  LB agent CPU per route written", (s) => s.routeCpuMs, "ms"],
    [`HAProxy reloads during ${REPEATS} route updates`, (s) => s.reloadsDuringRouteUpdates, ""],
    ["agent restart until healthy", (s) => s.restartMs, "ms"],
    ["  until its FTP accounts are ready", (s) => s.restartFtpMs, "ms"],
    ["agent RSS after restart", (s) => s.rssAfterRestartMb, "MB"],
    ["agent peak RSS (bulk writes)", (s) => s.peakRssMb, "MB"],
    ["LB agent restart until healthy", (s) => s.lbRestartMs, "ms"],
    ["LB agent RSS after restart", (s) => s.lbRssAfterRestartMb, "MB"],
    ["LB agent peak RSS (route writes)", (s) => s.lbPeakRssMb, "MB"],
  ];
  const format = (value: number) =>
    value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2);
  const cell = (value: ReturnType<Row[1]>, unit: string): string => {
    if (value === undefined) return "—";
    if (typeof value === "string") return value;
    // A count (no unit) as it is; a measure with the digits it deserves.
    if (typeof value === "number") return unit === "" ? String(value) : `${format(value)} ${unit}`;
    const { min, median } = minMedian(value);
    return `${format(min)} / ${format(median)} ${unit}`;
  };
  /** The ratio of medians (or of the figures); "—" where either is missing. */
  const ratio = (a: ReturnType<Row[1]>, b: ReturnType<Row[1]>): string => {
    const pick = (value: ReturnType<Row[1]>) =>
      typeof value === "number" ? value : Array.isArray(value) ? minMedian(value).median : undefined;
    const [x, y] = [pick(a), pick(b)];
    return x === undefined || y === undefined || x === 0 ? "—" : `×${(y / x).toFixed(2)}`;
  };
  const header = [
    "",
    `${small.orgs} orgs (${small.accounts} accounts)`,
    `${large.orgs} orgs (${large.accounts} accounts)`,
    `ratio ${large.orgs}/${small.orgs}`,
  ];
  console.log(`| ${header.join(" | ")} |`);
  console.log(`|${header.map(() => "---").join("|")}|`);
  for (const [label, figure, unit] of rows) {
    const [a, b] = [figure(small), figure(large)];
    if (a === undefined && b === undefined) continue;
    console.log(`| ${label} | ${cell(a, unit)} | ${cell(b, unit)} | ${ratio(a, b)} |`);
  }
}

async function main(): Promise<void> {
  if (ORGS <= SMALL) throw new Error(`ORGS must be above ${SMALL} (the small size measured first)`);
  const nginxBin = findNginx();
  const ftp = findFtpBinaries();
  const haproxyBin = WITH_LB ? findHaproxy() : undefined;
  if (WITH_LB && !haproxyBin) throw new Error("--lb needs HAProxy (apt-get install -y haproxy, or set HAPROXY_BIN)");
  console.log(
    `bench:tenants: ${ORGS} orgs × ${USERS_PER_ORG} users with FTP access, one website and one FTP service each; ` +
      `${os.availableParallelism()} cores, load ${loadAverage()} at start`,
  );
  console.log(
    `  nginx: ${nginxBin ? `real (${nginxBin})` : "NOT INSTALLED — the agent only writes site files (no check, no reload)"}; ` +
      `pure-ftpd: ${ftp ? `real (${ftp.pureFtpd}, PureDB by the agent)` : "NOT AVAILABLE (needs pure-ftpd, pure-pw, curl and root) — the agent only writes the account files"}; ` +
      `load balancer: ${haproxyBin ? `real HAProxy (${haproxyBin})` : "none (add --lb)"}`,
  );
  const hash = hashPassword("bench-tenants-password"); // once: every user gets the same hash
  const contentRoot = fs.mkdtempSync(path.join(os.tmpdir(), "lbh-tenants-nas-"));
  fs.chmodSync(contentRoot, 0o755);
  const nodes: HostingNode[] = [];
  try {
    progress("starting the hosting node" + (haproxyBin ? " and the load balancer" : ""));
    const web = await startHostingNode({ host: WEB_HOST, name: WEB_NODE, token: TOKEN, contentRoot, nginxBin, ftp });
    nodes.push(web);
    const bench: Bench = {
      web,
      api: client(web.url),
      hash,
      routeDomains: [domainOf(0)],
    };
    if (haproxyBin) {
      const node = await startHostingNode({ host: LB_HOST, name: "tenants-lb", token: TOKEN, contentRoot, haproxyBin });
      nodes.push(node);
      // Without nginx nothing serves the node's sites; HAProxy's checks then fail, the routes still change.
      const backend = { name: WEB_NODE, http: web.nginx?.listen ?? `${WEB_HOST}:${await freePort(WEB_HOST)}` };
      const api = client(node.url);
      await put(api, `/v1/backends/${backend.name}`, { http: backend.http });
      bench.lb = { node, api, backend };
    }
    const started = performance.now();
    const small = await measureAt(bench, 0, SMALL);
    progress(`measured at ${SMALL} orgs`);
    const large = await measureAt(bench, SMALL, ORGS);
    const minutes = (performance.now() - started) / 60_000;
    console.log(`measured in ${minutes.toFixed(1)} min; load ${loadAverage()} at end`);
    printTable(small, large);
    console.log(
      `(min / median of ${REPEATS} sequential requests; population rates over the last ${WINDOW} orgs populated (fewer when ORGS < ${SMALL + WINDOW}); ` +
        `ratios of medians; peak RSS: the agent's VmHWM since its previous start` +
        `${large.reloadsSource ? `; HAProxy reloads: ${large.reloadsSource}` : ""})`,
    );
    console.log(JSON.stringify({ orgs: ORGS, usersPerOrg: USERS_PER_ORG, lb: WITH_LB, small, large }));
  } finally {
    progress("stopping");
    for (const node of nodes.reverse()) await node.stop();
    fs.rmSync(contentRoot, { recursive: true, force: true });
  }
}

// Ctrl-C: exit through process.exit, so the fixtures' exit hook kills what is still running.
process.once("SIGINT", () => process.exit(130));

main().catch((error: Error) => {
  console.error(error.message);
  process.exit(1);
});
