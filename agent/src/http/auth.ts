/**
 * Bearer-token authentication: which principal (http/scope.ts) a request's token stands for. The
 * admin token is compared after hashing both sides to a fixed length, so the comparison is
 * constant time and its duration reveals neither the token nor its length; an organization token
 * is looked up by its hash (domain/org-tokens.ts). The scheme name is case-insensitive (RFC 9110
 * §11.1), so `bearer <token>` is as good as `Bearer <token>`.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { Principal } from "./scope";

const digestOf = (value: string): Buffer => createHash("sha256").update(value, "utf8").digest();

/**
 * The principal of an Authorization header: the admin, the org of a valid org token, or undefined
 * (no token, a malformed header, an unknown or revoked token).
 */
export function principalResolver(
  adminToken: string,
  orgOfToken: (token: string) => string | undefined,
): (authorization: string | undefined) => Principal | undefined {
  const expected = digestOf(adminToken);
  return (authorization) => {
    const match = /^Bearer +(\S+)$/i.exec(authorization ?? "");
    if (match === null) return undefined;
    if (timingSafeEqual(digestOf(match[1]), expected)) return { kind: "admin" };
    const org = orgOfToken(match[1]);
    return org === undefined ? undefined : { kind: "org", org };
  };
}

/** A token the agent accepts: long enough to resist guessing, printable, no whitespace. */
export function tokenProblem(token: string): string | undefined {
  if (token.length < 32) return "must be at least 32 characters";
  if (!/^[\x21-\x7e]+$/.test(token)) return "must be printable ASCII without whitespace";
  return undefined;
}
