/**
 * The load-balancer role: per org, the nodes serving it behind HAProxy — its website domains
 * (least-busy, health-checked HTTP) and its FTP address (least-busy control connections, passive
 * data connections routed by port to the node that opened them). Routes are node-local (no org
 * copy, no generation, no digest): the provider points them at the nodes that may serve the org.
 *
 * Route writes arriving together form one batch: each is checked against the routes as the
 * writes before it in the batch leave them (a refused one fails alone), and the batch is one
 * change. A change whose structure (backends, servers, addresses, listeners) stays the same — only
 * domains or weights differ, or a node joins a web backend — goes to the running HAProxy through
 * its runtime API (host map entries, server weights, `add server`,
 * render/haproxy/runtime-changes.ts), no reload. Any other change is
 * rendered, checked with `haproxy -c`, its leaving servers drained (no new connections, the open
 * ones finish), and HAProxy reloads. Either way the agent's HAProxy file and host map are written
 * as a fresh render makes them, so a restart or a reload finds the same state, and the database
 * commits once HAProxy runs the change. Batches and the other changes run one at a time (a promise
 * chain), so files, database and HAProxy never disagree.
 */
import fs from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type {
  BalancerRoute,
  BalancerRecord,
  BalancerStatus,
  RegisteredBackend,
  RegisteredBackendRecord,
  ServerView,
} from "../../../wire";
import { ApiFailure, notFound } from "../errors";
import {
  type OrgRoute,
  ftpBackendName,
  passesTls,
  hostMapFile,
  renderHaproxy,
  renderHostMap,
  routeConflict,
  serversLeaving,
  tlsBackendName,
  webBackendName,
} from "../render/haproxy/config";
import { haproxyChange } from "../render/haproxy/runtime-changes";
import { type HaproxyBinary, HaproxyControl, isHealthy } from "../render/haproxy/control";
import { writeFileAtomic } from "../render/atomic-write";
import { type StepReport, timedStep } from "../render/steps";
import { DRAIN_TIMEOUT_MS } from "../../../wire/timeouts";
import type { Store } from "../store/store";
import { type ApiAddress, checkRegistered, checkRegistrable } from "./registered-backends";

const DRAIN_POLL_MS = 100;

interface BalancerOptions {
  store: Store;
  /** The file the agent owns, loaded by HAProxy after the operator's main configuration; the host map is next to it. */
  confFile: string;
  /** Without it the file is only written (config-only, like nginx-less sites). */
  haproxy?: HaproxyBinary;
  agentName: string;
  /** Where HAProxy accepts the sites' web traffic ("host:port"); no HTTP frontend without it. */
  httpListen?: string;
  /** Where HAProxy accepts HTTPS, passed through to the nodes ("host:port"); no HTTPS frontend without it. */
  httpsListen?: string;
  warn: (msg: string, fields: Record<string, unknown>) => void;
  /** Reports HAProxy's validations, reloads and drains (metrics/). */
  report?: StepReport;
}

/** One routed node of one org's backend (web or FTP), as HAProxy's current worker sees it. */
export interface NodeView {
  kind: "web" | "https" | "ftp";
  node: string;
  healthy: boolean;
  /** Connections open to it, over every worker (old ones still finishing theirs too). */
  active: number;
}

/** A route write waiting for its batch. */
type RouteWrite = { kind: "put"; org: string; route: BalancerRoute } | { kind: "delete"; org: string };

interface PendingWrite {
  write: RouteWrite;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/** A write of a batch that passed its checks: its answer, and its database change. */
interface StagedWrite {
  pending: PendingWrite;
  answer: unknown;
  commit: () => void;
}

type StatRows = Awaited<ReturnType<HaproxyControl["stats"]>>;

/** A server as HAProxy's workers see it, or undefined when the current worker does not have it. */
function serverView(rows: StatRows, backend: string, server: string): ServerView | undefined {
  const mine = rows.filter((row) => row.backend === backend && row.server === server);
  const current = mine.find((row) => row.current);
  if (!current) return undefined;
  const active = mine.reduce((sum, row) => sum + row.active, 0);
  return { status: current.status, healthy: isHealthy(current.status), active };
}

export class Balancer {
  private readonly control: HaproxyControl | undefined;
  /** The tail of the chain every change (and the start) runs on. */
  private queue: Promise<unknown> = Promise.resolve();
  /** Route writes for the next batch; `batchQueued` once that batch is on the chain. */
  private waiting: PendingWrite[] = [];
  private batchQueued = false;
  private readonly hostMap: string;
  private committed: OrgRoute[] | undefined;

