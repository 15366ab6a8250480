/**
 * The org digest: a hash of the replicated content only (org record, users with their password
 * hashes, services), so a primary and an in-sync secondary report the same value whatever order
 * the content was written in.
 *
 * Definition (two levels, so the agent can keep one hash per stored row and recompute an org's
 * digest from short row hashes instead of re-serialising every record on each write):
 *   recordHash(r) = sha256hex(canonicalJson(r))
 *   digest        = sha256hex(canonicalJson({ org: recordHash(org),
 *                                             users: [recordHash(u) for users sorted by username],
 *                                             services: [recordHash(s) for services sorted by name] }))
 */
import { createHash } from "node:crypto";
import type { OrgRecord, ServiceRecord, UserRecord } from "../sdk/schemas";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function canonicalValue(value: unknown): Json {
  if (value === null || typeof value === "boolean" || typeof value === "string") return value;
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new Error("canonical JSON cannot hold a non-finite number");
    return value;
  }
  if (Array.isArray(value)) return value.map(canonicalValue);
  if (typeof value === "object") {
    const out: { [key: string]: Json } = {};
    for (const key of Object.keys(value).sort()) {
      const item = (value as Record<string, unknown>)[key];
      if (item !== undefined) out[key] = canonicalValue(item);
    }
    return out;
  }
  throw new Error(`canonical JSON cannot hold a ${typeof value}`);
}

/** JSON with object keys sorted at every level and no whitespace; undefined members dropped. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(canonicalValue(value));
}

export function sha256Hex(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex");
}

export function recordHash(record: OrgRecord | UserRecord | ServiceRecord): string {
  return sha256Hex(canonicalJson(record));
}

/** Combine row hashes that are already in username / service-name order. */
export function digestFromHashes(orgHash: string, userHashes: string[], serviceHashes: string[]): string {
  return sha256Hex(canonicalJson({ org: orgHash, users: userHashes, services: serviceHashes }));
}

const byKey =
  <T>(key: (item: T) => string) =>
  (a: T, b: T): number => {
    const ka = key(a);
    const kb = key(b);
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  };

/** The digest of an org's content given as plain records (any order). */
export function contentDigest(org: OrgRecord, users: UserRecord[], services: ServiceRecord[]): string {
  return digestFromHashes(
    recordHash(org),
    [...users].sort(byKey((user) => user.username)).map(recordHash),
    [...services].sort(byKey((service) => service.name)).map(recordHash),
  );
}
