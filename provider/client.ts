/**
 * The one HTTP client for hosting agents (API v1), shared by the resource providers, the sync
 * module and the `lbhosting` operator commands. Every call has a timeout; idempotent calls are
 * retried a bounded number of times on network failures and 502/503/504. Requests go through
 * undici's `request` on its keep-alive pool: a 1,000-user `pulumi up` makes thousands, and its
 * `fetch` layer cost the provider several times the CPU for the same requests.
 */
import {
  apiErrorSchema,
  normalizeEndpoint,
  type BalancerRoute,
  type BalancerStatus,
  type NodeInfo,
  type Change,
  type OrgSettingsInput,
  type OrgStatus,
  type PromoteBody,
  type ReplicaBody,
  type ReplicaChangesBody,
  type ServiceBody,
  type ServiceRecord,
  type Snapshot,
  type UserBody,
  type UserRecord,
} from "../wire";
import { OWNER_HEADER, type WriteAnswer, writeAnswerFromHeaders } from "../wire/write-answer";
import { request } from "undici";
import { DRAINING_ANSWER_TIMEOUT_MS } from "../wire/timeouts";

/** A user/service PUT's answer: the stored record, and what the agent said about the write. */
export interface WriteOutcome<T> {
  record: T;
  /** Undefined when the agent sent no write headers (an older agent). */
  answer?: WriteAnswer;
}

export interface ClientOptions {
  /** Per-request timeout. */
  timeoutMs?: number;
  /** Extra attempts after the first for retryable failures. */
  retries?: number;
}

const DEFAULT_TIMEOUT_MS = 15_000;
const DEFAULT_RETRIES = 2;
const RETRYABLE_STATUS = new Set([502, 503, 504]);

/** The agent answered with an error status. */
export class AgentError extends Error {
  constructor(
    readonly endpoint: string,
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(`${endpoint}: ${message} (HTTP ${status} ${code})`);
    this.name = "AgentError";
  }
}

/** The agent could not be reached (connection refused, DNS, timeout). */
export class AgentUnreachableError extends Error {
  constructor(
    readonly endpoint: string,
    reason: string,
  ) {
    super(`${endpoint} is unreachable: ${reason}`);
    this.name = "AgentUnreachableError";
  }
}

export const isNotFound = (error: unknown): boolean => error instanceof AgentError && error.status === 404;

export interface ChangesPage {
  generation: number;
  digest: string;
  epoch: number;
  changes: Change[];
}

