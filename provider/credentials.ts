/**
 * Agent credentials for the dynamic provider. They come from stack config through `configure`
 * (`lbhosting:token`, and `lbhosting:tokens`: a JSON object of endpoint → token) or from the
 * `LBHOSTING_TOKEN` environment variable — never from the program, so they are never captured in
 * the serialized provider or written to state.
 */
import { normalizeEndpoint } from "../wire";
import { AgentClient } from "./client";

interface ConfigSource {
  get(key: string): string | undefined;
}

let defaultToken: string | undefined;
let endpointTokens = new Map<string, string>();
let timeoutMs: number | undefined;
const clients = new Map<string, AgentClient>();

/** Called by every resource provider's `configure`; the last call wins (they read the same config). */
export function configureCredentials(config: ConfigSource): void {
  defaultToken = config.get("lbhosting:token") || undefined;
  endpointTokens = new Map();
  const perEndpoint = config.get("lbhosting:tokens");
  if (perEndpoint) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(perEndpoint);
    } catch {
      throw new Error("lbhosting:tokens must be a JSON object mapping agent URLs to tokens");
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      throw new Error("lbhosting:tokens must be a JSON object mapping agent URLs to tokens");
    }
    for (const [endpoint, token] of Object.entries(parsed)) {
      if (typeof token !== "string") throw new Error(`lbhosting:tokens: the token for ${endpoint} must be a string`);
      endpointTokens.set(normalizeEndpoint(endpoint), token);
    }
  }
  const timeout = config.get("lbhosting:timeoutMs");
  timeoutMs = timeout ? Number(timeout) : undefined;
  clients.clear();
}

function tokenFor(endpoint: string): string {
  const token = endpointTokens.get(endpoint) ?? defaultToken ?? process.env.LBHOSTING_TOKEN;
  if (!token) {
    throw new Error(
      `no agent token for ${endpoint}: set it with 'pulumi config set --secret lbhosting:token <token>' ` +
        `(or per endpoint in lbhosting:tokens), or export LBHOSTING_TOKEN`,
    );
  }
  return token;
}

/** The shared client for an agent endpoint. */
export function clientFor(endpoint: string): AgentClient {
  const key = normalizeEndpoint(endpoint);
  let client = clients.get(key);
  if (!client) {
    client = new AgentClient(key, tokenFor(key), { timeoutMs });
    clients.set(key, client);
  }
  return client;
}
