/**
 * The agent's Fastify app: hardening (timeouts, a connection cap, framework errors in the API
 * shape, hardening.ts), bearer auth with each token's scope (auth.ts, scope.ts), request logging,
 * and the routes of API v1 (routes/). HTTP concerns only: what an operation means lives in domain/.
 */
import rateLimit from "@fastify/rate-limit";
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import type { NodeInfo } from "../../../wire";
import type { Balancer } from "../balancer/balancer";
import type { AcmeChallenges } from "../domain/acme-challenges";
import type { MemberWrites } from "../domain/members";
import type { OrgTokens } from "../domain/org-tokens";
import type { OrgWrites } from "../domain/orgs";
import type { Reads } from "../domain/reads";
import type { Replication } from "../domain/replication";
import type { AgentMetrics } from "../metrics/agent-metrics";
import { ApiFailure } from "../errors";
import { type Logger, loggedRoute } from "../log";
import { principalResolver } from "./auth";
import {
  type ConnectionLimits,
  badUrlFailure,
  discardBody,
  fastifyServerOptions,
  frameworkFailure,
  noRouteFailure,
  nodeServerOptions,
  parseJsonBody,
} from "./hardening";
import { acmeChallengeRoutes } from "./routes/acme-challenges";
import { backendRoutes } from "./routes/backends";
import { balancerRoutes } from "./routes/balancer";
import { metricsRoutes } from "./routes/metrics";
import { nodeRoutes } from "./routes/node";
import { orgRoutes } from "./routes/orgs";
import { replicaRoutes } from "./routes/replica";
import { serviceRoutes } from "./routes/services";
import { tokenRoutes } from "./routes/tokens";
import { userRoutes } from "./routes/users";
import { type Principal, mayUse } from "./scope";

declare module "fastify" {
  interface FastifyRequest {
    /** Who the request acts for; set by the authentication hook (null only on the open health route). */
    principal: Principal | null;
  }
}

/** Bodies of ordinary requests; larger ones get 413. */
const BODY_LIMIT = 1024 * 1024;

interface AppOptions {
  token: string;
  tls?: { cert: Buffer; key: Buffer };
  limits: ConnectionLimits;
  replicaBodyLimit: number;
  node: NodeInfo;
  log: Logger;
  reads: Reads;
  orgs: OrgWrites;
  members: MemberWrites;
  replication: Replication;
  orgTokens: OrgTokens;
  balancer: Balancer;
  acmeChallenges: AcmeChallenges;
  metrics: Pick<AgentMetrics, "request" | "exposition">;
}

interface AgentApp {
  readonly app: FastifyInstance;
  /** From now on every request gets 503 agent_stopping (and its connection closed). */
  stopAccepting(): void;
}

export function buildApp(options: AppOptions): AgentApp {
  const { limits, log } = options;
  const app = Fastify({
    logger: false,
    bodyLimit: BODY_LIMIT,
    ...fastifyServerOptions(limits),
    // Errors raised before routing (a malformed %-escape in the path) get the API's error shape too.
    frameworkErrors: (_error: FastifyError, _request: FastifyRequest, reply: FastifyReply) => {
      void reply.code(400).send(badUrlFailure().toBody());
    },
    ...(options.tls
      ? { https: { cert: options.tls.cert, key: options.tls.key, ...nodeServerOptions(limits) } }
      : { http: nodeServerOptions(limits) }),
  }) as unknown as FastifyInstance; // the https variant differs only in its raw server type
  app.server.maxConnections = limits.maxConnections;
  app.removeContentTypeParser("application/json");
  app.addContentTypeParser("application/json", { parseAs: "buffer" }, (_request, body, done) => {
    try {
      done(null, parseJsonBody(body as Buffer));
    } catch (error) {
      done(error as Error, undefined);
    }
  });

  let closing = false;
  const principalOf = principalResolver(options.token, (token) => options.orgTokens.orgOf(token));
  app.decorateRequest("principal", null);
  // Failed authentications are counted per client address (authorized requests never are): a
  // token cannot be guessed at network speed, and a client that keeps failing gets 429.
  void app.register(rateLimit, {
    global: false,
    max: limits.authFailuresPerMinute,
    timeWindow: 60_000,
  });
  let failedAuthentication: ReturnType<FastifyInstance["createRateLimit"]> | undefined;
  app.addHook("onRequest", async (request: FastifyRequest, reply: FastifyReply) => {
    if (closing) {
      reply.header("connection", "close");
      throw new ApiFailure(503, "agent_stopping", "the agent is stopping; retry on another node or once it is back");
    }
    if (request.routeOptions.url === "/v1/health") return; // GET and HEAD, the only open route
    const principal = principalOf(request.headers.authorization);
    if (!principal) {
      failedAuthentication ??= app.createRateLimit();
      const limit = await failedAuthentication(request);
      if (!limit.isAllowed && limit.isExceeded) {
        reply.header("retry-after", String(limit.ttlInSeconds));
        throw new ApiFailure(
          429,
          "too_many_failures",
          "too many failed authentications from this address; retry later",
        );
      }
      log("warn", "authentication failed", {
        client: request.ip,
        route: loggedRoute(request.routeOptions.url, request.url),
      });
      reply.header("www-authenticate", 'Bearer realm="lbhosting"');
      throw new ApiFailure(401, "unauthorized", "missing or invalid bearer token");
    }
    request.principal = principal;
    const route = request.routeOptions.url;
    if (!mayUse(principal, { method: request.method, route, params: request.params })) {
      log("warn", "request forbidden", { client: request.ip, route: loggedRoute(route, request.url) });
      throw new ApiFailure(403, "forbidden", "this token does not give access to this route or organization");
    }
  });
  app.addHook("onResponse", async (request: FastifyRequest, reply: FastifyReply) => {
    options.metrics.request({
      method: request.method,
      route: request.routeOptions.url ?? "(no route)",
      status: reply.statusCode,
      seconds: reply.elapsedTime / 1000,
      contentLength: request.headers["content-length"],
    });
    log("info", "request", {
      method: request.method,
      route: loggedRoute(request.routeOptions.url, request.url),
      status: reply.statusCode,
      ms: Math.round(reply.elapsedTime * 10) / 10,
    });
  });
  app.setErrorHandler(async (error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const failure = frameworkFailure(error, options.node.name);
    if (failure.status >= 500) {
      const route = loggedRoute(request.routeOptions.url, request.url);
      log("error", "request failed", { method: request.method, route, error: error.message });
    }
    if (failure.status === 413) await discardBody(request.raw);
    return reply.code(failure.status).send(failure.toBody());
  });
  app.setNotFoundHandler((request: FastifyRequest, reply: FastifyReply) =>
    reply.code(404).send(noRouteFailure(request.method).toBody()),
  );

  nodeRoutes(app, options.node);
  orgRoutes(app, options.reads, options.orgs);
  tokenRoutes(app, options.orgTokens);
  userRoutes(app, options.reads, options.members);
  serviceRoutes(app, options.reads, options.members);
  acmeChallengeRoutes(app, options.acmeChallenges);
  replicaRoutes(app, options.replication, options.replicaBodyLimit);
  balancerRoutes(app, options.balancer);
  backendRoutes(app, options.balancer);
  metricsRoutes(app, options.metrics);
  return {
    app,
    stopAccepting: () => {
      closing = true;
    },
  };
}
