/**
 * What can go wrong asking an agent, as types that carry their parts (endpoint, status, code,
 * reason): callers decide on the fields, never by taking a message apart.
 */

/** The agent answered with an error status. */
export class AgentError extends Error {
  constructor(
    readonly endpoint: string,
    readonly status: number,
    readonly code: string,
    /** What the agent said, without the endpoint: `<message> (HTTP <status> <code>)`. */
    readonly reason: string,
  ) {
    super(`${endpoint}: ${reason}`);
    this.name = "AgentError";
  }
}

/** The agent could not be reached (connection refused, DNS, timeout). */
export class AgentUnreachableError extends Error {
  constructor(
    readonly endpoint: string,
    /** Why, without the endpoint: an error code, or how long the client waited. */
    readonly reason: string,
  ) {
    super(`${endpoint} is unreachable: ${reason}`);
    this.name = "AgentUnreachableError";
  }
}

/** The agent answered 2xx with a body that is not what the wire contract says (wire/answers.ts). */
export class AgentProtocolError extends Error {
  /** Without the endpoint, as `AgentError.reason`. */
  readonly reason: string;

  constructor(
    readonly endpoint: string,
    /** The request answered, e.g. `GET /v1/orgs/acme`. */
    readonly request: string,
    /** The offending field's path in the answer ("" for the whole body). */
    readonly field: string,
    problem: string,
  ) {
    const reason = `malformed answer to ${request}: ${field || "the body"} ${problem}`;
    super(`${endpoint}: ${reason}`);
    this.name = "AgentProtocolError";
    this.reason = reason;
  }
}

const isNotFound = (error: unknown): boolean => error instanceof AgentError && error.status === 404;

/** The one place a 404 becomes undefined: the call's result, or undefined when the agent holds no such object. */
export async function unlessNotFound<T>(call: Promise<T>): Promise<T | undefined> {
  try {
    return await call;
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

/** Why a request failed, without the endpoint when the error names one (a sync report names it itself). */
export function reasonOf(error: unknown): string {
  if (error instanceof AgentError || error instanceof AgentUnreachableError || error instanceof AgentProtocolError) {
    return error.reason;
  }
  return error instanceof Error ? error.message : String(error);
}
