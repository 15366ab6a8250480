/**
 * How writes commit (the domain's WriteQueue). Every mutation runs in one SQLite transaction, in
 * which the records change and the org's digest is recomputed; transactions are synchronous, which
 * serialises mutations: generations are consecutive by construction. Nothing slow runs on the
 * event loop:
 * - writes that change nginx configuration go through config-commits.ts (validated group commit:
 *   `nginx -t` as a child process before the commit, one reload per batch);
 * - plain writes arriving together commit in one transaction, with one digest computation per org;
 * - after a commit, a write waits for the next fdatasync of the WAL and, when it changed FTP
 *   accounts, the next FTP round: each serves every write committed before it began (Coalescer),
 *   so a burst costs a few rounds, not one per write.
 * A write answers only once it is durable and the configuration that includes it is live.
 */
import type { HostingStore, Mutation, Touched, WriteQueue } from "../domain/ports";
import type { OrgState } from "../store/org-state";
import { Coalescer } from "./coalesce";
import { ConfigCommits, type ConfigCommitOptions } from "./config-commits";
import { EVERY_ORG, type Rendering } from "./render";

interface WritePipelineOptions {
  store: HostingStore & ConfigCommitOptions["store"] & { refreshDigest(org: string): void; flush(): Promise<void> };
  sites: ConfigCommitOptions["sites"];
  reloads: ConfigCommitOptions["reloads"];
  rendering: Pick<Rendering, "sitesOf" | "ftpRound">;
  /** Told of each committed transaction and how many writes it holds (metrics/). */
  onCommit?: (queue: "plain" | "config", writes: number) => void;
}

/** The keys of an FTP round (see `Rendering.ftpRound`): an org's name renders it whole, "org/username" one user. */
const ftpKeys = (org: string, ftp: Touched["ftp"]): string[] =>
  ftp === true ? [org] : ftp === false ? [] : ftp.map((username) => `${org}/${username}`);

interface PendingWrite {
  org: string;
  fn: () => Mutation<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

export class WritePipeline implements WriteQueue {
  private readonly store: WritePipelineOptions["store"];
  /** Makes commits durable: one fdatasync of the WAL serves every write committed before it began. */
  private readonly durable: Coalescer<never>;
  /** Renders the FTP accounts of these orgs (or users) and publishes them, one round at a time. */
  private readonly ftpRounds: Coalescer<string>;
  /** Plain writes waiting for the next batch transaction (see `plain`). */
  private pendingWrites: PendingWrite[] = [];
  /** Orgs whose content changed in the current transaction: their digest is computed at its end. */
  private readonly staleDigests = new Set<string>();
  /** Writes that change nginx configuration: validated, then committed, a batch at a time. */
  private readonly configCommits: ConfigCommits;

  constructor(private readonly options: WritePipelineOptions) {
    this.store = options.store;
    this.durable = new Coalescer(() => this.store.flush(), { overlap: true });
    this.ftpRounds = new Coalescer((keys) => options.rendering.ftpRound(keys));
    this.configCommits = new ConfigCommits({
      store: options.store,
      sites: options.sites,
      reloads: options.reloads,
      afterApply: () => this.finalizeDigests(),
      afterCommit: (ftpOrgs) => this.settle(ftpOrgs),
      onCommit: (writes) => options.onCommit?.("config", writes),
    });
  }

  /**
   * The start's FTP round (`Rendering.ftpRound` with EVERY_ORG), the first: the agent answers
   * requests meanwhile, and a write's FTP round runs after it, so it never renders from older records.
   */
  startFtp(): Promise<void> {
    return this.ftpRounds.request([EVERY_ORG]);
  }

  contentChanged(org: string): void {
    this.staleDigests.add(org);
  }

  /**
   * A write that touches no nginx configuration. Writes arriving in the same event-loop turn commit
   * together: one transaction, each write in its own savepoint (a failing write rolls back alone),
   * one digest computation per org for the whole batch (the digest hashes every row hash of the
   * org, O(users), so this is what keeps a burst of user writes fast). Each write then answers
   * with the org's state after the batch, once the batch is settled (durable, FTP rebuilt).
   */
  plain<T>(org: string, fn: () => Mutation<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pendingWrites.push({ org, fn, resolve: resolve as (value: unknown) => void, reject });
      if (this.pendingWrites.length === 1) setImmediate(() => void this.commitPending());
    });
  }

  /** A write that may change nginx configuration: validated group commit (config-commits.ts). */
  config<T>(org: string, fn: () => Mutation<T>): Promise<T> {
    return this.configCommits.submit({
      apply: () => {
        const { finish, touched } = fn();
        return {
          finish: () => finish(this.store.getOrg(org)),
          nginx: touched.sites ? [this.options.rendering.sitesOf(org)] : [],
          ftp: ftpKeys(org, touched.ftp),
        };
      },
    });
  }

  private async commitPending(): Promise<void> {
    const jobs = this.pendingWrites.splice(0);
    type Outcome = { ok: true; result: unknown; ftp: string[] } | { ok: false; error: unknown };
    let outcomes: Outcome[];
    try {
      outcomes = this.store.transaction(() => {
        const applied = jobs.map((job) => {
          try {
            return { ok: true as const, mutation: this.store.savepoint(job.fn) };
          } catch (error) {
            return { ok: false as const, error };
          }
        });
        this.finalizeDigests();
        const orgsAfter = new Map<string, OrgState | undefined>();
        return applied.map((item, i): Outcome => {
          if (!item.ok) return item;
          const org = jobs[i].org;
          if (!orgsAfter.has(org)) orgsAfter.set(org, this.store.getOrg(org));
          return {
            ok: true,
            result: item.mutation.finish(orgsAfter.get(org)),
            ftp: ftpKeys(org, item.mutation.touched.ftp),
          };
        });
      });
    } catch (error) {
      this.staleDigests.clear();
      for (const job of jobs) job.reject(error);
      return;
    }
    const committed = outcomes.filter((outcome) => outcome.ok).length;
    if (committed > 0) this.options.onCommit?.("plain", committed);
    const ftp = outcomes.flatMap((outcome) => (outcome.ok ? outcome.ftp : []));
    try {
      await this.settle(ftp);
    } catch (error) {
      for (const job of jobs) job.reject(error);
      return;
    }
    outcomes.forEach((outcome, i) => (outcome.ok ? jobs[i].resolve(outcome.result) : jobs[i].reject(outcome.error)));
  }

  /** After a commit: resolves once it is durable and the FTP accounts of `ftpKeys` are live. */
  private async settle(keys: string[]): Promise<void> {
    await Promise.all([this.durable.request(), keys.length > 0 ? this.ftpRounds.request(keys) : undefined]);
  }

  /** Inside the transaction: compute and store the digest of every org changed in it. */
  private finalizeDigests(): void {
    for (const org of this.staleDigests) this.store.refreshDigest(org);
    this.staleDigests.clear();
  }
}
