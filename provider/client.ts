/**
 * The one HTTP client for hosting agents (API v1), shared by the resource providers, the sync
 * module and the `lbhosting` operator commands. Every call has a timeout, and every answer is
 * checked against the wire contract (wire/answers.ts): a malformed one is an AgentProtocolError
 * naming the request and the field. Requests go through undici's `request` on its keep-alive pool
 * (a 1,000-user `pulumi up` makes thousands; its `fetch` layer cost several times the CPU), and
 * through undici's RetryAgent, which repeats idempotent requests on fast network failures and
 * 502/503/504 a bounded number of times (the last attempt on the plain pool, so an agent's error
 * answer keeps its code and reason); an answer timeout is repeated once, a connect timeout never.
 * One timeout governs connecting and answering; an endpoint that let one run out is remembered
 * (endpoint-health.ts), so the process's next calls to it fail at once.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { Agent, request, RetryAgent, type Dispatcher } from "undici";
import type { z } from "zod";
import {
  apiErrorSchema,
  normalizeEndpoint,
  type BalancerRecord,
  type BalancerRoute,
  type BalancerStatus,
  type ChangesResult,
  type Deleted,
  type Health,
  type IssuedOrgToken,
  type NodeInfo,
  type OrgToken,
  type OrgTokenRequest,
  type OrgSettingsInput,
  type OrgStatus,
  type PromoteBody,
  type RegisteredBackend,
  type RegisteredBackendRecord,
  type ReplicaBody,
  type ReplicaChangesBody,
  type RevokedOrgToken,
  type ServiceBody,
  type ServiceView,
  type Snapshot,
  type UserBody,
  type UserRecord,
} from "../wire";
import { agentAnswerSchemas as answers } from "../wire/answers";
import { OWNER_HEADER, type WriteAnswer, writeAnswerFromHeaders } from "../wire/write-answer";
import { DRAINING_ANSWER_TIMEOUT_MS } from "../wire/timeouts";
import { AgentError, AgentProtocolError, AgentUnreachableError } from "./agent-errors";
import { EndpointHealth } from "./endpoint-health";
import { tlsAdvice, trustedCas } from "./trust";

export { AgentError, AgentProtocolError, AgentUnreachableError, unlessNotFound } from "./agent-errors";

/** Makes the client for an agent endpoint (each caller decides where the tokens come from). */
export type ClientFactory = (endpoint: string) => AgentClient;

/** A user/service PUT's answer: the stored record, and what the agent said about the write. */
export interface WriteOutcome<T> {
  record: T;
  /** Undefined when the agent sent no write headers (an older agent). */
  answer?: WriteAnswer;
}

export interface ClientOptions {
  /** Per-attempt timeout: for the connection, then the answer's headers, then between chunks of its body. */
  timeoutMs?: number;
  /**
   * Extra attempts after the first for a retryable status (502/503/504); a refused or reset
   * connection gets `retries - 1` (the last extra attempt is the plain pool's, see `send`), an
   * answer timeout one (`ANSWER_ATTEMPTS`), a connect timeout none. 0: one attempt for everything.
   */
  retries?: number;
  /** The process's memory of silent endpoints, shared by its clients (default: this client's own). */
  health?: EndpointHealth;
  /** PEM certificates of CAs trusted besides the system's (trust.ts). */
  ca?: string[];
}

const DEFAULT_TIMEOUT_MS = 15_000;
const DEFAULT_RETRIES = 2;

/**
 * Fast network failures worth another attempt (undici's defaults). Timeouts are not in it:
 * `answerOf` repeats an answer timeout itself, so its error can say what each attempt met; a
 * connect timeout is not repeated at all (TCP already resent its SYN within the timeout, and a
 * host that stays silent that long is remembered as silent for the process: endpoint-health.ts).
 */
const RETRYABLE_ERRORS = [
  "ECONNRESET",
  "ECONNREFUSED",
  "ENOTFOUND",
  "ENETDOWN",
  "ENETUNREACH",
  "EHOSTDOWN",
  "EHOSTUNREACH",
  "EPIPE",
  "UND_ERR_SOCKET",
];
/** Answers worth another attempt: the agent stopping, or a proxy or the balancer's HAProxy failing. */
const RETRYABLE_STATUSES = [502, 503, 504];
const ANSWER_TIMEOUT_ERRORS = new Set(["UND_ERR_HEADERS_TIMEOUT", "UND_ERR_BODY_TIMEOUT"]);
/** An answer that timed out is asked for once more where that is safe: the host took the connection, so its agent may be only paused. */
const ANSWER_ATTEMPTS = 2;
const ANSWER_RETRY_DELAY_MS = 200;

