/**
 * Group commit for work that follows a commit (making the WAL durable, rebuilding FTP accounts):
 * callers arriving while a run is in progress share the next run, and each caller resolves only
 * once a run that started after its call has finished — so one run serves a whole burst, yet no
 * write answers before the work that includes it is done.
 *
 * `overlap: true` lets the next run start without waiting for the running one (an fdatasync may
 * run while another is in flight); otherwise runs are strictly one after another (pure-pw).
 */
export class Coalescer<K> {
  private running: Promise<void> | undefined;
  private queued: { keys: Set<K>; promise: Promise<void> } | undefined;

  constructor(
    private readonly task: (keys: Set<K>) => Promise<void>,
    private readonly options: { overlap?: boolean } = {},
  ) {}

  /** Resolves once a run that started after this call (and saw `keys`) has finished. */
  request(keys: Iterable<K> = []): Promise<void> {
    let queued = this.queued;
    if (!queued) {
      const next = { keys: new Set<K>(), promise: Promise.resolve() };
      const previous = (!this.options.overlap && this.running) || Promise.resolve();
      next.promise = previous
        .catch(() => undefined)
        // Callers of the same event-loop turn join this run before it starts.
        .then(() => new Promise<void>((resolve) => setImmediate(resolve)))
        .then(() => {
          this.queued = undefined;
          const run = this.task(new Set(next.keys));
          this.running = run;
          return run.finally(() => {
            if (this.running === run) this.running = undefined;
          });
        });
      this.queued = queued = next;
    }
    for (const key of keys) queued.keys.add(key);
    return queued.promise;
  }
}
