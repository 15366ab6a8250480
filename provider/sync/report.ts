/** What a sync tells its caller, and the error a sync that left a secondary behind becomes. */
import type { SecondarySyncStatus } from "../../sdk/outputs";
import type { WriteAnswer } from "../../wire/write-answer";
import type { EndpointFilter } from "./named";

export interface SyncOptions {
  /** Send a full snapshot to every secondary, even one that is in sync (initiate synchronization). */
  full?: boolean;
  /** One line per secondary: delta or snapshot, changes, bytes, ms. */
  log?: (line: string) => void;
  /** The primary's answer to the write this sync follows (its generation, digest, change). */
  write?: WriteAnswer;
  /** The endpoints this sync may contact; other secondaries the primary lists are `unexpected`. Default: all. */
  isNamed?: EndpointFilter;
}

export interface SyncReport {
  org: string;
  primary: string;
  /** The primary's generation and digest the secondaries were brought to. */
  generation: number;
  digest: string;
  /** The primary's epoch. */
  epoch: number;
  secondaries: SecondarySyncStatus[];
  inSync: boolean;
  /** Why each secondary not in sync is not, without its endpoint (its `error` may name it). */
  reasons?: Record<string, string>;
  /** Secondaries the primary lists that the stack does not name: not contacted (named.ts). */
  unexpected?: string[];
}

/** The `lbhosting sync` command line for an org: it names each secondary, the only ones it contacts. */
export const syncCommand = (org: string, primary: string, secondaries: string[]): string =>
  [`lbhosting sync --org ${org} --primary ${primary}`, ...secondaries.map((s) => `--secondary ${s}`)].join(" ");

/** A sync left at least one secondary behind; the primary keeps its changes. */
export class SyncError extends Error {
  constructor(
    readonly report: SyncReport,
    /** Whether the sync followed a change on the primary (a resource operation). */
    afterChange = true,
  ) {
    const failed = report.secondaries.filter((secondary) => secondary.state !== "in-sync");
    const reasons = failed.map(({ endpoint, state, error }) => {
      const detail = report.reasons?.[endpoint] ?? error;
      return `${endpoint} is ${state}${detail ? `: ${detail}` : ""}`;
    });
    const what = failed.length === 1 ? "a secondary was" : `${failed.length} secondaries were`;
    const lead = afterChange
      ? `organization ${report.org}: the change is applied on the primary ${report.primary}, but ${what} not synchronized`
      : `organization ${report.org}: ${what} not synchronized from the primary ${report.primary}`;
    // "Reachable" only when that is what is missing: a secondary that answered and refused (a
    // full disk, 507) needs its cause fixed.
    const when = failed.every(({ state }) => state === "unreachable")
      ? "once the secondary is reachable"
      : "once the cause above is fixed";
    super(
      `${lead} (${reasons.join("; ")}). Run 'pulumi up' again, or ` +
        `'${syncCommand(
          report.org,
          report.primary,
          report.secondaries.map((s) => s.endpoint),
        )}', ${when}.`,
    );
    this.name = "SyncError";
  }
}
