/**
 * Agent credentials for the dynamic provider. They come from stack config through `configure`
 * (`lbhosting:token`, and `lbhosting:tokens`: a JSON object of endpoint → token; the agents' private
 * CA, `lbhosting:caCertificate`, is trusted with them: trust.ts) or from the
 * `LBHOSTING_TOKEN` environment variable — never from the program, so they are never captured in
 * the serialized provider or written to state. One Credentials object per provider process
 * (provider/context.ts); it hands out one shared client per endpoint.
 */
import { normalizeEndpoint } from "../wire";
import { AgentClient } from "./client";
import { EndpointHealth } from "./endpoint-health";
import { trustAcmeCas } from "./acme";
import { caCertificates } from "./trust";

interface ConfigSource {
  get(key: string): string | undefined;
}

const TOKENS_SHAPE = "lbhosting:tokens must be a JSON object mapping agent URLs to tokens";

export class Credentials {
  private defaultToken: string | undefined;
  private endpointTokens = new Map<string, string>();
  private timeoutMs: number | undefined;
  private ca: string[] | undefined;
  private readonly clients = new Map<string, AgentClient>();
  /** Endpoints the stack's resources name (inputs and state), kept for the whole process. */
  private readonly named = new Set<string>();

  /**
   * `environmentToken`: the token when config gives none (LBHOSTING_TOKEN, read when a client is
   * made). `health`: the silent endpoints, remembered across `configure` for the whole process.
   */
  constructor(
    private readonly environmentToken: () => string | undefined = () => process.env.LBHOSTING_TOKEN,
    private readonly health = new EndpointHealth(),
  ) {}

  /** Called by every resource provider's `configure`; the last call wins (they read the same config). */
  configure(config: ConfigSource): void {
    this.defaultToken = config.get("lbhosting:token") || undefined;
    this.endpointTokens = new Map();
    const perEndpoint = config.get("lbhosting:tokens");
    if (perEndpoint) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(perEndpoint);
      } catch {
        throw new Error(TOKENS_SHAPE);
      }
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error(TOKENS_SHAPE);
      for (const [endpoint, token] of Object.entries(parsed)) {
        if (typeof token !== "string") throw new Error(`lbhosting:tokens: the token for ${endpoint} must be a string`);
        this.endpointTokens.set(normalizeEndpoint(endpoint), token);
      }
    }
    const timeout = config.get("lbhosting:timeoutMs");
    if (timeout && !/^[1-9]\d{0,8}$/.test(timeout)) {
      throw new Error(`lbhosting:timeoutMs must be a positive whole number of milliseconds, not "${timeout}"`);
    }
    this.timeoutMs = timeout ? Number(timeout) : undefined;
    const ca = config.get("lbhosting:caCertificate");
    this.ca = ca ? caCertificates(ca, "lbhosting:caCertificate") : undefined;
    // A private ACME directory's HTTPS (Pebble's in the tests) is trusted through its own CA.
    const acmeCa = config.get("lbhosting:acmeCaCertificate");
    trustAcmeCas(acmeCa ? caCertificates(acmeCa, "lbhosting:acmeCaCertificate") : undefined);
    this.clients.clear();
  }

  /** Notes endpoints the stack names: a resource's inputs or state (its primary, secondaries, load balancer). */
  name(endpoints: Iterable<string | undefined>): void {
    for (const endpoint of endpoints) if (endpoint) this.named.add(normalizeEndpoint(endpoint));
  }

  /**
   * Whether the stack names an endpoint (a resource input, or a key of lbhosting:tokens): the only
   * endpoints a sync may send a token to. A secondary only an agent's record lists is not one.
   */
  readonly isNamed = (endpoint: string): boolean => {
    const key = normalizeEndpoint(endpoint);
    return this.named.has(key) || this.endpointTokens.has(key);
  };

  /** The shared client for an agent endpoint. */
  clientFor(endpoint: string): AgentClient {
    const key = normalizeEndpoint(endpoint);
    let client = this.clients.get(key);
    if (!client) {
      client = new AgentClient(key, this.tokenFor(key), {
        timeoutMs: this.timeoutMs,
        health: this.health,
        ca: this.ca,
      });
      this.clients.set(key, client);
    }
    return client;
  }

  private tokenFor(endpoint: string): string {
    const token = this.endpointTokens.get(endpoint) ?? this.defaultToken ?? this.environmentToken();
    if (!token) {
      throw new Error(
        `no agent token for ${endpoint}: set it with 'pulumi config set --secret lbhosting:token <token>' ` +
          `(or per endpoint in lbhosting:tokens), or export LBHOSTING_TOKEN`,
      );
    }
    return token;
  }
}