  constructor(private readonly options: BalancerOptions) {
    this.control = options.haproxy ? new HaproxyControl(options.haproxy, options.report) : undefined;
    this.hostMap = hostMapFile(options.confFile);
    // The configuration names the host map unquoted, as an argument of map().
    if (!/^[\w./-]+$/.test(this.hostMap)) {
      throw new Error(
        `the HAProxy file's path (${options.confFile}) may hold only letters, digits, '.', '_', '-' and '/': ` +
          "HAProxy's configuration names the host map next to it",
      );
    }
    fs.mkdirSync(path.dirname(options.confFile), { recursive: true });
  }

  private serial<T>(change: () => Promise<T>): Promise<T> {
    const run = this.queue.then(change, change);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * The committed routes, by org. Kept in memory once read: only this class writes them, and a
   * batch would otherwise read and parse every org's route from SQLite.
   */
  private routes(): OrgRoute[] {
    this.committed ??= this.options.store.listRoutes();
    return this.committed;
  }

  private readonly render = (routes: OrgRoute[]): string =>
    renderHaproxy(this.options.agentName, this.webListen, routes, this.hostMap);

  private get webListen(): { http?: string; https?: string } {
    return { http: this.options.httpListen, https: this.options.httpsListen };
  }

  list(): BalancerRecord[] {
    return this.routes().map(({ org, route }) => ({ org, ...route }));
  }

  get(org: string): BalancerRecord {
    const route = this.options.store.getRoute(org);
    if (!route) throw notFound(`the load-balancer route of organization "${org}"`);
    return { org, ...route };
  }

  /**
   * Create or replace the org's route; answers once HAProxy runs it (servers leaving drained
   * first). Every backend must be a registered node, at its registered addresses.
   */
  put(org: string, route: BalancerRoute): Promise<{ record: BalancerRecord; created: boolean }> {
    return this.submit({ kind: "put", org, route }) as Promise<{ record: BalancerRecord; created: boolean }>;
  }

  /** Remove the org's route; answers once its servers are drained and HAProxy runs without it. */
  delete(org: string): Promise<void> {
    return this.submit({ kind: "delete", org }) as Promise<void>;
  }

  /** Queue a route write for the next batch (one batch on the chain at a time waits for writes). */
  private submit(write: RouteWrite): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ write, resolve, reject });
      if (this.batchQueued) return;
      this.batchQueued = true;
      void this.serial(async () => {
        // Writes of the same event-loop turn join this batch before it starts.
        await new Promise<void>((next) => setImmediate(next));
        this.batchQueued = false;
        await this.runBatch(this.waiting.splice(0));
      });
    });
  }

  /**
   * Check each write against the routes the writes before it leave, apply the batch as one
   * change, then answer each write. When HAProxy refuses a batch of several, each write is retried
   * alone, so only the one it refuses fails.
   */
  private async runBatch(batch: PendingWrite[]): Promise<void> {
    const previous = this.routes();
    const state = new Map(previous.map(({ org, route }) => [org, route]));
    const staged: StagedWrite[] = [];
    for (const pending of batch) {
      try {
        staged.push({ pending, ...this.stage(state, pending.write) });
      } catch (error) {
        pending.reject(error);
      }
    }
    if (staged.length === 0) return;
    const next = [...state].map(([org, route]) => ({ org, route })).sort((a, b) => (a.org < b.org ? -1 : 1));
    try {
      await this.apply(previous, next, () => staged.forEach((write) => write.commit()));
    } catch (error) {
      if (staged.length === 1) return staged[0].pending.reject(error);
      for (const { pending } of staged) await this.runBatch([pending]);
      return;
    }
    for (const { pending, answer } of staged) pending.resolve(answer);
  }

  /** One write's checks against `state` (the routes so far in its batch), which it then changes. */
  private stage(state: Map<string, BalancerRoute>, write: RouteWrite): Omit<StagedWrite, "pending"> {
    const { store } = this.options;
    const { org } = write;
    if (write.kind === "delete") {
      if (!state.has(org)) throw notFound(`the load-balancer route of organization "${org}"`);
      state.delete(org);
      return { answer: undefined, commit: () => store.deleteRoute(org) };
    }
    const { route } = write;
    // On the chain, like registrations: the backends are registered when the batch commits.
    checkRegistered(route, (name) => store.getBackend(name));
    const others = [...state].filter(([other]) => other !== org).map(([other, r]) => ({ org: other, route: r }));
    const conflict = routeConflict(org, route, others, this.webListen);
    if (conflict) {
      throw new ApiFailure(409, conflict.code, conflict.message, [{ path: conflict.path, message: conflict.message }]);
    }
    const created = !state.has(org);
    state.set(org, route);
    return { answer: { record: { org, ...route }, created }, commit: () => store.putRoute(org, route) };
  }

  listBackends(): RegisteredBackendRecord[] {
    return this.options.store.listBackends().map(({ name, addresses }) => ({ name, ...addresses }));
  }

  /**
   * Register (or re-register) a node routes may name. Its new addresses hold for the routes put
   * from now on; a route already running keeps the addresses it was put with until its next put.
   */
  registerBackend(
    name: string,
    addresses: RegisteredBackend,
    api: ApiAddress | undefined,
  ): Promise<{ record: RegisteredBackendRecord; created: boolean }> {
    checkRegistrable(addresses, api);
    // On the chain: a route being put checks the registrations its commit relies on.
    return this.serial(async () => {
      const created = this.options.store.getBackend(name) === undefined;
      this.options.store.transaction(() => this.options.store.putBackend(name, addresses));
      return { record: { name, ...addresses }, created };
    });
  }

  /** Forget a registered node; refused (409) while a route still sends traffic to it. */
  unregisterBackend(name: string): Promise<void> {
    return this.serial(async () => {
      if (!this.options.store.getBackend(name)) throw notFound(`registered backend "${name}"`);
      const users = this.routes().filter(({ route }) => route.backends.some((backend) => backend.name === name));
      if (users.length > 0) {
        const orgs = users.map(({ org }) => `"${org}"`).join(", ");
        throw new ApiFailure(
          409,
          "backend_in_use",
          `backend "${name}" is still in the load-balancer route of organization ${orgs}: remove it from the route first`,
        );
      }
      this.options.store.transaction(() => this.options.store.deleteBackend(name));
    });
  }

  /** Render the stored routes (on start) and reload HAProxy if the files changed; problems are logged. */
  start(): Promise<void> {
    return this.serial(async () => {
      const routes = this.routes();
      if (!this.control && routes.length === 0) return; // not a load balancer: nothing to write
      const files = this.files(routes);
      const current = await this.readFiles();
      if (current.text === files.text && current.map === files.map) return;
      await this.writeFiles(files);
      if (!this.control) return;
      await this.control.reload().catch((error: Error) => {
        this.options.warn("HAProxy not reloaded with the stored routes", { reason: error.message });
      });
    }).catch((error: Error) =>
      this.options.warn("load-balancer configuration not rendered", { reason: error.message }),
    );
  }

  private async readFiles(): Promise<{ text: string; map: string }> {
    const read = (file: string) => fs.promises.readFile(file, "utf8").catch(() => "");
    const [text, map] = await Promise.all([read(this.options.confFile), read(this.hostMap)]);
    return { text, map };
  }

  /** The host map first: the configuration that HAProxy may load next names it. */
  private async writeFiles(files: { text: string; map: string }): Promise<void> {
    await writeFileAtomic(this.hostMap, files.map, 0o644);
    await writeFileAtomic(this.options.confFile, files.text, 0o644);
  }

  /** The agent's two files as a fresh render of `routes` makes them. */
  private files(routes: OrgRoute[]): { text: string; map: string } {
    return { text: this.render(routes), map: renderHostMap(routes) };
  }

  /**
   * Take HAProxy from `previous` to `next` — through the runtime API when the structure stays,
   * else by a reload — leave the files as a fresh render of `next`, and only then commit the
   * database change. A failed change puts HAProxy and the files back and changes nothing.
   */
  private async apply(previous: OrgRoute[], next: OrgRoute[], commit: () => void): Promise<void> {
    const control = this.control;
    if (!control) {
      await this.writeFiles(this.files(next));
      this.commitRoutes(next, commit);
      return;
    }
    await control.processes().catch((error: Error) => {
      throw new ApiFailure(502, "haproxy_unreachable", `HAProxy's master CLI does not answer: ${error.message}`);
    });
    const change = haproxyChange(previous, next, this.hostMap);
    if (change.kind !== "reload") {
      try {
        if (change.kind === "runtime") {
          await control.runtime(change.commands);
          // The configuration shows weights and servers, not domains: for domains only, it stays as it is.
          if (change.config) await this.writeFiles(this.files(next));
          else await writeFileAtomic(this.hostMap, renderHostMap(next), 0o644);
        }
        this.commitRoutes(next, commit);
        return;
      } catch (error) {
        // The reload below installs the files whatever the runtime changes left behind.
        this.options.warn("HAProxy runtime change failed; reloading instead", { reason: (error as Error).message });
      }
    }
    try {
      await this.reloadWith(previous, next, this.files(next), control);
    } catch (error) {
      // Best effort: the worker keeps running `previous`, so take back what the runtime API changed.
      const undo = haproxyChange(next, previous, this.hostMap);
      if (change.kind === "runtime" && undo.kind === "runtime") {
        await control.runtime(undo.commands).catch(() => undefined);
      }
      throw error;
    }
    this.commitRoutes(next, commit);
  }

  private commitRoutes(next: OrgRoute[], commit: () => void): void {
    this.options.store.transaction(commit);
    this.committed = next;
  }

  /**
   * Validate the files (the host map is written first: HAProxy reads it only on a reload), drain
   * the servers `next` drops, install the configuration and reload; a failure puts the files back.
   */
  private async reloadWith(
    previous: OrgRoute[],
    next: OrgRoute[],
    files: { text: string; map: string },
    control: HaproxyControl,
  ): Promise<void> {
    const before = await this.readFiles();
    const leaving = serversLeaving(previous, next);
    try {
      await writeFileAtomic(this.hostMap, files.map, 0o644);
      await control.validate(files.text, this.options.confFile);
      if (leaving.length > 0) {
        await timedStep(
          this.options.report,
          "drain",
          () => this.drain(control, leaving),
          (drained) => drained,
        );
      }
      await writeFileAtomic(this.options.confFile, files.text, 0o644);
      await control.reload().catch((error: Error) => {
        throw new ApiFailure(422, "haproxy_rejected", `HAProxy did not take the new configuration: ${error.message}`);
      });
    } catch (error) {
      await this.writeFiles(before);
      if (leaving.length > 0) await control.setState(leaving, "ready").catch(() => undefined);
      throw error;
    }
  }

  /**
   * No new connections to `servers`; wait (bounded) until their open ones have finished on every
   * worker. False when they could not be drained or still had connections at the deadline.
   */
  private async drain(control: HaproxyControl, servers: string[]): Promise<boolean> {
    try {
      await control.setState(servers, "drain");
    } catch (error) {
      this.options.warn("HAProxy servers not drained before their removal", {
        servers,
        reason: (error as Error).message,
      });
      return false;
    }
    const deadline = Date.now() + DRAIN_TIMEOUT_MS;
    while (!(await control.idle(servers).catch(() => true))) {
      if (Date.now() >= deadline) {
        this.options.warn("connections still open to servers leaving the load balancer; removing them anyway", {
          servers,
          waitedMs: DRAIN_TIMEOUT_MS,
        });
        return false;
      }
      await sleep(DRAIN_POLL_MS);
    }
    return true;
  }

  /** How HAProxy sees each node of the org's route now: health and open connections, web and FTP. */
  async status(org: string): Promise<BalancerStatus> {
    const route = this.get(org);
    if (!this.control) {
      throw new ApiFailure(
        409,
        "no_haproxy",
        "this agent renders the load balancer's configuration only (no --haproxy-bin)",
      );
    }
    let rows: StatRows;
    try {
      rows = await this.control.stats();
    } catch (error) {
      throw new ApiFailure(
        502,
        "haproxy_unreachable",
        `HAProxy's master CLI did not answer: ${(error as Error).message}`,
      );
    }
    const view = (backend: string, server: string) => serverView(rows, backend, server);
    return {
      org,
      nodes: route.backends.map((backend) => ({
        name: backend.name,
        ...(backend.http !== undefined && route.domains.length > 0
          ? { web: view(webBackendName(org), backend.name) }
          : {}),
        ...(backend.https !== undefined && passesTls(route) ? { https: view(tlsBackendName(org), backend.name) } : {}),
        ...(backend.ftp !== undefined && route.ftp ? { ftp: view(ftpBackendName(org), backend.name) } : {}),
      })),
    };
  }

  /**
   * Every node of every route as HAProxy sees it now (metrics/ reads it at scrape time); undefined
   * on an agent without HAProxy. Rejects when HAProxy's master CLI does not answer.
   */
  async nodeViews(): Promise<NodeView[] | undefined> {
    if (!this.control) return undefined;
    const rows = await this.control.stats();
    const views: NodeView[] = [];
    const add = (kind: NodeView["kind"], backend: string, node: string) => {
      const view = serverView(rows, backend, node);
      if (view) views.push({ kind, node, healthy: view.healthy, active: view.active });
    };
    for (const { org, route } of this.routes()) {
      for (const backend of route.backends) {
        if (backend.http !== undefined && route.domains.length > 0) add("web", webBackendName(org), backend.name);
        if (backend.https !== undefined && passesTls(route)) add("https", tlsBackendName(org), backend.name);
        if (backend.ftp !== undefined && route.ftp) add("ftp", ftpBackendName(org), backend.name);
      }
    }
    return views;
  }
}
