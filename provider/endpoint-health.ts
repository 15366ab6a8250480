/**
 * The process's memory of agent endpoints that did not answer in time, so a dead host costs one
 * timeout per process instead of one per resource: after a connect or answer timeout, the other
 * calls to that endpoint fail at once with the same reason, while one call at a time probes it
 * again after a back-off (a host that comes back is used again). A refused connection or an HTTP
 * error answer is fast anyway and is not remembered.
 */

/** How long calls to a silent endpoint fail fast before one of them probes it again. */
const DEFAULT_PROBE_BACKOFF_MS = 15_000;

interface Silence {
  /** What timed out, e.g. `no connection within 15000 ms`. */
  reason: string;
  firstSeen: number;
  /** When the next call may probe the endpoint. */
  probeAfter: number;
  probing: boolean;
}

/** Before a call: go ahead (the endpoint is not known to be silent, or this call is the probe), or fail at once. */
type Admission = { go: true } | { go: false; reason: string };

interface HealthOptions {
  now?: () => number;
  probeBackoffMs?: number;
  /** Told once per silence, when an endpoint is first found silent (the run's summary line). */
  onSilent?: (endpoint: string, reason: string) => void;
}

export class EndpointHealth {
  private readonly silent = new Map<string, Silence>();
  private readonly now: () => number;
  private readonly probeBackoffMs: number;

  constructor(private readonly options: HealthOptions = {}) {
    this.now = options.now ?? Date.now;
    this.probeBackoffMs = options.probeBackoffMs ?? DEFAULT_PROBE_BACKOFF_MS;
  }

  admit(endpoint: string): Admission {
    const silence = this.silent.get(endpoint);
    if (!silence) return { go: true };
    if (!silence.probing && this.now() >= silence.probeAfter) {
      silence.probing = true;
      return { go: true };
    }
    return { go: false, reason: this.remembered(silence) };
  }

  /** The endpoint answered (any status) or refused at once: it is not silent. */
  reached(endpoint: string): void {
    this.silent.delete(endpoint);
  }

  /** A call to the endpoint timed out; `reason` says what, and after how long. */
  timedOut(endpoint: string, reason: string): void {
    const now = this.now();
    const silence = this.silent.get(endpoint);
    if (silence) {
      // Still silent (the probe, or a call sent before the first timeout): the next probe after a back-off.
      silence.probing = false;
      silence.probeAfter = now + this.probeBackoffMs;
      return;
    }
    const fresh = { reason, firstSeen: now, probeAfter: now + this.probeBackoffMs, probing: false };
    this.silent.set(endpoint, fresh);
    this.options.onSilent?.(endpoint, this.remembered(fresh));
  }

  /** The same words for every call that fails fast, so one cause reads as one cause. */
  private remembered(silence: Silence): string {
    const since = new Date(silence.firstSeen).toISOString().replace(/\.\d+Z$/, "Z");
    return (
      `${silence.reason}, first at ${since}; not asked again in this run until it answers ` +
      `a probe (one every ${this.probeBackoffMs / 1000} s)`
    );
  }
}
