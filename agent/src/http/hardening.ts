/**
 * The agent's defences against hostile or sloppy HTTP clients, kept apart from the routes:
 * connection limits and timeouts, the JSON body parser, and errors raised by the framework or by
 * Node's HTTP parser turned into the API's `{ error: { code, message, details } }` shape.
 * Nothing here echoes a path segment, query value or body value back: any could be a credential.
 */
import { isUtf8 } from "node:buffer";
import http from "node:http";
import type { Duplex } from "node:stream";
import type { FastifyError } from "fastify";
import { getLocation } from "jsonc-parser";
import { ApiFailure } from "../errors";

export interface ConnectionLimits {
  /** Time a client has to send a whole request (headers within at most 10 s of it); then 408. */
  requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this. */
  idleTimeoutMs: number;
  /** Connections beyond this many open ones are closed as soon as they are accepted. */
  maxConnections: number;
  /** Failed authentications one client address may make in a minute; then 429 until the minute is over. */
  authFailuresPerMinute: number;
}

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = {
  requestTimeoutMs: 30_000,
  idleTimeoutMs: 5_000,
  maxConnections: 512,
  authFailuresPerMinute: 30,
};

const HEADERS_TIMEOUT_MS = 10_000;
/** Socket inactivity backstop (a client that stops reading its answer); longer than the slowest answer, a 30 s drain. */
const INACTIVITY_TIMEOUT_MS = 120_000;
const MAX_REQUESTS_PER_SOCKET = 1000;
/** Request bodies nest a few levels (a delta: changes → user → access); anything deeper is refused. */
export const MAX_JSON_DEPTH = 32;

/** Limits that cannot work, as a message for the operator, or undefined. */
export function limitsProblem(limits: ConnectionLimits): string | undefined {
  const positive = (value: number) => Number.isInteger(value) && value > 0;
  if (!positive(limits.requestTimeoutMs) || limits.requestTimeoutMs < 100) {
    return "--request-timeout-ms must be an integer of at least 100";
  }
  if (!positive(limits.idleTimeoutMs)) return "--idle-timeout-ms must be a positive integer";
  if (!positive(limits.maxConnections)) return "--max-connections must be a positive integer";
  if (!positive(limits.authFailuresPerMinute)) return "--auth-failures-per-minute must be a positive integer";
  return undefined;
}

/**
 * What only Node's HTTP(S) server constructor takes (Fastify sets the other timeouts): the headers
 * timeout, and checking timeouts every second rather than Node's default 30 s.
 */
export function nodeServerOptions(limits: ConnectionLimits): http.ServerOptions {
  const headersTimeout = Math.min(HEADERS_TIMEOUT_MS, limits.requestTimeoutMs);
  return { headersTimeout, connectionsCheckingInterval: Math.min(1000, Math.ceil(headersTimeout / 4)) };
}

/** Fastify's share of the same limits; its own 503 while closing is replaced by one in the API shape. */
export function fastifyServerOptions(limits: ConnectionLimits) {
  return {
    connectionTimeout: INACTIVITY_TIMEOUT_MS,
    keepAliveTimeout: limits.idleTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    maxRequestsPerSocket: MAX_REQUESTS_PER_SOCKET,
    return503OnClosing: false,
    clientErrorHandler: answerClientError,
  };
}

const invalidJson = () =>
  new ApiFailure(400, "invalid_json", "the request body is not valid JSON", [
    { path: "body", message: "must be a JSON document" },
  ]);

const pathText = (segments: ReadonlyArray<string | number>) =>
  segments.length === 0 ? "body" : segments.map(String).join(".");

/** Where in the body the first byte that is not UTF-8 sits, as a field path. */
function invalidUtf8Failure(body: Buffer, text: string): ApiFailure {
  const reencoded = Buffer.from(text, "utf8");
  let index = 0;
  while (index < body.length && body[index] === reencoded[index]) index++;
  const offset = body.subarray(0, index).toString("utf8").length;
  const path = pathText(getLocation(text, offset).path);
  return new ApiFailure(400, "invalid_utf8", `invalid request: ${path}: is not valid UTF-8`, [
    { path, message: "must be valid UTF-8" },
  ]);
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null;

/** Refuses keys that could reach an object's prototype, and nesting deeper than MAX_JSON_DEPTH. */
function checkStructure(root: unknown): void {
  const pending: Array<{ value: unknown; path: Array<string | number> }> = [{ value: root, path: [] }];
  for (let next = pending.pop(); next; next = pending.pop()) {
    const { value, path } = next;
    if (!isObject(value)) continue;
    if (path.length >= MAX_JSON_DEPTH) {
      throw new ApiFailure(400, "too_deep", `the request body nests deeper than ${MAX_JSON_DEPTH} levels`, [
        { path: "body", message: `must not nest deeper than ${MAX_JSON_DEPTH} levels` },
      ]);
    }
    for (const [key, child] of Object.entries(value)) {
      const childPath = [...path, Array.isArray(value) ? Number(key) : key];
      if (key === "__proto__" || (key === "constructor" && isObject(child) && "prototype" in child)) {
        const field = pathText(childPath);
        throw new ApiFailure(400, "forbidden_key", `invalid request: ${field}: is a forbidden key`, [
          { path: field, message: "is a forbidden key (it could change an object's prototype)" },
        ]);
      }
      pending.push({ value: child, path: childPath });
    }
  }
}

/**
 * The body of an `application/json` request: `undefined` when empty (routes that take no body
 * accept it; routes that need one report the missing body), else strict UTF-8, valid JSON, no
 * prototype keys, bounded nesting.
 */
export function parseJsonBody(body: Buffer): unknown {
  if (body.length === 0) return undefined;
  const text = body.toString("utf8");
  if (!isUtf8(body)) throw invalidUtf8Failure(body, text);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw invalidJson();
  }
  checkStructure(value);
  return value;
}

