/**
 * The load-balancer role: per org, the nodes serving it behind HAProxy — its website domains
 * (least-busy, health-checked HTTP) and its FTP address (least-busy control connections, passive
 * data connections routed by port to the node that opened them). Routes are node-local (no org
 * copy, no generation, no digest): the provider points them at the nodes that may serve the org.
 *
 * A change is rendered into the agent's one HAProxy file and checked with `haproxy -c` before
 * anything changes; servers leaving are drained (no new connections, the open ones finish) before
 * the reload that removes them; the database commits once HAProxy runs the new file. Changes run
 * one at a time (a promise chain), so file, database and HAProxy never disagree.
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
  renderHaproxy,
  routeConflict,
  serversLeaving,
  webBackendName,
} from "../render/haproxy/config";
import { type HaproxyBinary, HaproxyControl, isHealthy } from "../render/haproxy/control";
import { writeFileAtomic } from "../render/atomic-write";
import { type StepReport, timedStep } from "../render/steps";
import { DRAIN_TIMEOUT_MS } from "../../../wire/timeouts";
import type { Store } from "../store/store";
import { type ApiAddress, checkRegistered, checkRegistrable } from "./registered-backends";

const DRAIN_POLL_MS = 100;

interface BalancerOptions {
  store: Store;
  /** The file the agent owns, loaded by HAProxy after the operator's main configuration. */
  confFile: string;
  /** Without it the file is only written (config-only, like nginx-less sites). */
  haproxy?: HaproxyBinary;
  agentName: string;
  /** Where HAProxy accepts the sites' web traffic ("host:port"); no HTTP frontend without it. */
  httpListen?: string;
  warn: (msg: string, fields: Record<string, unknown>) => void;
  /** Reports HAProxy's validations, reloads and drains (metrics/). */
  report?: StepReport;
}

/** One routed node of one org's backend (web or FTP), as HAProxy's current worker sees it. */
export interface NodeView {
  kind: "web" | "ftp";
  node: string;
  healthy: boolean;
  /** Connections open to it, over every worker (old ones still finishing theirs too). */
  active: number;
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

  constructor(private readonly options: BalancerOptions) {
    this.control = options.haproxy ? new HaproxyControl(options.haproxy, options.report) : undefined;
    fs.mkdirSync(path.dirname(options.confFile), { recursive: true });
  }

  private serial<T>(change: () => Promise<T>): Promise<T> {
    const run = this.queue.then(change, change);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private routes(): OrgRoute[] {
    return this.options.store.listRoutes();
  }

  private render(routes: OrgRoute[]): string {
    return renderHaproxy(this.options.agentName, this.options.httpListen, routes);
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
    return this.serial(async () => {
      checkRegistered(route, (name) => this.options.store.getBackend(name));
      const others = this.routes().filter((other) => other.org !== org);
      const conflict = routeConflict(org, route, others, this.options.httpListen);
      if (conflict) {
        throw new ApiFailure(409, conflict.code, conflict.message, [
          { path: conflict.path, message: conflict.message },
        ]);
      }
      const created = this.options.store.getRoute(org) === undefined;
      await this.apply([...others, { org, route }], () => this.options.store.putRoute(org, route));
      return { record: { org, ...route }, created };
    });
  }

  /** Remove the org's route; answers once its servers are drained and HAProxy runs without it. */
  delete(org: string): Promise<void> {
    return this.serial(async () => {
      if (!this.options.store.getRoute(org)) throw notFound(`the load-balancer route of organization "${org}"`);
      const rest = this.routes().filter((other) => other.org !== org);
      await this.apply(rest, () => this.options.store.deleteRoute(org));
    });
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

  /** Render the stored routes (on start) and reload HAProxy if the file changed; problems are logged. */
  start(): Promise<void> {
    return this.serial(async () => {
      const routes = this.routes();
      if (!this.control && routes.length === 0) return; // not a load balancer: nothing to write
      const text = this.render(routes);
      const current = await fs.promises.readFile(this.options.confFile, "utf8").catch(() => undefined);
      if (current === text) return;
      await writeFileAtomic(this.options.confFile, text, 0o644);
      if (!this.control) return;
      await this.control.reload().catch((error: Error) => {
        this.options.warn("HAProxy not reloaded with the stored routes", { reason: error.message });
      });
    }).catch((error: Error) =>
      this.options.warn("load-balancer configuration not rendered", { reason: error.message }),
    );
  }

  /**
   * Validate `next`, drain the servers it drops, install it, reload, and only then commit the
   * database change. A failed reload puts the previous file back and changes nothing.
   */
  private async apply(next: OrgRoute[], commit: () => void): Promise<void> {
    const previous = this.routes();
    const text = this.render(next);
    const { confFile } = this.options;
    const control = this.control;
    if (!control) {
      await writeFileAtomic(confFile, text, 0o644);
      this.options.store.transaction(commit);
      return;
    }
    await control.processes().catch((error: Error) => {
      throw new ApiFailure(502, "haproxy_unreachable", `HAProxy's master CLI does not answer: ${error.message}`);
    });
    await control.validate(text, confFile);
    const leaving = serversLeaving(previous, next);
    if (leaving.length > 0) {
      await timedStep(
        this.options.report,
        "drain",
        () => this.drain(control, leaving),
        (drained) => drained,
      );
    }
    const before = await fs.promises.readFile(confFile, "utf8").catch(() => "");
    await writeFileAtomic(confFile, text, 0o644);
    try {
      await control.reload();
    } catch (error) {
      await writeFileAtomic(confFile, before, 0o644);
      await control.setState(leaving, "ready").catch(() => undefined);
      throw new ApiFailure(
        422,
        "haproxy_rejected",
        `HAProxy did not take the new configuration: ${(error as Error).message}`,
      );
    }
    this.options.store.transaction(commit);
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
        if (backend.ftp !== undefined && route.ftp) add("ftp", ftpBackendName(org), backend.name);
      }
    }
    return views;
  }
}
