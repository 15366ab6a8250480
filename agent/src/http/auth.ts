/**
 * Bearer-token check. Both sides are hashed to a fixed length first so the comparison is constant
 * time and its duration reveals neither the token nor its length. The scheme name is
 * case-insensitive (RFC 9110 §11.1), so `bearer <token>` is as good as `Bearer <token>`.
 */
import { createHash, timingSafeEqual } from "node:crypto";

const digestOf = (value: string): Buffer => createHash("sha256").update(value, "utf8").digest();

export function bearerChecker(token: string): (authorization: string | undefined) => boolean {
  const expected = digestOf(token);
  return (authorization) => {
    const match = /^Bearer +(\S+)$/i.exec(authorization ?? "");
    return match !== null && timingSafeEqual(digestOf(match[1]), expected);
  };
}

/** A token the agent accepts: long enough to resist guessing, printable, no whitespace. */
export function tokenProblem(token: string): string | undefined {
  if (token.length < 32) return "must be at least 32 characters";
  if (!/^[\x21-\x7e]+$/.test(token)) return "must be printable ASCII without whitespace";
  return undefined;
}
