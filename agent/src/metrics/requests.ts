/**
 * What a finished API request means for the metrics, from its method and route pattern only
 * (never its path: org names and usernames stay out of labels).
 */

/** The records a write changes: its latency is `lbhosting_agent_write_duration_seconds{resource}`. */
type WriteResource = "org" | "user" | "service" | "route";
/** A primary's sync arriving on a secondary copy. */
type ImportKind = "snapshot" | "delta";

const WRITES: Record<string, WriteResource> = {
  "/v1/orgs/:org": "org",
  "/v1/orgs/:org/users/:username": "user",
  "/v1/orgs/:org/services/:service": "service",
  "/v1/balancer/:org": "route",
};

const IMPORTS: Record<string, ImportKind> = {
  "PUT /v1/orgs/:org/replica": "snapshot",
  "POST /v1/orgs/:org/replica/changes": "delta",
};

export function requestMeaning(method: string, route: string): { write?: WriteResource; import?: ImportKind } {
  const write = method === "PUT" || method === "DELETE" ? WRITES[route] : undefined;
  const kind = IMPORTS[`${method} ${route}`];
  return { ...(write ? { write } : {}), ...(kind ? { import: kind } : {}) };
}

/** ok (2xx/3xx), rejected (4xx: the request was refused and changed nothing) or failed (5xx). */
export const outcomeOf = (status: number): "ok" | "rejected" | "failed" =>
  status < 400 ? "ok" : status < 500 ? "rejected" : "failed";

/** A request body's size as its Content-Length says (0 without one). */
export function bodyBytes(contentLength: string | undefined): number {
  const bytes = Number(contentLength);
  return Number.isSafeInteger(bytes) && bytes > 0 ? bytes : 0;
}
