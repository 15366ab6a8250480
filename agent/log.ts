/**
 * Structured logging: one JSON object per line on stdout. Callers pass only fields that are safe
 * to keep (never a token, password or hash); request URLs are reduced by `safeUrl`.
 */
export type LogLevel = "info" | "warn" | "error";
export type LogFields = Record<string, unknown>;
export type Logger = (level: LogLevel, msg: string, fields?: LogFields) => void;

export function jsonLogger(write: (line: string) => void = (line) => process.stdout.write(line)): Logger {
  return (level, msg, fields = {}) => {
    write(`${JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })}\n`);
  };
}

/** Query parameters the API defines; anything else a client sends is left out of logs. */
const LOGGED_QUERY = new Set(["since", "force"]);

/** The request path plus only the known, harmless query parameters. */
export function safeUrl(url: string): string {
  const [path, query] = url.split("?", 2);
  if (query === undefined) return path;
  const kept = new URLSearchParams();
  for (const [key, value] of new URLSearchParams(query)) if (LOGGED_QUERY.has(key)) kept.append(key, value);
  const text = kept.toString();
  return text === "" ? path : `${path}?${text}`;
}
