/**
 * The org digest: a hash of the replicated content only (org record, users with their password
 * hashes, services), so a primary and an in-sync secondary report the same value whatever order
 * the content was written in.
 *
 * Definition (format 2, agent schema 3):
 *   recordHash(r) = sha256hex(canonicalJson(r))
 *   setSum(rs)    = LtHash16 of { recordHash(r) : r in rs } — each element expanded by SHAKE128 to
 *                   1,024 little-endian uint16 lanes, the set's sum is the lane-wise sum mod 2^16
 *   digest        = sha256hex(canonicalJson({ org: recordHash(org),
 *                                             users: sha256hex(setSum(users)),
 *                                             services: sha256hex(setSum(services)) }))
 * Why a homomorphic set hash: adding or removing one record changes the sum by one element, so
 * the agent keeps each org's sums in its database and a write costs O(1), not O(users) (format 1
 * hashed every user's row hash on each write). LtHash16 at this size is collision resistant
 * (Bellare–Micciancio; Lewi et al., "Securing Update Propagation with Homomorphic Hashing").
 */
import { createHash } from "node:crypto";
import { canonicalJson, type OrgRecord, type ServiceRecord, type UserRecord } from "../../../wire";

function sha256Hex(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex");
}

type ContentRecord = OrgRecord | UserRecord | ServiceRecord;

/** A record as the store keeps it: its canonical JSON and that JSON's hash, serialised once. */
export function encodeRecord(record: ContentRecord): { json: string; hash: string } {
  const json = canonicalJson(record);
  return { json, hash: sha256Hex(json) };
}

const recordHash = (record: ContentRecord): string => encodeRecord(record).hash;

/** Bytes of a set sum: 1,024 uint16 lanes. */
const SET_SUM_BYTES = 2048;

export const emptySetSum = (): Buffer => Buffer.alloc(SET_SUM_BYTES);

/** Add (`sign` 1) or remove (`sign` -1) the element `hash` to / from `sum`, in place. */
export function updateSetSum(sum: Buffer, hash: string, sign: 1 | -1): void {
  const element = createHash("shake128", { outputLength: SET_SUM_BYTES }).update(hash, "utf8").digest();
  // Little-endian lanes by byte: a third of the CPU of readUInt16LE/writeUInt16LE per lane (the
  // stores keep the low byte, so each lane wraps modulo 2^16).
  for (let i = 0; i < SET_SUM_BYTES; i += 2) {
    const lane = (sum[i] | (sum[i + 1] << 8)) + sign * (element[i] | (element[i + 1] << 8));
    sum[i] = lane;
    sum[i + 1] = lane >> 8;
  }
}

/** Combine the org's record hash with the sums of its users' and services' record hashes. */
export function digestFromSums(orgHash: string, userSum: Buffer, serviceSum: Buffer): string {
  const sumHash = (sum: Buffer) => createHash("sha256").update(sum).digest("hex");
  return sha256Hex(canonicalJson({ org: orgHash, users: sumHash(userSum), services: sumHash(serviceSum) }));
}

const setSum = (hashes: Iterable<string>): Buffer => {
  const sum = emptySetSum();
  for (const hash of hashes) updateSetSum(sum, hash, 1);
  return sum;
};

/** The digest of an org's content given as plain records (any order). */
export function contentDigest(org: OrgRecord, users: UserRecord[], services: ServiceRecord[]): string {
  return digestFromSums(recordHash(org), setSum(users.map(recordHash)), setSum(services.map(recordHash)));
}