/** An agent from before epochs sends none: its orgs are at epoch 0. */
const withEpoch = <T extends { epoch: number }>(value: T): T => ({ ...value, epoch: value.epoch ?? 0 });

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class AgentClient {
  readonly endpoint: string;
  private readonly timeoutMs: number;
  private readonly retries: number;

  constructor(
    endpoint: string,
    private readonly token: string,
    options: ClientOptions = {},
  ) {
    this.endpoint = normalizeEndpoint(endpoint);
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.retries = options.retries ?? DEFAULT_RETRIES;
  }

  health(): Promise<{ name: string; version: string }> {
    return this.request("GET", "/v1/health");
  }

  getOrg(org: string): Promise<OrgStatus> {
    return this.request<OrgStatus>("GET", orgPath(org)).then(withEpoch);
  }

  putOrg(org: string, settings: OrgSettingsInput, force = false): Promise<OrgStatus> {
    return this.request<OrgStatus>("PUT", orgPath(org) + forceQuery(force), settings).then(withEpoch);
  }

  deleteOrg(org: string, force = false): Promise<void> {
    return this.request("DELETE", orgPath(org) + forceQuery(force));
  }

  getUser(org: string, username: string): Promise<UserRecord> {
    return this.request("GET", `${orgPath(org)}/users/${encodeURIComponent(username)}`);
  }

  listUsers(org: string): Promise<UserRecord[]> {
    return this.request<{ users: UserRecord[] } | UserRecord[]>("GET", `${orgPath(org)}/users`).then((body) =>
      Array.isArray(body) ? body : body.users,
    );
  }

  /** With `owner`, the agent refuses (409 managed_elsewhere) to overwrite a user another owner manages. */
  async putUser(
    org: string,
    username: string,
    body: UserBody,
    force = false,
    owner?: string,
  ): Promise<WriteOutcome<UserRecord>> {
    const path = `${orgPath(org)}/users/${encodeURIComponent(username)}${forceQuery(force)}`;
    const { body: record, headers } = await this.send<UserRecord>("PUT", path, body, undefined, ownerHeader(owner));
    return { record, answer: writeAnswerFromHeaders(headers) };
  }

  async deleteUser(org: string, username: string, force = false): Promise<WriteAnswer | undefined> {
    const path = `${orgPath(org)}/users/${encodeURIComponent(username)}${forceQuery(force)}`;
    return writeAnswerFromHeaders((await this.send("DELETE", path)).headers);
  }

  getService(org: string, name: string): Promise<ServiceRecord> {
    return this.request("GET", `${orgPath(org)}/services/${encodeURIComponent(name)}`);
  }

  listServices(org: string): Promise<ServiceRecord[]> {
    return this.request<{ services: ServiceRecord[] } | ServiceRecord[]>("GET", `${orgPath(org)}/services`).then(
      (body) => (Array.isArray(body) ? body : body.services),
    );
  }

  /** With `owner`, the agent refuses (409 managed_elsewhere) to overwrite a service another owner manages. */
  async putService(
    org: string,
    name: string,
    body: ServiceBody,
    force = false,
    owner?: string,
  ): Promise<WriteOutcome<ServiceRecord>> {
    const path = `${orgPath(org)}/services/${encodeURIComponent(name)}${forceQuery(force)}`;
    const { body: record, headers } = await this.send<ServiceRecord>("PUT", path, body, undefined, ownerHeader(owner));
    return { record, answer: writeAnswerFromHeaders(headers) };
  }

  async deleteService(org: string, name: string, force = false): Promise<WriteAnswer | undefined> {
    const path = `${orgPath(org)}/services/${encodeURIComponent(name)}${forceQuery(force)}`;
    return writeAnswerFromHeaders((await this.send("DELETE", path)).headers);
  }

  snapshot(org: string): Promise<Snapshot> {
    return this.request<Snapshot>("GET", `${orgPath(org)}/snapshot`).then(withEpoch);
  }

  changesSince(org: string, generation: number): Promise<ChangesPage> {
    return this.request<ChangesPage>("GET", `${orgPath(org)}/changes?since=${generation}`).then(withEpoch);
  }

  putReplica(org: string, body: ReplicaBody): Promise<OrgStatus> {
    return this.request<OrgStatus>("PUT", `${orgPath(org)}/replica`, body).then(withEpoch);
  }

  applyReplicaChanges(org: string, body: ReplicaChangesBody): Promise<OrgStatus> {
    return this.request<OrgStatus>("POST", `${orgPath(org)}/replica/changes`, body).then(withEpoch);
  }

  /**
   * Removes the node's copy. With `epoch` (the org's current one), a former primary that still
   * holds the org at a lower epoch loses it too: fencing by removal.
   */
  deleteReplica(org: string, epoch?: number): Promise<void> {
    return this.request("DELETE", `${orgPath(org)}/replica${epoch === undefined ? "" : `?epoch=${epoch}`}`);
  }

  /** Makes the node's copy (at `generation`, `digest` as last seen) the org's primary at `epoch`. */
  promote(org: string, body: PromoteBody): Promise<OrgStatus> {
    return this.request<OrgStatus>("POST", `${orgPath(org)}/promote`, body).then(withEpoch);
  }

  nodeInfo(): Promise<NodeInfo> {
    return this.request("GET", "/v1/node");
  }

  getRoute(org: string): Promise<BalancerRoute> {
    return this.request("GET", `/v1/balancer/${encodeURIComponent(org)}`);
  }

  /** Answers once the load balancer runs the new route, nodes leaving it drained first (up to 30 s). */
  putRoute(org: string, route: BalancerRoute): Promise<BalancerRoute> {
    return this.request("PUT", `/v1/balancer/${encodeURIComponent(org)}`, route, DRAINING_ANSWER_TIMEOUT_MS);
  }

  deleteRoute(org: string): Promise<void> {
    return this.request("DELETE", `/v1/balancer/${encodeURIComponent(org)}`, undefined, DRAINING_ANSWER_TIMEOUT_MS);
  }

  /** How the load balancer sees each node of the org's route now (HAProxy's health and open connections). */
  balancerStatus(org: string): Promise<BalancerStatus> {
    return this.request("GET", `/v1/balancer/${encodeURIComponent(org)}/status`);
  }

  private async request<T>(method: string, path: string, body?: unknown, timeoutMs = this.timeoutMs): Promise<T> {
    return (await this.send<T>(method, path, body, timeoutMs)).body;
  }

  /** One request with a timeout; retried (bounded) on network failures and 502/503/504. */
  private async send<T>(
    method: string,
    path: string,
    body?: unknown,
    timeoutMs = this.timeoutMs,
    extraHeaders: Record<string, string> = {},
  ): Promise<{ body: T; headers: HeaderReader }> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    let lastError: Error = new AgentUnreachableError(this.endpoint, "no attempt made");
    for (let attempt = 0; attempt <= this.retries; attempt++) {
      if (attempt > 0) await sleep(200 * 3 ** (attempt - 1));
      const signal = AbortSignal.timeout(timeoutMs);
      let answer: { status: number; headers: HeaderReader; text: string };
      try {
        const response = await request(this.endpoint + path, {
          method: method as "GET" | "PUT" | "POST" | "DELETE",
          headers: {
            authorization: `Bearer ${this.token}`,
            ...(payload === undefined ? {} : { "content-type": "application/json" }),
            ...extraHeaders,
          },
          body: payload,
          signal,
        });
        answer = {
          status: response.statusCode,
          headers: headerReader(response.headers),
          text: await response.body.text(),
        };
      } catch (error) {
        const reason = signal.aborted ? `no answer within ${timeoutMs} ms` : describeNetworkError(error);
        lastError = new AgentUnreachableError(this.endpoint, reason);
        continue;
      }
      if (answer.status >= 200 && answer.status < 300) {
        return { body: (answer.text === "" ? undefined : JSON.parse(answer.text)) as T, headers: answer.headers };
      }
      lastError = toAgentError(this.endpoint, answer.status, answer.text);
      if (!RETRYABLE_STATUS.has(answer.status)) throw lastError;
    }
    throw lastError;
  }
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

function orgPath(org: string): string {
  return `/v1/orgs/${encodeURIComponent(org)}`;
}

const ownerHeader = (owner: string | undefined): Record<string, string> =>
  owner === undefined ? {} : { [OWNER_HEADER]: owner };

function forceQuery(force: boolean): string {
  return force ? "?force=true" : "";
}

function toAgentError(endpoint: string, status: number, text: string): AgentError {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const body = apiErrorSchema.safeParse(parsed);
  if (!body.success) return new AgentError(endpoint, status, "http_error", `unexpected answer`);
  const details = body.data.error.details.map((detail) => `${detail.path}: ${detail.message}`).join("; ");
  return new AgentError(
    endpoint,
    status,
    body.data.error.code,
    details ? `${body.data.error.message} (${details})` : body.data.error.message,
  );
}

function describeNetworkError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const { code } = error as { code?: string };
  const cause = error.cause as { code?: string; message?: string } | undefined;
  return (code?.startsWith("UND_") ? undefined : code) ?? cause?.code ?? cause?.message ?? error.message;
}