type Method = "GET" | "PUT" | "POST" | "DELETE";

interface Call<S extends z.ZodType> {
  method: Method;
  path: string;
  /** What the answer's body must be. */
  answer: S;
  body?: unknown;
  timeoutMs?: number;
  headers?: Record<string, string>;
}

export class AgentClient {
  readonly endpoint: string;
  private readonly timeoutMs: number;
  private readonly silentEndpoints: EndpointHealth;
  /** The keep-alive pool; its connect timeout is `timeoutMs` (undici's own default is 10 s whatever the answer's). */
  private readonly pool: Dispatcher;
  /**
   * GET, PUT and DELETE of API v1 are idempotent: repeating one leaves the agent as one does.
   * Undefined when the client makes no retries (the plain keep-alive pool).
   */
  private readonly idempotent?: Dispatcher;
  /**
   * POST is retried only for a promotion: the agent answers a repeated promotion at the same epoch
   * as the first (agent/src/domain, `promote`). A repeated POST /replica/changes is not idempotent
   * (the copy has moved past the delta's base: 409), so it goes out once, on the plain pool; the
   * sync looks again instead.
   */
  private readonly promotion?: Dispatcher;

  /** Undefined: the request is sent once, on the plain pool. */
  private dispatcherFor(method: Method, path: string): Dispatcher | undefined {
    if (method !== "POST") return this.idempotent;
    return path.endsWith("/promote") ? this.promotion : undefined;
  }

  constructor(
    endpoint: string,
    private readonly token: string,
    options: ClientOptions = {},
  ) {
    this.endpoint = normalizeEndpoint(endpoint);
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.silentEndpoints = options.health ?? new EndpointHealth();
    const ca = options.ca === undefined ? {} : { ca: trustedCas(options.ca) };
    this.pool = new Agent({ connect: { timeout: this.timeoutMs, ...ca } });
    const retries = options.retries ?? DEFAULT_RETRIES;
    if (retries === 0) return;
    // RetryAgent keeps no body of a status it retried, so the last attempt goes out on the plain
    // pool (see `send`): its answer, with the agent's own error code and reason, reaches the caller.
    const retry = {
      maxRetries: retries - 1,
      minTimeout: 200,
      timeoutFactor: 3,
      statusCodes: [...RETRYABLE_STATUSES],
      errorCodes: RETRYABLE_ERRORS,
    };
    this.idempotent = new RetryAgent(this.pool, { ...retry, methods: ["GET", "PUT", "DELETE"] });
    this.promotion = new RetryAgent(this.pool, { ...retry, methods: ["POST"] });
  }

  health(): Promise<Health> {
    return this.read({ method: "GET", path: "/v1/health", answer: answers.health });
  }

  getOrg(org: string): Promise<OrgStatus> {
    return this.read({ method: "GET", path: orgPath(org), answer: answers.orgStatus });
  }

  /** With `owner`, the agent refuses (409 managed_elsewhere) to overwrite an org another owner manages. */
  putOrg(org: string, settings: OrgSettingsInput, force = false, owner?: string): Promise<OrgStatus> {
    const path = orgPath(org) + forceQuery(force);
    return this.read({ method: "PUT", path, body: settings, answer: answers.orgStatus, headers: ownerHeader(owner) });
  }

  async deleteOrg(org: string, force = false): Promise<void> {
    await this.read({ method: "DELETE", path: orgPath(org) + forceQuery(force), answer: answers.orgDeleted });
  }

  getUser(org: string, username: string): Promise<UserRecord> {
    return this.read({ method: "GET", path: userPath(org, username), answer: answers.user });
  }

  listUsers(org: string): Promise<UserRecord[]> {
    return this.read({ method: "GET", path: `${orgPath(org)}/users`, answer: answers.users });
  }

  /** With `owner`, the agent refuses (409 managed_elsewhere) to overwrite a user another owner manages. */
  async putUser(
    org: string,
    username: string,
    body: UserBody,
    force = false,
    owner?: string,
  ): Promise<WriteOutcome<UserRecord>> {
    const path = userPath(org, username) + forceQuery(force);
    const answer = await this.send({ method: "PUT", path, body, answer: answers.user, headers: ownerHeader(owner) });
    return { record: answer.body, answer: writeAnswerFromHeaders(answer.headers) };
  }