/** Errors Fastify raises itself (body too large, wrong media type, ...) in the API's shape. */
export function frameworkFailure(error: FastifyError, nodeName: string): ApiFailure {
  if (error instanceof ApiFailure) return error;
  if (isDiskFull(error)) {
    // SQLite rolled the transaction back, and no rendered file is swapped in half-written.
    return new ApiFailure(507, "insufficient_storage", `disk full on ${nodeName}: nothing was changed`);
  }
  switch (error.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return new ApiFailure(413, "payload_too_large", "the request body is too large", [
        { path: "body", message: "is larger than this endpoint accepts" },
      ]);
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return new ApiFailure(415, "unsupported_media_type", "send the body as application/json", [
        { path: "body", message: "must be application/json" },
      ]);
    case "FST_ERR_CTP_INVALID_CONTENT_LENGTH":
      return new ApiFailure(400, "bad_request", "the request body does not match its Content-Length", [
        { path: "body", message: "must be as long as Content-Length says" },
      ]);
  }
  const status = error.statusCode ?? 500;
  if (status >= 400 && status < 500) return new ApiFailure(status, "bad_request", "the request was refused");
  return new ApiFailure(500, "internal", "internal error; see the agent's log");
}

/** SQLite's and the file system's word for a full disk (or a quota reached). */
const DISK_FULL_CODES = new Set(["SQLITE_FULL", "ENOSPC", "EDQUOT"]);

function isDiskFull(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === "string" && DISK_FULL_CODES.has(code);
}

/**
 * Reads and drops the rest of a refused request's body before the answer goes out: closing a
 * connection with unread data resets it, and the client, still sending, would lose the answer.
 * Bounded by the request timeout, which destroys the connection.
 */
export function discardBody(request: http.IncomingMessage): Promise<void> {
  if (request.complete || request.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    request.once("end", resolve).once("close", resolve).resume();
  });
}

/** A request whose path is not a valid percent-encoded URL (Fastify's router or Node's parser). */
export const badUrlFailure = (): ApiFailure =>
  new ApiFailure(400, "bad_url", "the request path is not a valid URL", [
    { path: "url", message: "must be a valid, percent-encoded path" },
  ]);

/** A request that matches no route; the path is not repeated (a client may have put a token in it). */
export const noRouteFailure = (method: string): ApiFailure =>
  new ApiFailure(404, "not_found", `no endpoint of API v1 answers ${method} at this path`, [
    { path: "url", message: "matches no endpoint" },
  ]);

/** What Node's HTTP parser refused before any route saw the request. */
function clientFailure(error: NodeJS.ErrnoException): ApiFailure {
  if (error.code === "ERR_HTTP_REQUEST_TIMEOUT") {
    return new ApiFailure(408, "request_timeout", "the request was not received in time", [
      { path: "request", message: "must arrive whole within the agent's request timeout" },
    ]);
  }
  if (error.code === "HPE_HEADER_OVERFLOW") {
    return new ApiFailure(431, "headers_too_large", "the request headers are too large", [
      { path: "headers", message: "must be smaller" },
    ]);
  }
  if (error.code === "HPE_INVALID_URL") return badUrlFailure();
  return new ApiFailure(400, "bad_request", "the request is not valid HTTP/1.1", [
    { path: "request", message: "must be a valid HTTP/1.1 request" },
  ]);
}

/** Fastify's `clientErrorHandler`: answer in the API's shape, then close the connection. */
function answerClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  if (error.code === "ECONNRESET" || socket.destroyed) return;
  if (socket.writable) {
    const failure = clientFailure(error);
    const body = JSON.stringify(failure.toBody());
    socket.write(
      `HTTP/1.1 ${failure.status} ${http.STATUS_CODES[failure.status]}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}
