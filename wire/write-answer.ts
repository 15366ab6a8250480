/**
 * What an agent's answer to a user or service write tells a client beyond its body, in headers
 * (the body stays the stored record, as GET gives it): the org's generation and digest after the
 * write, whether it changed anything, the org's active secondaries, and the change-log entry the
 * write appended. That is everything a sync needs to bring an in-sync secondary along with one
 * request (provider/sync/), so the wire format lives here, shared by the agent and the provider.
 */
import { normalizeEndpoint } from "./fields";
import { type Change, changeSchema } from "./records";

export const WRITE_HEADERS = {
  generation: "x-lbhosting-generation",
  digest: "x-lbhosting-digest",
  changed: "x-lbhosting-changed",
  /** The org's epoch (raised by each failover or move): a sync sends it on with the change. */
  epoch: "x-lbhosting-epoch",
  /** The org's active secondaries (loadBalanced ? secondaries : []), comma-separated; "" when none. */
  secondaries: "x-lbhosting-secondaries",
  /** The change-log entry the write appended on a primary, as base64url JSON. */
  change: "x-lbhosting-change",
} as const;

/**
 * Sent with a user or service PUT that creates a resource without `adopt`: the agent refuses the
 * write (409 `managed_elsewhere`) when the object exists managed by another owner than this value,
 * so the ownership check and the write are one atomic request instead of a read and a write.
 */
export const OWNER_HEADER = "x-lbhosting-if-owner";

export interface WriteAnswer {
  generation: number;
  digest: string;
  changed: boolean;
  /** The org's epoch; 0 when the agent did not say (an older agent). */
  epoch: number;
  /** Absent when the agent did not say (an older agent). */
  secondaries?: string[];
  change?: Change;
}

/**
 * A change entry as the header carries it, or undefined when it is too big for a header (a service
 * with hundreds of domains): clients take at most 16 KiB of headers; the sync then reads the log.
 */
export function encodeChange(change: Change): string | undefined {
  const encoded = Buffer.from(JSON.stringify(change)).toString("base64url");
  return encoded.length <= MAX_CHANGE_HEADER ? encoded : undefined;
}

const MAX_CHANGE_HEADER = 8 * 1024;

function decodeChange(header: string | null): Change | undefined {
  if (!header) return undefined;
  try {
    const parsed = changeSchema.safeParse(JSON.parse(Buffer.from(header, "base64url").toString("utf8")));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** The write answer in `headers`, or undefined when the agent sent none (or malformed ones). */
export function writeAnswerFromHeaders(headers: { get(name: string): string | null }): WriteAnswer | undefined {
  const generation = Number(headers.get(WRITE_HEADERS.generation) ?? "x");
  const digest = headers.get(WRITE_HEADERS.digest) ?? "";
  const changed = headers.get(WRITE_HEADERS.changed);
  if (!Number.isSafeInteger(generation) || generation < 0 || !/^[0-9a-f]{64}$/.test(digest)) return undefined;
  if (changed !== "true" && changed !== "false") return undefined;
  const epoch = Number(headers.get(WRITE_HEADERS.epoch) ?? "0");
  if (!Number.isSafeInteger(epoch) || epoch < 0) return undefined;
  const secondaries = headers.get(WRITE_HEADERS.secondaries);
  const change = decodeChange(headers.get(WRITE_HEADERS.change));
  return {
    generation,
    digest,
    changed: changed === "true",
    epoch,
    ...(secondaries === null ? {} : { secondaries: secondaries.split(",").filter(Boolean).map(normalizeEndpoint) }),
    // Writes that arrive together commit together: the answer gives the org after all of them.
    ...(change && change.generation <= generation ? { change } : {}),
  };
}
