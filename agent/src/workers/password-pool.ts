/**
 * Password hashing off the event loop: a pool of worker threads (piscina), one per core, running
 * crypt SHA-512 (the system's through native-crypt.ts, ~2 ms of CPU each; else sdk/password.ts's,
 * ~8–13 ms). The agent's event loop only queues the task and awaits it, so health checks and
 * other requests keep answering during a burst of plaintext passwords. Passwords travel to the
 * workers by structured clone, never through a log.
 */
import os from "node:os";
import path from "node:path";
import { Piscina } from "piscina";
import type { PasswordTask } from "./password-worker";

export class PasswordPool {
  private readonly pool: Piscina<PasswordTask, string | boolean>;
  /** Tasks queued or running now, and those finished since start (read by metrics/ at scrape time). */
  private readonly counts = { pending: 0, hashed: 0, verified: 0 };

  constructor(threads = os.availableParallelism()) {
    this.pool = new Piscina({
      filename: path.join(__dirname, "password-worker.js"),
      // No thread while nothing is hashed or verified (a node given hashes keeps none: ~8 MB each);
      // idle workers go away, and the first task after a quiet spell pays a thread start (~30 ms).
      minThreads: 0,
      maxThreads: Math.max(1, threads),
      idleTimeout: 30_000,
    });
  }

  /** A new salted hash of `password`. */
  async hash(password: string): Promise<string> {
    return (await this.counted("hashed", { password })) as string;
  }

  /** Whether `password` matches `storedHash`. */
  async verify(password: string, storedHash: string): Promise<boolean> {
    return (await this.counted("verified", { password, storedHash })) as boolean;
  }

  get pending(): number {
    return this.counts.pending;
  }

  /** Hashes made and verified since start. */
  get done(): { hashed: number; verified: number } {
    return { hashed: this.counts.hashed, verified: this.counts.verified };
  }

  private async counted(done: "hashed" | "verified", task: PasswordTask): Promise<string | boolean> {
    this.counts.pending++;
    try {
      const result = await this.pool.run(task);
      this.counts[done]++;
      return result;
    } finally {
      this.counts.pending--;
    }
  }

  close(): Promise<void> {
    return this.pool.destroy();
  }
}
