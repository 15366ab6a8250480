/**
 * The agent's Prometheus metrics: one `Registry` per agent (made by the composition root, so
 * several agents in one process keep theirs apart), served at `GET /metrics` behind the API token.
 *
 * Events are counted as they happen (requests, write batches, the servers' steps); what the node
 * holds, the password queue and HAProxy's view of the nodes are read at scrape time. Labels stay
 * few: route patterns, never paths, and no org names (a node holds thousands).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { NodeView } from "../balancer/balancer";
import type { StepReport } from "../render/steps";
import type { Role } from "../store/org-state";
import type { Held } from "../store/store";
import { nodeSeries } from "./haproxy";
import { bodyBytes, outcomeOf, requestMeaning } from "./requests";

const PREFIX = "lbhosting_agent_";
/** A scrape waits no longer for HAProxy's master CLI; Prometheus's own default timeout is 10 s. */
const HAPROXY_SCRAPE_TIMEOUT_MS = 2_000;
/** From a read (milliseconds) to a write that drains a load-balancer server (tens of seconds). */
const SECONDS_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const BATCH_BUCKETS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000];

/** The server a renderer drives. */
type ServerKind = "nginx" | "ftp" | "haproxy";

/** A request as the API answered it: its route pattern, never its path. */
interface FinishedRequest {
  method: string;
  /** The pattern that matched, e.g. "/v1/orgs/:org/users/:username", or "(no route)". */
  route: string;
  status: number;
  seconds: number;
  contentLength: string | undefined;
}

/** What the metrics read at scrape time. */
interface ScrapeSources {
  held(): Record<Role, Held>;
  passwords: { readonly pending: number; readonly done: { hashed: number; verified: number } };
  balancer: { nodeViews(): Promise<NodeView[] | undefined> };
}

