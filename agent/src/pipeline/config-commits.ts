/**
 * Validated group commit of writes that change nginx configuration (websites, load-balancer routes).
 *
 * nginx must never run a configuration it would reject, and a rejected write must change nothing.
 * The agent no longer runs `nginx -t` inside the SQLite transaction (that blocked the event loop
 * for the whole validation); instead writes queue here and are handled a batch at a time:
 *
 *   1. dry run: every write of the batch is applied in one transaction that is rolled back, which
 *      gives each write's own errors (404, 409, ...) and the records the batch's files are made of;
 *      the files are rendered from those after the rollback (rendering asks the file system, which
 *      must not happen while the database is locked);
 *   2. those files are written and `nginx -t` checks them, asynchronously (other requests run);
 *      a rejection restores the files, and a batch of several writes is retried one write at a
 *      time, so only the write nginx refuses fails (HTTP 422);
 *   3. the batch commits in one transaction; the records it renders from must equal the dry run's;
 *   4. nginx reloads once for the batch, and every write answers once the reload is live (every
 *      new connection gets the new configuration; reload-live.ts) and its after-commit work (WAL
 *      durable, FTP accounts) is done.
 *
 * Writes arriving while a batch runs form the next batch. Only these writes touch nginx files and
 * they run one batch at a time, so nothing else can change those files between steps 2 and 4.
 */
import type { NginxSites, SiteChange, SiteSpec, StagedSites } from "../render/nginx/sites";
import type { ReloadLive } from "../render/nginx/reload-live";
import type { HostingStore } from "../domain/ports";

/** What the sites under one scope are made of, read from the database inside the transaction. */
interface SitesSource {
  /** Equal bases render equal sites: the commit's must be the dry run's. */
  basis: string;
  /** The sites, resolved outside the transaction (it may ask the file system). */
  render: () => Promise<Map<string, SiteSpec>>;
}

/** The sites under one scope, rendered from the database as it stands inside the transaction. */
export interface NginxScope {
  /** One render per key and batch (e.g. "sites:acme"). */
  key: string;
  scope: (key: string) => boolean;
  read: () => SitesSource;
}

interface ConfigWrite<T> {
  /**
   * Changes the database (inside a transaction; may run twice: dry run, then commit). `finish`
   * gives the result once every write of the batch is applied.
   */
  apply(): { finish: () => T; nginx: NginxScope[]; ftp: string[] };
}

interface Pending {
  write: ConfigWrite<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

export interface ConfigCommitOptions {
  store: Pick<HostingStore, "transaction"> & { savepoint<T>(fn: () => T): T };
  sites: Pick<NginxSites, "stage">;
  reloads: Pick<ReloadLive, "activate">;
  /** Runs inside the transaction once every write of a batch is applied (e.g. to compute digests). */
  afterApply: () => void;
  /** After-commit work for the orgs whose FTP accounts changed; resolves once done. */
  afterCommit: (ftpOrgs: string[]) => Promise<void>;
  /** Told of each committed batch and how many writes it holds. */
  onCommit?: (writes: number) => void;
}

class Rollback extends Error {}

export class ConfigCommits {
  private queue: Pending[] = [];
  private running = false;

  constructor(private readonly options: ConfigCommitOptions) {}

  /** Resolves with the write's result once its configuration is live; rejects when it changed nothing. */
  submit<T>(write: ConfigWrite<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ write, resolve: resolve as (value: unknown) => void, reject });
      void this.pump();
    });
  }

  private async pump(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0);
        try {
          await this.runBatch(batch);
        } catch (error) {
          // Unexpected (a file that cannot be restored, ...): no write may wait forever.
          for (const pending of batch) pending.reject(error);
        }
      }
    } finally {
      this.running = false;
    }
  }

  /** Apply `batch` inside the current transaction; per write its result or error, and what the files are made of. */
  private applyAll(batch: Pending[]) {
    const outcomes = batch.map((pending) => {
      try {
        return { pending, ok: true as const, ...this.options.store.savepoint(() => pending.write.apply()) };
      } catch (error) {
        return { pending, ok: false as const, error };
      }
    });
    const scopes = new Map<string, NginxScope>();
    const ftp = new Set<string>();
    for (const outcome of outcomes) {
      if (!outcome.ok) continue;
      for (const scope of outcome.nginx) scopes.set(scope.key, scope);
      for (const org of outcome.ftp) ftp.add(org);
    }
    this.options.afterApply();
    const results = outcomes.map((outcome) => (outcome.ok ? outcome.finish() : undefined));
    const sources = [...scopes.values()].map(({ scope, read }) => ({ scope, ...read() }));
    return { outcomes, results, sources, ftp: [...ftp] };
  }

  private async runBatch(batch: Pending[]): Promise<void> {
    // 1. Dry run.
    let planned: ReturnType<ConfigCommits["applyAll"]> | undefined;
    try {
      this.options.store.transaction(() => {
        planned = this.applyAll(batch);
        throw new Rollback();
      });
    } catch (error) {
      if (!(error instanceof Rollback)) throw error;
    }
    const dry = planned as ReturnType<ConfigCommits["applyAll"]>;
    for (const outcome of dry.outcomes) if (!outcome.ok) outcome.pending.reject(outcome.error);
    const accepted = dry.outcomes.filter((outcome) => outcome.ok).map((outcome) => outcome.pending);
    if (accepted.length === 0) return;
    let changes: SiteChange[];
    try {
      changes = await Promise.all(dry.sources.map(async ({ scope, render }) => ({ scope, desired: await render() })));
    } catch (error) {
      // Rendering failed (an unsafe content folder): find whose write it was.
      if (accepted.length === 1) accepted[0].reject(error);
      else for (const pending of accepted) await this.runBatch([pending]);
      return;
    }

    // 2. Write and validate the files.
    let staged: StagedSites;
    try {
      staged = await this.options.sites.stage(changes);
    } catch (error) {
      if (accepted.length === 1) accepted[0].reject(error);
      else for (const pending of accepted) await this.runBatch([pending]);
      return;
    }

    // 3. Commit; the files must be made of the same records as the validated ones.
    let committed: ReturnType<ConfigCommits["applyAll"]>;
    try {
      committed = this.options.store.transaction(() => {
        const outcome = this.applyAll(accepted);
        const failed = outcome.outcomes.find((item) => !item.ok);
        if (failed && !failed.ok) throw failed.error;
        if (outcome.sources.some((source, i) => source.basis !== dry.sources[i]?.basis)) {
          throw new Error("the configuration changed while it was validated");
        }
        return outcome;
      });
    } catch (error) {
      await staged.restore();
      if (accepted.length === 1) accepted[0].reject(error);
      else for (const pending of accepted) await this.runBatch([pending]);
      return;
    }

    this.options.onCommit?.(accepted.length);

    // 4. Go live, then answer.
    try {
      await Promise.all([this.options.reloads.activate(staged), this.options.afterCommit(committed.ftp)]);
    } catch (error) {
      for (const pending of accepted) pending.reject(error);
      return;
    }
    committed.outcomes.forEach((outcome, i) => outcome.ok && outcome.pending.resolve(committed.results[i]));
  }
}
