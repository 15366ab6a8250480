/**
 * Who a request acts for, and what that principal may reach. The node's admin token reaches
 * everything; an organization token (domain/org-tokens.ts) reaches only its own org on this node:
 * its users, services, status, snapshots and replication, and on a load balancer its route.
 * Decided from the matched route's pattern and its `:org` parameter, before any handler runs.
 */
export type Principal = { kind: "admin" } | { kind: "org"; org: string };

/** Routes any org token may read: the node itself, and the org list (http/routes/orgs.ts shows it only its own). */
const READABLE_BY_ORGS = new Set(["/v1/health", "/v1/node", "/v1/orgs"]);

/** Routes an org token may use when their `:org` is its own org. */
const OWN_ORG_ROUTES = new Set([
  "/v1/orgs/:org",
  "/v1/orgs/:org/users",
  "/v1/orgs/:org/users/:username",
  "/v1/orgs/:org/services",
  "/v1/orgs/:org/services/:service",
  "/v1/orgs/:org/services/:service/acme-challenges/:token",
  "/v1/orgs/:org/snapshot",
  "/v1/orgs/:org/changes",
  "/v1/orgs/:org/replica",
  "/v1/orgs/:org/replica/changes",
  "/v1/orgs/:org/promote",
  "/v1/balancer/:org",
  "/v1/balancer/:org/status",
]);

export interface ScopedRequest {
  method: string;
  /** The matched route's pattern (`request.routeOptions.url`); undefined when no route matched. */
  route: string | undefined;
  params: unknown;
}

/**
 * Whether `principal` may make `request`. Everything not listed above is the admin's: the tokens
 * routes, registered backends, the list of every route on a load balancer, metrics.
 */
export function mayUse(principal: Principal, request: ScopedRequest): boolean {
  if (principal.kind === "admin") return true;
  // No route matched: the 404 that follows names nothing.
  if (request.route === undefined) return true;
  if (READABLE_BY_ORGS.has(request.route)) return request.method === "GET" || request.method === "HEAD";
  if (!OWN_ORG_ROUTES.has(request.route)) return false;
  return (request.params as { org?: unknown } | undefined)?.org === principal.org;
}