  async deleteUser(org: string, username: string, force = false): Promise<WriteAnswer | undefined> {
    const path = userPath(org, username) + forceQuery(force);
    return writeAnswerFromHeaders((await this.send({ method: "DELETE", path, answer: answers.writeResult })).headers);
  }

  getService(org: string, name: string): Promise<ServiceView> {
    return this.read({ method: "GET", path: servicePath(org, name), answer: answers.service });
  }

  listServices(org: string): Promise<ServiceView[]> {
    return this.read({ method: "GET", path: `${orgPath(org)}/services`, answer: answers.services });
  }

  /** With `owner`, the agent refuses (409 managed_elsewhere) to overwrite a service another owner manages. */
  async putService(
    org: string,
    name: string,
    body: ServiceBody,
    force = false,
    owner?: string,
  ): Promise<WriteOutcome<ServiceView>> {
    const path = servicePath(org, name) + forceQuery(force);
    const answer = await this.send({ method: "PUT", path, body, answer: answers.service, headers: ownerHeader(owner) });
    return { record: answer.body, answer: writeAnswerFromHeaders(answer.headers) };
  }

  async deleteService(org: string, name: string, force = false): Promise<WriteAnswer | undefined> {
    const path = servicePath(org, name) + forceQuery(force);
    return writeAnswerFromHeaders((await this.send({ method: "DELETE", path, answer: answers.writeResult })).headers);
  }

  /** A website's ACME HTTP-01 answer on this node (not replicated: written on each serving node). */
  async putAcmeChallenge(org: string, service: string, token: string, keyAuthorization: string): Promise<void> {
    const path = `${servicePath(org, service)}/acme-challenges/${encodeURIComponent(token)}`;
    await this.read({ method: "PUT", path, body: { keyAuthorization }, answer: answers.acmeChallenge });
  }

  async deleteAcmeChallenge(org: string, service: string, token: string): Promise<void> {
    const path = `${servicePath(org, service)}/acme-challenges/${encodeURIComponent(token)}`;
    await this.read({ method: "DELETE", path, answer: answers.acmeChallenge });
  }

  snapshot(org: string): Promise<Snapshot> {
    return this.read({ method: "GET", path: `${orgPath(org)}/snapshot`, answer: answers.snapshot });
  }

  changesSince(org: string, generation: number): Promise<ChangesResult> {
    return this.read({ method: "GET", path: `${orgPath(org)}/changes?since=${generation}`, answer: answers.changes });
  }

  putReplica(org: string, body: ReplicaBody): Promise<OrgStatus> {
    return this.read({ method: "PUT", path: `${orgPath(org)}/replica`, body, answer: answers.orgStatus });
  }

  applyReplicaChanges(org: string, body: ReplicaChangesBody): Promise<OrgStatus> {
    return this.read({ method: "POST", path: `${orgPath(org)}/replica/changes`, body, answer: answers.orgStatus });
  }

  /**
   * Removes the node's copy. With `epoch` (the org's current one), a former primary that still
   * holds the org at a lower epoch loses it too: fencing by removal.
   */
  deleteReplica(org: string, epoch?: number): Promise<Deleted> {
    const path = `${orgPath(org)}/replica${epoch === undefined ? "" : `?epoch=${epoch}`}`;
    return this.read({ method: "DELETE", path, answer: answers.orgDeleted });
  }

  /** Makes the node's copy (at `generation`, `digest` as last seen) the org's primary at `epoch`. */
  promote(org: string, body: PromoteBody): Promise<OrgStatus> {
    return this.read({ method: "POST", path: `${orgPath(org)}/promote`, body, answer: answers.orgStatus });
  }

  nodeInfo(): Promise<NodeInfo> {
    return this.read({ method: "GET", path: "/v1/node", answer: answers.nodeInfo });
  }

  getRoute(org: string): Promise<BalancerRecord> {
    return this.read({ method: "GET", path: routePath(org), answer: answers.route });
  }

  /** Answers once the load balancer runs the new route, nodes leaving it drained first (see DRAINING_ANSWER_TIMEOUT_MS). */
  putRoute(org: string, route: BalancerRoute): Promise<BalancerRecord> {
    const timeoutMs = DRAINING_ANSWER_TIMEOUT_MS;
    return this.read({ method: "PUT", path: routePath(org), body: route, answer: answers.route, timeoutMs });
  }

