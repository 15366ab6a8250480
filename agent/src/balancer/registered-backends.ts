/**
 * The rules of the nodes an admin registers with a load balancer: which addresses a node may be
 * registered at, and whether a route's backends are registered nodes at their registered
 * addresses (so whoever may put an org's route, an org token included, cannot point the load
 * balancer at an address of their choosing). Pure: the Balancer applies them.
 */
import type { BalancerBackend, BalancerRoute, RegisteredBackend } from "../../../wire";
import { ApiFailure } from "../errors";

/** Where this agent's own API listens, as the registration check compares it. */
export interface ApiAddress {
  host: string;
  port: number;
}

const ADDRESS_FIELDS = ["http", "https", "ftp"] as const;
const WILDCARD_HOSTS = new Set(["0.0.0.0", "::", ""]);

/** Why a load balancer must not forward to `address` ("host:port"), or undefined. */
function forbiddenAddress(address: string, api: ApiAddress | undefined): string | undefined {
  const [host, port] = address.split(":");
  const octets = host.split(".").map(Number);
  const ipv4 = octets.length === 4 && octets.every((octet) => Number.isInteger(octet));
  if (ipv4 && octets[0] === 169 && octets[1] === 254) {
    return "must not be link-local (169.254.0.0/16 holds cloud metadata services)";
  }
  if (ipv4 && octets[0] === 0) return "must not be 0.0.0.0 (no host)";
  const ownHost = api && (host === api.host || host === "localhost" || WILDCARD_HOSTS.has(api.host));
  if (api && ownHost && Number(port) === api.port) return "must not be this agent's own API address";
  return undefined;
}

/** 400 naming each address field of `backend` that points where a load balancer must not forward. */
export function checkRegistrable(backend: RegisteredBackend, api: ApiAddress | undefined): void {
  const details = ADDRESS_FIELDS.flatMap((field) => {
    const address = backend[field];
    const problem = address === undefined ? undefined : forbiddenAddress(address, api);
    return problem ? [{ path: field, message: problem }] : [];
  });
  if (details.length === 0) return;
  const summary = details.map((detail) => `${detail.path}: ${detail.message}`).join("; ");
  throw new ApiFailure(400, "validation_failed", `invalid request: ${summary}`, details);
}

/** A backend's addresses as they are registered: everything but its name and its weight. */
function addressesOf(backend: BalancerBackend): RegisteredBackend {
  const addresses: RegisteredBackend = {};
  if (backend.http !== undefined) addresses.http = backend.http;
  if (backend.https !== undefined) addresses.https = backend.https;
  if (backend.ftp !== undefined) addresses.ftp = backend.ftp;
  if (backend.passivePorts !== undefined) addresses.passivePorts = backend.passivePorts;
  if (backend.maxSessions !== undefined) addresses.maxSessions = backend.maxSessions;
  return addresses;
}

/**
 * Whether a route's backend uses a node's registered addresses: each the same, except that a route
 * of an org without certificates leaves out the node's HTTPS address (it sends it no HTTPS).
 */
const sameAddresses = (registered: RegisteredBackend, routed: RegisteredBackend): boolean =>
  (routed.https === undefined || registered.https === routed.https) && sameOtherAddresses(registered, routed);

const sameOtherAddresses = (a: RegisteredBackend, b: RegisteredBackend): boolean =>
  a.http === b.http &&
  a.ftp === b.ftp &&
  a.passivePorts?.[0] === b.passivePorts?.[0] &&
  a.passivePorts?.[1] === b.passivePorts?.[1] &&
  a.maxSessions === b.maxSessions;

/**
 * 422 `backend_not_registered` for the first backend of `route` that is not a registered node at
 * exactly its registered addresses. The message names that backend only: nothing of what is
 * registered, which may be another tenant's node.
 */
export function checkRegistered(route: BalancerRoute, registered: (name: string) => RegisteredBackend | undefined) {
  const index = route.backends.findIndex((backend) => {
    const known = registered(backend.name);
    return known === undefined || !sameAddresses(known, addressesOf(backend));
  });
  if (index < 0) return;
  const { name } = route.backends[index];
  const message =
    `backend "${name}" is not a node registered with this load balancer at these addresses: ` +
    `an administrator must register it (PUT /v1/backends/${name} with the node's addresses, as its GET /v1/node reports them)`;
  throw new ApiFailure(422, "backend_not_registered", message, [
    { path: `backends.${index}`, message: "is not a registered node at these addresses" },
  ]);
}
