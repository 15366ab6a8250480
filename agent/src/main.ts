/**
 * The hosting agent's HTTP server: `createAgent(options)` opens the store, re-renders the server
 * configuration from it, and returns a Fastify app serving API v1 (see api.ts for the routes).
 * This module owns HTTP concerns only — auth, validation, status codes, the error shape and
 * request logging; what an operation means lives in hosting.ts.
 */
import fs from "node:fs";
import type { AddressInfo } from "node:net";
import path from "node:path";
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { z } from "zod";
import {
  NODE_NAME,
  type NodeInfo,
  type PortRange,
  balancerRouteSchema,
  listenAddressSchema,
  managedBySchema,
  orgNameSchema,
  orgSettingsSchema,
  promoteBodySchema,
  replicaBodySchema,
  replicaChangesBodySchema,
  serviceBodySchema,
  serviceNameSchema,
  userBodySchema,
  usernameSchema,
  type BalancerDeleted,
  type Deleted,
  type Health,
  OWNER_HEADER,
  WRITE_HEADERS,
  encodeChange,
} from "../../wire";
import { bearerChecker, tokenProblem } from "./http/auth";
import { Balancer } from "./balancer/balancer";
import type { HaproxyBinary } from "./render/haproxy/control";
import { ContentRoot } from "./render/content";
import { ApiFailure, validationFailure } from "./errors";
import { DEFAULT_FTP_READONLY_IDS, type FtpIds, FtpFiles, servingIdsProblem } from "./render/ftp/accounts";
import { Hosting, type Written } from "./domain/hosting";
import {
  type ConnectionLimits,
  DEFAULT_CONNECTION_LIMITS,
  badUrlFailure,
  discardBody,
  fastifyServerOptions,
  frameworkFailure,
  limitsProblem,
  noRouteFailure,
  nodeServerOptions,
  parseJsonBody,
} from "./http/hardening";
import { type Logger, jsonLogger, loggedRoute } from "./log";
import { type NginxBinary, NginxSites } from "./render/nginx/sites";
import { loadNativeCrypt } from "./workers/native-crypt";
import { PasswordPool } from "./workers/password-pool";
import { ReloadDrain } from "./render/nginx/reload-drain";
import { Store } from "./store/store";
import { packageVersion } from "../../common/version";

/** Bodies of ordinary requests; larger ones get 413. */
export const BODY_LIMIT = 1024 * 1024;
/** Replica imports carry a whole org (a 1,000-user org is about 0.4 MiB), so they may be larger. */
export const DEFAULT_REPLICA_BODY_LIMIT = 64 * 1024 * 1024;
export const DEFAULT_CHANGE_LOG_LIMIT = 1000;

/** nginx `listen` values the agent renders: "PORT", "IPv4:PORT" or "[IPv6]:PORT". */
const HTTP_LISTEN = /^(?:(?:\d{1,3}\.){3}\d{1,3}:|\[[0-9a-fA-F:.]+\]:)?\d{1,5}$/;

export interface AgentOptions {
  /** Where the API listens; port 0 picks a free port (read the bound URL from `listen()`). */
  host: string;
  port: number;
  /** Folder for the SQLite database and generated FTP files. */
  dataDir: string;
  /** This server's name: the X-Served-By header of its sites and `GET /v1/health`. */
  name: string;
  /** The bearer token every request except health must carry. */
  token: string;
  tls?: { cert: Buffer; key: Buffer };
  /** Folder holding `<org>/...` content (the NAS mount). Default `<dataDir>/content`. */
  contentRoot?: string;
  /** Where site files are written. Default `<dataDir>/nginx`. */
  nginxConfDir?: string;
  /** An nginx binary to validate (`-t`) and reload (`-s reload`) with; without it files are only written. */
  nginx?: NginxBinary;
  /** nginx `listen` parameter for rendered sites, and HAProxy's web address on a load balancer. Default "80". */
  httpListen?: string;
  /** Where this node's FTP server listens ("host:port"); only reported by `GET /v1/node`. */
  ftpListen?: string;
  /** This node's FTP passive port range (pure-ftpd's -p); only reported by `GET /v1/node`. */
  ftpPassivePorts?: PortRange;
  /** HAProxy for the load-balancer role: validated with `-c`, reloaded and read through its master CLI. */
  haproxy?: HaproxyBinary;
  /** The HAProxy file the agent writes for its routes. Default `<dataDir>/haproxy/lbhosting.cfg`. */
  haproxyConf?: string;
  changeLogLimit?: number;
  replicaBodyLimit?: number;
  /** uid/gid for FTP accounts. Default: the agent process's own. */
  ftpIds?: FtpIds;
  /** uid/gid for accounts of read-only FTP services. Default 65534/65534 (nobody). */
  ftpReadonlyIds?: FtpIds;
  /** pure-ftpd's `pure-pw`: serve FTP accounts from `<dataDir>/ftp/pureftpd.pdb`; without it files only. */
  purePwBin?: string;
  /** Timeouts and the connection cap; unset fields take DEFAULT_CONNECTION_LIMITS. */
  limits?: Partial<ConnectionLimits>;
  logger?: Logger;
}