  async deleteRoute(org: string): Promise<void> {
    const timeoutMs = DRAINING_ANSWER_TIMEOUT_MS;
    await this.read({ method: "DELETE", path: routePath(org), answer: answers.routeDeleted, timeoutMs });
  }

  /** How the load balancer sees each node of the org's route now (HAProxy's health and open connections). */
  balancerStatus(org: string): Promise<BalancerStatus> {
    return this.read({ method: "GET", path: `${routePath(org)}/status`, answer: answers.balancerStatus });
  }

  /** Admin only: a new token for `org` on this node (the org need not exist yet); the secret is in this answer only. */
  issueOrgToken(org: string, label = ""): Promise<IssuedOrgToken> {
    const path = `${orgPath(org)}/tokens`;
    const body: OrgTokenRequest = { label };
    return this.read({ method: "POST", path, body, answer: answers.issuedOrgToken });
  }

  /** Admin only: the org's tokens on this node, without their secrets. */
  listOrgTokens(org: string): Promise<OrgToken[]> {
    return this.read({ method: "GET", path: `${orgPath(org)}/tokens`, answer: answers.orgTokens });
  }

  /** Admin only: the token is refused from the agent's next request on (404 when unknown). */
  revokeOrgToken(org: string, id: string): Promise<RevokedOrgToken> {
    const path = `${orgPath(org)}/tokens/${encodeURIComponent(id)}`;
    return this.read({ method: "DELETE", path, answer: answers.revokedOrgToken });
  }

  /** Admin only, on a load balancer: a node routes may send traffic to, at these addresses. */
  registerBackend(name: string, addresses: RegisteredBackend): Promise<RegisteredBackendRecord> {
    return this.read({ method: "PUT", path: backendPath(name), body: addresses, answer: answers.backend });
  }

  /** Admin only: the nodes registered with this load balancer. */
  listBackends(): Promise<RegisteredBackendRecord[]> {
    return this.read({ method: "GET", path: "/v1/backends", answer: answers.backends });
  }

  /** Admin only: forgets a registered node (409 while a route still uses it). */
  async unregisterBackend(name: string): Promise<void> {
    await this.read({ method: "DELETE", path: backendPath(name), answer: answers.backendDeleted });
  }

  private async read<S extends z.ZodType>(call: Call<S>): Promise<z.output<S>> {
    return (await this.send(call)).body;
  }

  /**
   * One request (retried by the dispatcher where that is safe); its answer checked against
   * `call.answer`. An endpoint remembered as silent fails it at once, unless it is its turn to probe.
   */
  private async send<S extends z.ZodType>(call: Call<S>): Promise<{ body: z.output<S>; headers: HeaderReader }> {
    const admission = this.silentEndpoints.admit(this.endpoint);
    if (!admission.go) throw new AgentUnreachableError(this.endpoint, admission.reason);
    const dispatcher = this.dispatcherFor(call.method, call.path);
    let answer: RawAnswer;
    try {
      answer = await this.answerOf(call, dispatcher);
    } catch (error) {
      if (!retriedStatusSpent(error)) throw error;
      answer = await this.answerOf(call, undefined);
    }
    const what = `${call.method} ${call.path.replace(/\?.*$/, "")}`;
    if (answer.status < 200 || answer.status >= 300) throw toAgentError(this.endpoint, answer.status, answer.text);
    return { body: checked(this.endpoint, what, call.answer, answer.text), headers: answer.headers };
  }

