/**
 * Structured logging: one JSON object per line on stdout. Callers pass only fields that are safe
 * to keep (never a token, password or hash); a request is logged by its route pattern, never by
 * its path, since a client may put a credential in any path segment or query value.
 */
type LogLevel = "info" | "warn" | "error";
type LogFields = Record<string, unknown>;
export type Logger = (level: LogLevel, msg: string, fields?: LogFields) => void;

export function jsonLogger(write: (line: string) => void = (line) => process.stdout.write(line)): Logger {
  return (level, msg, fields = {}) => {
    write(`${JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })}\n`);
  };
}

/** Query values that cannot hold a credential (tokens are 16+ characters): kept in logs; any other is dropped. */
const LOGGED_QUERY: Record<string, RegExp> = {
  since: /^\d{1,15}$/,
  epoch: /^\d{1,15}$/,
  force: /^(?:true|false)$/,
};

/**
 * What a request log line says about the request: the route pattern that matched (e.g.
 * "/v1/orgs/:org/changes", or "(no route)") plus the API's own query parameters when well-formed.
 */
export function loggedRoute(pattern: string | undefined, url: string): string {
  const query = url.includes("?") ? url.slice(url.indexOf("?") + 1) : "";
  const kept = new URLSearchParams();
  for (const [key, value] of new URLSearchParams(query)) {
    if (LOGGED_QUERY[key]?.test(value)) kept.append(key, value);
  }
  const text = kept.toString();
  const route = pattern ?? "(no route)";
  return text === "" ? route : `${route}?${text}`;
}