export interface Agent {
  readonly app: FastifyInstance;
  /** Start listening; resolves to the bound base URL, e.g. "http://127.0.1.2:41234". */
  listen(): Promise<string>;
  /** Stop accepting requests, finish open ones, close the database. */
  close(): Promise<void>;
}

const ftpWritableIds = (options: AgentOptions): FtpIds =>
  options.ftpIds ?? { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };

const connectionLimits = (options: AgentOptions): ConnectionLimits => ({
  ...DEFAULT_CONNECTION_LIMITS,
  ...Object.fromEntries(Object.entries(options.limits ?? {}).filter(([, value]) => value !== undefined)),
});

/** Options that cannot work, as a message for the operator, or undefined. */
export function optionProblem(options: AgentOptions): string | undefined {
  if (!NODE_NAME.test(options.name)) {
    return `agent name ${JSON.stringify(options.name)} must be 1-63 letters, digits, '.', '_' or '-' (give --name)`;
  }
  const token = tokenProblem(options.token);
  if (token) return `the agent token ${token}`;
  if (options.httpListen !== undefined && !HTTP_LISTEN.test(options.httpListen)) {
    return `--http-listen ${JSON.stringify(options.httpListen)} must be PORT, IPV4:PORT or [IPV6]:PORT`;
  }
  if (options.ftpListen !== undefined && !listenAddressSchema.safeParse(options.ftpListen).success) {
    return `--ftp-listen ${JSON.stringify(options.ftpListen)} must be HOST:PORT (an IPv4 address or DNS name)`;
  }
  if (
    options.changeLogLimit !== undefined &&
    !(Number.isInteger(options.changeLogLimit) && options.changeLogLimit > 0)
  ) {
    return "the change log limit must be a positive integer";
  }
  const limits = limitsProblem(connectionLimits(options));
  if (limits) return limits;
  if (options.purePwBin !== undefined) {
    return servingIdsProblem(ftpWritableIds(options), options.ftpReadonlyIds ?? DEFAULT_FTP_READONLY_IDS);
  }
  return undefined;
}

function parse<T>(schema: z.ZodType<T>, value: unknown, prefix?: string): T {
  const result = schema.safeParse(value);
  if (!result.success) throw validationFailure(result.error, prefix);
  return result.data;
}

const forceQuery = z.object({ force: z.enum(["true", "false"], "must be true or false").optional() });
const sinceQuery = z.object({
  since: z.string().regex(/^\d{1,15}$/, "must be a non-negative integer"),
});
const epochQuery = z.object({
  epoch: z
    .string()
    .regex(/^\d{1,15}$/, "must be a non-negative integer")
    .optional(),
});

/** A user/service write's answer: the record (PUT) or WriteResult (DELETE), with the write headers. */
function sendWritten<T>(reply: FastifyReply, written: Written<T>): FastifyReply {
  reply
    .code(written.created ? 201 : 200)
    .header(WRITE_HEADERS.generation, String(written.generation))
    .header(WRITE_HEADERS.digest, written.digest)
    .header(WRITE_HEADERS.changed, String(written.changed))
    .header(WRITE_HEADERS.epoch, String(written.epoch))
    .header(WRITE_HEADERS.secondaries, written.secondaries.join(","));
  const change = written.change && encodeChange(written.change);
  if (change) reply.header(WRITE_HEADERS.change, change);
  const { generation, digest, changed } = written;
  return reply.send(written.record ?? { generation, digest, changed });
}