/** `promise`, or a rejection once `ms` have passed. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} gave no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export class AgentMetrics {
  private readonly registry = new Registry();
  private readonly requests: Counter<"method" | "route" | "status">;
  private readonly requestSeconds: Histogram<"method" | "route">;
  private readonly writeSeconds: Histogram<"resource" | "outcome">;
  private readonly batchSize: Histogram<"queue">;
  private readonly imports: Counter<"kind" | "outcome">;
  private readonly importBytes: Counter<"kind">;
  private readonly stepSeconds: Histogram<"server" | "step">;
  private readonly stepFailures: Counter<"server" | "step">;
  private readonly haproxyChanges: Counter<"how">;
  /** During a scrape: the reads its collectors share (see `shared`). */
  private scrapeReads: Map<string, unknown> | undefined;

  constructor() {
    const registers = [this.registry];
    // Its few synchronous reads are of /proc/self (kernel memory, no disk): microseconds per scrape.
    collectDefaultMetrics({ register: this.registry });
    this.requests = new Counter({
      name: `${PREFIX}http_requests_total`,
      help: "API requests answered, by method, route pattern and status code.",
      labelNames: ["method", "route", "status"],
      registers,
    });
    this.requestSeconds = new Histogram({
      name: `${PREFIX}http_request_duration_seconds`,
      help: "Time from a request's arrival to its answer, by method and route pattern.",
      labelNames: ["method", "route"],
      buckets: SECONDS_BUCKETS,
      registers,
    });
    this.writeSeconds = new Histogram({
      name: `${PREFIX}write_duration_seconds`,
      help: "Writes of orgs, users, services and load-balancer routes from arrival to answer (durable and live), by outcome.",
      labelNames: ["resource", "outcome"],
      buckets: SECONDS_BUCKETS,
      registers,
    });
    this.batchSize = new Histogram({
      name: `${PREFIX}write_batch_size`,
      help: "Writes per committed transaction: plain writes (group commit) and config writes (validated by nginx).",
      labelNames: ["queue"],
      buckets: BATCH_BUCKETS,
      registers,
    });
    this.imports = new Counter({
      name: `${PREFIX}sync_imports_total`,
      help: "Snapshots and deltas a primary's sync sent to this node, by outcome (ok, rejected: 4xx, failed: 5xx).",
      labelNames: ["kind", "outcome"],
      registers,
    });
    this.importBytes = new Counter({
      name: `${PREFIX}sync_import_received_bytes_total`,
      help: "Bytes of the snapshots and deltas received (their Content-Length).",
      labelNames: ["kind"],
      registers,
    });
    this.stepSeconds = new Histogram({
      name: `${PREFIX}server_step_duration_seconds`,
      help: "Steps run against nginx (validate, reload), pure-ftpd (build: the PureDB) and HAProxy (validate, reload, drain).",
      labelNames: ["server", "step"],
      buckets: SECONDS_BUCKETS,
      registers,
    });
    this.stepFailures = new Counter({
      name: `${PREFIX}server_step_failures_total`,
      help: "Steps against nginx, pure-ftpd and HAProxy that failed (a rejected configuration, a failed reload, a drain cut short).",
      labelNames: ["server", "step"],
      registers,
    });
    this.haproxyChanges = new Counter({
      name: `${PREFIX}haproxy_changes_total`,
      help: "Load-balancer changes HAProxy took: by a reload (how=reload) or through its runtime API, without one (how=runtime).",
      labelNames: ["how"],
      registers,
    });
  }

  /** Count an answered API request (and, by its route, a write or a sync import). */
  request(done: FinishedRequest): void {
    const { method, route, status, seconds } = done;
    this.requests.inc({ method, route, status: String(status) });
    this.requestSeconds.observe({ method, route }, seconds);
    const meaning = requestMeaning(method, route);
    if (meaning.write) this.writeSeconds.observe({ resource: meaning.write, outcome: outcomeOf(status) }, seconds);
    if (meaning.import) {
      this.imports.inc({ kind: meaning.import, outcome: outcomeOf(status) });
      this.importBytes.inc({ kind: meaning.import }, bodyBytes(done.contentLength));
    }
  }

  /** Count a committed transaction of `writes` writes. */
  writeBatch(queue: "plain" | "config", writes: number): void {
    this.batchSize.observe({ queue }, writes);
  }

  /** What a renderer reports its steps to. */
  serverSteps(server: ServerKind): StepReport {
    return (step, seconds, ok) => {
      this.stepSeconds.observe({ server, step }, seconds);
      if (!ok) this.stepFailures.inc({ server, step });
      else if (server === "haproxy" && (step === "reload" || step === "runtime"))
        this.haproxyChanges.inc({ how: step });
    };
  }

  /** Register the series read at scrape time, from the parts the agent is made of. */
  watch(sources: ScrapeSources): void {
    const registers = [this.registry];
    const held = () => this.shared("held", () => sources.held());
    const heldGauge = (what: keyof Held, help: string) =>
      new Gauge({
        name: `${PREFIX}${what}`,
        help,
        labelNames: ["role"],
        registers,
        collect() {
          const now = held();
          for (const role of ["primary", "secondary"] as const) this.set({ role }, now[role][what]);
        },
      });
    heldGauge("orgs", "Organizations this node holds, as primary or as secondary copy.");
    heldGauge("users", "Users of the organizations this node holds, by the organization's role.");
    heldGauge(
      "services",
      "Web sites and FTP services of the organizations this node holds, by the organization's role.",
    );

    const { passwords } = sources;
    new Gauge({
      name: `${PREFIX}password_queue_depth`,
      help: "Password hashes and checks queued or running in the worker threads.",
      registers,
      collect() {
        this.set(passwords.pending);
      },
    });
    new Counter({
      name: `${PREFIX}password_hashes_total`,
      help: "Password hashes made (operation=hash) and checked (operation=verify) since the agent started.",
      labelNames: ["operation"],
      registers,
      collect() {
        const { hashed, verified } = passwords.done;
        this.reset();
        this.inc({ operation: "hash" }, hashed);
        this.inc({ operation: "verify" }, verified);
      },
    });
    this.watchHaproxy(sources.balancer);
  }

  /** On a load balancer: each routed node's state and connections, as HAProxy sees them at scrape time. */
  private watchHaproxy(balancer: ScrapeSources["balancer"]): void {
    const registers = [this.registry];
    // A scrape never fails because of HAProxy: without an answer its series are left out and counted.
    const series = () =>
      this.shared("haproxy", () =>
        within(balancer.nodeViews(), HAPROXY_SCRAPE_TIMEOUT_MS, "HAProxy's master CLI").then(
          (views) => nodeSeries(views ?? []),
          () => {
            failures.inc();
            return [];
          },
        ),
      );
    const failures = new Counter({
      name: `${PREFIX}haproxy_scrape_failures_total`,
      help: "Scrapes that got no answer from HAProxy's master CLI; its node series are left out of those scrapes.",
      registers,
      // This scrape's failure counts in this scrape.
      async collect() {
        await series();
      },
    });
    new Gauge({
      name: `${PREFIX}haproxy_node_up`,
      help: "1 when HAProxy sends the node new connections in every organization's backend routed to it, else 0; by kind (web, ftp).",
      labelNames: ["kind", "node"],
      registers,
      async collect() {
        const now = await series();
        this.reset();
        for (const { kind, node, up } of now) this.set({ kind, node }, up);
      },
    });
    new Gauge({
      name: `${PREFIX}haproxy_node_connections`,
      help: "Connections HAProxy has open to the node, over every organization's backend; by kind (web, ftp).",
      labelNames: ["kind", "node"],
      registers,
      async collect() {
        const now = await series();
        this.reset();
        for (const { kind, node, connections } of now) this.set({ kind, node }, connections);
      },
    });
  }

  /**
   * `read()` once per scrape, however many collectors ask (the three held-gauges share one query,
   * the two HAProxy gauges one master CLI exchange); outside a scrape, read each time.
   */
  private shared<T>(key: string, read: () => T): T {
    const reads = this.scrapeReads;
    if (!reads) return read();
    if (!reads.has(key)) reads.set(key, read());
    return reads.get(key) as T;
  }

  /** The text exposition of every metric, read now. */
  async exposition(): Promise<{ contentType: string; text: string }> {
    // prom-client calls every collector before `metrics()` first awaits: they share this scrape's reads.
    this.scrapeReads = new Map();
    let text: Promise<string>;
    try {
      text = this.registry.metrics();
    } finally {
      this.scrapeReads = undefined;
    }
    return { contentType: this.registry.contentType, text: await text };
  }
}
