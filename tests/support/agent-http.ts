/**
 * A raw HTTP client for agent tests. It sends the path exactly as given (no URL normalisation, so
 * "%2e%2e" or ";" reach the agent as written), accepts self-signed TLS, and always times out.
 */
import http from "node:http";
import https from "node:https";
import net from "node:net";

export interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  /** The body parsed as JSON (undefined when it is not JSON). */
  json: unknown;
}

export interface CallOptions {
  /** Bearer token; `null` sends no Authorization header. */
  token?: string | null;
  /** JSON-encoded as the body. */
  body?: unknown;
  /** Sent as is (wins over `body`). */
  rawBody?: string | Buffer;
  headers?: Record<string, string>;
  timeoutMs?: number;
  /**
   * Reuse pooled connections. Off by default: a server that restarts or reloads (nginx closes idle
   * keep-alive connections on reload) would otherwise leave a stale socket for the next request.
   */
  keepAlive?: boolean;
}

export function call(baseUrl: string, method: string, path: string, options: CallOptions = {}): Promise<HttpAnswer> {
  const url = new URL(baseUrl);
  const payload =
    options.rawBody !== undefined
      ? Buffer.from(options.rawBody)
      : options.body !== undefined
        ? Buffer.from(JSON.stringify(options.body))
        : undefined;
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (payload !== undefined) {
    headers["content-type"] ??= "application/json";
    headers["content-length"] = String(payload.length);
  }
  const transport = url.protocol === "https:" ? https : http;
  return new Promise((resolve, reject) => {
    const request = transport.request(
      {
        host: url.hostname.replace(/^\[|\]$/g, ""),
        port: url.port,
        method,
        path,
        headers,
        timeout: options.timeoutMs ?? 15_000,
        rejectUnauthorized: false,
        ...(options.keepAlive ? {} : { agent: false }),
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: response.statusCode ?? 0, headers: response.headers, text, json });
        });
        response.on("error", reject);
      },
    );
    request.on("timeout", () => request.destroy(new Error(`${method} ${path} timed out`)));
    // The agent may answer (413) before reading a large body and close; the answer still counts.
    request.on("error", reject);
    request.end(payload);
  });
}

/** A client bound to one agent and token, for brevity in tests. */
export function agentClient(baseUrl: string, token: string, options: { keepAlive?: boolean } = {}) {
  const send = (method: string, path: string, body?: unknown) =>
    call(baseUrl, method, path, { token, keepAlive: options.keepAlive, ...(body === undefined ? {} : { body }) });
  return {
    get: (path: string) => send("GET", path),
    put: (path: string, body?: unknown) => send("PUT", path, body),
    post: (path: string, body?: unknown) => send("POST", path, body),
    delete: (path: string) => send("DELETE", path),
  };
}
export type AgentClient = ReturnType<typeof agentClient>;

/**
 * Send `bytes` as they are over a new TCP connection (no HTTP client in between, so malformed
 * request lines, raw non-ASCII bytes and oversized headers reach the agent) and read the answer
 * until the agent closes the connection; fails after `timeoutMs`, or when nothing was answered.
 */
export function rawCall(baseUrl: string, bytes: string | Buffer, timeoutMs = 15_000): Promise<HttpAnswer> {
  const url = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: url.hostname, port: Number(url.port) });
    const chunks: Buffer[] = [];
    let failure: Error | undefined;
    const timer = setTimeout(() => socket.destroy(new Error("no complete answer in time")), timeoutMs);
    socket.on("connect", () => socket.end(bytes));
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    // The agent may answer (413) and close before it has read everything: the answer still counts.
    socket.on("error", (error) => (failure = error));
    socket.on("close", () => {
      clearTimeout(timer);
      if (chunks.length === 0 && failure) reject(failure);
      else resolve(parseRawAnswer(Buffer.concat(chunks).toString("utf8")));
    });
  });
}

/** An HTTP/1.1 answer as text → status, headers (lower-cased names), body and parsed JSON. */
export function parseRawAnswer(raw: string): HttpAnswer {
  const split = raw.indexOf("\r\n\r\n");
  const head = split < 0 ? raw : raw.slice(0, split);
  const text = split < 0 ? "" : raw.slice(split + 4);
  const [statusLine = "", ...headerLines] = head.split("\r\n");
  const headers: http.IncomingHttpHeaders = {};
  for (const line of headerLines) {
    const colon = line.indexOf(":");
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0), headers, text, json };
}