export function createAgent(options: AgentOptions): Agent {
  const problem = optionProblem(options);
  if (problem) throw new Error(problem);
  const log = options.logger ?? jsonLogger();
  const warn = (msg: string, fields: Record<string, unknown>) => log("warn", msg, fields);

  fs.mkdirSync(options.dataDir, { recursive: true });
  const content = new ContentRoot(options.contentRoot ?? path.join(options.dataDir, "content"));
  const store = new Store(path.join(options.dataDir, "agent.db"));
  const sites = new NginxSites(options.nginxConfDir ?? path.join(options.dataDir, "nginx"), options.nginx, warn);
  const drain = new ReloadDrain(options.nginx, warn);
  const passwords = new PasswordPool();
  const nativeCrypt = loadNativeCrypt();
  if ("unavailable" in nativeCrypt) {
    warn("passwords are hashed in JavaScript, at ~7 times the CPU: the native crypt(3) binding is not built", {
      reason: nativeCrypt.unavailable,
    });
  }
  const hosting = new Hosting({
    store,
    content,
    sites,
    drain,
    passwords,
    ftp: new FtpFiles({
      dir: path.join(options.dataDir, "ftp"),
      content,
      writableIds: ftpWritableIds(options),
      readonlyIds: options.ftpReadonlyIds ?? DEFAULT_FTP_READONLY_IDS,
      purePw: options.purePwBin,
      warn,
    }),
    agentName: options.name,
    httpListen: options.httpListen ?? "80",
    changeLogLimit: options.changeLogLimit ?? DEFAULT_CHANGE_LOG_LIMIT,
    warn,
  });
  const balancer = new Balancer({
    store,
    confFile: options.haproxyConf ?? path.join(options.dataDir, "haproxy", "lbhosting.cfg"),
    haproxy: options.haproxy,
    agentName: options.name,
    // HAProxy binds a bare port on every address as ":PORT".
    httpListen: (options.httpListen ?? "80").replace(/^(\d+)$/, ":$1"),
    warn,
  });

  // HTTP hardening (agent/http.ts): timeouts, a connection cap, and framework errors in the API shape.
  const limits = connectionLimits(options);
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
  const authorized = bearerChecker(options.token);
  const health: Health = { name: options.name, version: packageVersion() };
  const node: NodeInfo = {
    ...health,
    // Without nginx this node renders configuration only: nothing serves it.
    httpListen: options.nginx ? (options.httpListen ?? "80") : null,
    ftpListen: options.ftpListen ?? null,
    ftpPassivePorts: options.ftpPassivePorts ?? null,
  };

  app.addHook("onRequest", async (request: FastifyRequest, reply: FastifyReply) => {
    if (closing) {
      reply.header("connection", "close");
      throw new ApiFailure(503, "agent_stopping", "the agent is stopping; retry on another node or once it is back");
    }
    if (request.routeOptions.url === "/v1/health") return; // GET and HEAD, the only open route
    if (!authorized(request.headers.authorization)) {
      reply.header("www-authenticate", 'Bearer realm="lbhosting"');
      throw new ApiFailure(401, "unauthorized", "missing or invalid bearer token");
    }
  });
  app.addHook("onResponse", async (request: FastifyRequest, reply: FastifyReply) => {
    log("info", "request", {
      method: request.method,
      route: loggedRoute(request.routeOptions.url, request.url),
      status: reply.statusCode,
      ms: Math.round(reply.elapsedTime * 10) / 10,
    });
  });
  app.setErrorHandler(async (error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const failure = frameworkFailure(error);
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

  type Params = Record<string, string | undefined>;
  const orgOf = (request: FastifyRequest) => parse(orgNameSchema, (request.params as Params).org, "org");
  const usernameOf = (request: FastifyRequest) =>
    parse(usernameSchema, (request.params as Params).username, "username");
  const serviceOf = (request: FastifyRequest) =>
    parse(serviceNameSchema, (request.params as Params).service, "service");
  const writeOptions = (request: FastifyRequest) => ({ force: parse(forceQuery, request.query).force === "true" });
  /** A user or service PUT's options: also the owner it may overwrite (OWNER_HEADER), when given. */
  const memberWriteOptions = (request: FastifyRequest) => {
    const owner = request.headers[OWNER_HEADER];
    return {
      ...writeOptions(request),
      ...(owner === undefined ? {} : { owner: parse(managedBySchema, owner, OWNER_HEADER) }),
    };
  };

  app.get("/v1/health", async () => health);
  app.get("/v1/orgs", async () => ({ orgs: hosting.listOrgs() }));

  app.put("/v1/orgs/:org", async (request, reply) => {
    const org = orgOf(request);
    const options = writeOptions(request);
    const body = parse(orgSettingsSchema, request.body ?? {});
    const { status, created } = await hosting.putOrg(org, body, options);
    return reply.code(created ? 201 : 200).send(status);
  });
  app.get("/v1/orgs/:org", async (request) => hosting.orgStatus(orgOf(request)));
  app.delete("/v1/orgs/:org", async (request): Promise<Deleted> => {
    const org = orgOf(request);
    await hosting.deleteOrg(org, writeOptions(request));
    return { name: org, deleted: true };
  });

  app.get("/v1/orgs/:org/users", async (request) => ({ users: hosting.listUsers(orgOf(request)) }));
  app.put("/v1/orgs/:org/users/:username", async (request, reply) => {
    const [org, username, options] = [orgOf(request), usernameOf(request), memberWriteOptions(request)];
    return sendWritten(reply, await hosting.putUser(org, username, parse(userBodySchema, request.body), options));
  });
  app.get("/v1/orgs/:org/users/:username", async (request) => hosting.getUser(orgOf(request), usernameOf(request)));
  app.delete("/v1/orgs/:org/users/:username", async (request, reply) =>
    sendWritten(reply, await hosting.deleteUser(orgOf(request), usernameOf(request), writeOptions(request))),
  );

  app.get("/v1/orgs/:org/services", async (request) => ({ services: hosting.listServices(orgOf(request)) }));
  app.put("/v1/orgs/:org/services/:service", async (request, reply) => {
    const [org, service, options] = [orgOf(request), serviceOf(request), memberWriteOptions(request)];
    return sendWritten(reply, await hosting.putService(org, service, parse(serviceBodySchema, request.body), options));
  });
  app.get("/v1/orgs/:org/services/:service", async (request) => hosting.getService(orgOf(request), serviceOf(request)));
  app.delete("/v1/orgs/:org/services/:service", async (request, reply) =>
    sendWritten(reply, await hosting.deleteService(orgOf(request), serviceOf(request), writeOptions(request))),
  );

  app.get("/v1/orgs/:org/snapshot", async (request) => hosting.snapshot(orgOf(request)));
  app.get("/v1/orgs/:org/changes", async (request) => {
    const org = orgOf(request);
    return hosting.changesSince(org, Number(parse(sinceQuery, request.query).since));
  });

  const replicaLimit = { bodyLimit: options.replicaBodyLimit ?? DEFAULT_REPLICA_BODY_LIMIT };
  app.put("/v1/orgs/:org/replica", replicaLimit, async (request) =>
    hosting.importReplica(orgOf(request), parse(replicaBodySchema, request.body)),
  );
  app.post("/v1/orgs/:org/replica/changes", replicaLimit, async (request) =>
    hosting.applyChanges(orgOf(request), parse(replicaChangesBodySchema, request.body)),
  );
  app.delete("/v1/orgs/:org/replica", async (request): Promise<Deleted> => {
    const org = orgOf(request);
    const { epoch } = parse(epochQuery, request.query);
    await hosting.deleteReplica(org, epoch === undefined ? undefined : Number(epoch));
    return { name: org, deleted: true };
  });
  app.post("/v1/orgs/:org/promote", async (request) =>
    hosting.promote(orgOf(request), parse(promoteBodySchema, request.body)),
  );

  app.get("/v1/node", async () => node);
  app.get("/v1/balancer", async () => ({ routes: balancer.list() }));
  app.put("/v1/balancer/:org", async (request, reply) => {
    const org = orgOf(request);
    const { record, created } = await balancer.put(org, parse(balancerRouteSchema, request.body));
    return reply.code(created ? 201 : 200).send(record);
  });
  app.get("/v1/balancer/:org", async (request) => balancer.get(orgOf(request)));
  app.get("/v1/balancer/:org/status", async (request) => balancer.status(orgOf(request)));
  app.delete("/v1/balancer/:org", async (request): Promise<BalancerDeleted> => {
    const org = orgOf(request);
    await balancer.delete(org);
    return { org, deleted: true };
  });

  const scheme = options.tls ? "https" : "http";
  return {
    app,
    async listen() {
      // Configuration is rendered from the database before the first request (heals a crash
      // between a commit and its render); a failure (pure-pw missing, ...) stops the start.
      await hosting.renderAll();
      void balancer.start(); // problems are logged; the balancer serializes its own changes
      await app.listen({ host: options.host, port: options.port });
      const address = app.server.address() as AddressInfo;
      const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
      return `${scheme}://${host}:${address.port}`;
    },
    async close() {
      closing = true;
      try {
        await app.close();
        await passwords.close();
      } finally {
        store.close();
      }
    },
  };
}