  /**
   * The request's answer, on `retrying` (undefined: once, on the plain pool), or an
   * AgentUnreachableError saying what each attempt met. Tells the endpoint memory how it went.
   */
  private async answerOf(call: Call<z.ZodType>, retrying: Dispatcher | undefined): Promise<RawAnswer> {
    const timeoutMs = call.timeoutMs ?? this.timeoutMs;
    const timeouts: string[] = [];
    const attempts = retrying === undefined ? 1 : ANSWER_ATTEMPTS;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      try {
        const answer = await this.attempt(call, retrying ?? this.pool, timeoutMs);
        this.silentEndpoints.reached(this.endpoint);
        return answer;
      } catch (error) {
        const { code } = error as { code?: string };
        if (retriedStatusSpent(error)) {
          this.silentEndpoints.reached(this.endpoint);
          throw error;
        }
        if (code === "UND_ERR_CONNECT_TIMEOUT") {
          timeouts.push(`no connection within ${this.timeoutMs} ms`);
          break;
        }
        if (code === undefined || !ANSWER_TIMEOUT_ERRORS.has(code)) {
          // Refused, reset, unknown name: fast failures, nothing to remember.
          this.silentEndpoints.reached(this.endpoint);
          throw new AgentUnreachableError(this.endpoint, describeNetworkError(error));
        }
        timeouts.push(`no answer within ${timeoutMs} ms`);
        if (attempt < attempts) await sleep(ANSWER_RETRY_DELAY_MS);
      }
    }
    const reason = describeTimeouts(timeouts);
    this.silentEndpoints.timedOut(this.endpoint, reason);
    throw new AgentUnreachableError(this.endpoint, reason);
  }

  /** One request on `dispatcher`; a request that gets no answer throws undici's error. */
  private async attempt(call: Call<z.ZodType>, dispatcher: Dispatcher, timeoutMs: number): Promise<RawAnswer> {
    const payload = call.body === undefined ? undefined : JSON.stringify(call.body);
    const response = await request(this.endpoint + call.path, {
      method: call.method,
      dispatcher,
      headers: {
        authorization: `Bearer ${this.token}`,
        ...(payload === undefined ? {} : { "content-type": "application/json" }),
        ...call.headers,
      },
      body: payload,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    return { status: response.statusCode, headers: headerReader(response.headers), text: await response.body.text() };
  }
}

/** What the attempts met, e.g. `no answer within 15000 ms (2 attempts)` or `no answer within …, then no connection within …`. */
function describeTimeouts(timeouts: string[]): string {
  if (timeouts.length > 1 && timeouts.every((timeout) => timeout === timeouts[0])) {
    return `${timeouts[0]} (${timeouts.length} attempts)`;
  }
  return timeouts.join(", then ");
}

interface RawAnswer {
  status: number;
  headers: HeaderReader;
  text: string;
}

/** RetryAgent gave up on a status it retries (its error carries the status, not the body). */
const retriedStatusSpent = (error: unknown): boolean =>
  (error as { code?: string }).code === "UND_ERR_REQ_RETRY" &&
  (error as { statusCode?: number }).statusCode !== undefined;

/** The answer's body as the schema gives it, or an AgentProtocolError naming the first wrong field. */
function checked<S extends z.ZodType>(endpoint: string, what: string, schema: S, text: string): z.output<S> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new AgentProtocolError(endpoint, what, "", "is not JSON");
  }
  const parsed = schema.safeParse(json);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  throw new AgentProtocolError(endpoint, what, issue?.path.map(String).join(".") ?? "", issue?.message ?? "is invalid");
}

/** Response headers as `writeAnswerFromHeaders` reads them. */
interface HeaderReader {
  get(name: string): string | null;
}

const headerReader = (headers: Record<string, string | string[] | undefined>): HeaderReader => ({
  get: (name) => {
    const value = headers[name.toLowerCase()];
    return value === undefined ? null : Array.isArray(value) ? value.join(", ") : value;
  },
});

const orgPath = (org: string) => `/v1/orgs/${encodeURIComponent(org)}`;
const userPath = (org: string, username: string) => `${orgPath(org)}/users/${encodeURIComponent(username)}`;
const servicePath = (org: string, name: string) => `${orgPath(org)}/services/${encodeURIComponent(name)}`;
const routePath = (org: string) => `/v1/balancer/${encodeURIComponent(org)}`;
const backendPath = (name: string) => `/v1/backends/${encodeURIComponent(name)}`;

const ownerHeader = (owner: string | undefined): Record<string, string> =>
  owner === undefined ? {} : { [OWNER_HEADER]: owner };

const forceQuery = (force: boolean): string => (force ? "?force=true" : "");

function toAgentError(endpoint: string, status: number, text: string): AgentError {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const body = apiErrorSchema.safeParse(parsed);
  if (!body.success)
    return new AgentError(endpoint, status, "http_error", `unexpected answer (HTTP ${status} http_error)`);
  const { code, message, details } = body.data.error;
  const detail = details.map((entry) => `${entry.path}: ${entry.message}`).join("; ");
  return new AgentError(
    endpoint,
    status,
    code,
    `${detail ? `${message} (${detail})` : message} (HTTP ${status} ${code})`,
  );
}

function describeNetworkError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const { code } = error as { code?: string };
  const cause = error.cause as { code?: string; message?: string } | undefined;
  const reason = (code?.startsWith("UND_") ? undefined : code) ?? cause?.code ?? cause?.message ?? error.message;
  return tlsAdvice(reason) ?? reason;
}
