/**
 * The hosting agent's composition root: `createAgent(options)` opens the store, builds the
 * renderers, the write pipeline, the domain rules and the HTTP app from them, and on `listen()`
 * re-renders the server configuration from the database before serving API v1.
 */
import fs from "node:fs";
import type { AddressInfo } from "node:net";
import path from "node:path";
import type { FastifyInstance } from "fastify";
import type { NodeInfo } from "../../wire";
import { packageVersion } from "../../common/version";
import { Balancer } from "./balancer/balancer";
import { ChangeLog } from "./domain/change-log";
import { MemberWrites } from "./domain/members";
import { OrgTokens } from "./domain/org-tokens";
import { OrgWrites } from "./domain/orgs";
import { Reads } from "./domain/reads";
import { Replication } from "./domain/replication";
import { assignMissingUnixIds } from "./domain/unix-ids";
import { AcmeChallenges } from "./domain/acme-challenges";
import { buildApp } from "./http/app";
import { jsonLogger } from "./log";
import { AgentMetrics } from "./metrics/agent-metrics";
import { type AgentOptions, agentSettings, optionProblem } from "./options";
import { Rendering } from "./pipeline/render";
import { WritePipeline } from "./pipeline/writes";
import { VerifiedFolders } from "./pipeline/verified-folders";
import { ContentRoot } from "./render/content";
import { FtpFiles } from "./render/ftp/accounts";
import { FtpAuthServer } from "./render/ftp/auth-server";
import { ReloadLive } from "./render/nginx/reload-live";
import { NginxSites } from "./render/nginx/sites";
import { Store } from "./store/store";
import { loadNativeCrypt } from "./workers/native-crypt";
import { PasswordPool } from "./workers/password-pool";

/**
 * How often a website's missing check file is tried again: once its document root exists, the
 * node enters the load balancer's rotation within this (plus HAProxy's 2 passing checks).
 */
const MISSING_CHECK_RETRY_MS = 5_000;
const NOGROUP = 65534;
/**
 * With extauth, how stale the fallback PDB may be (pure-ftpd reads it only while the agent is
 * down): every FTP change within it shares one build, and no write waits for one.
 */
const FTP_FALLBACK_DELAY_MS = 2_000;

export type { AgentOptions } from "./options";

/** The extauth socket of an agent with `--pure-pw-bin`: `pure-ftpd -l extauth:<it> -l puredb:<pdb>`. */
export const ftpAuthSocketOf = (dataDir: string): string => path.join(dataDir, "run", "ftp-auth.sock");

export interface Agent {
  readonly app: FastifyInstance;
  /** Start listening; resolves to the bound base URL, e.g. "http://127.0.1.2:41234". */
  listen(): Promise<string>;
  /** Stop accepting requests, finish open ones, close the database. */
  close(): Promise<void>;
}

export function createAgent(options: AgentOptions): Agent {
  const problem = optionProblem(options);
  if (problem) throw new Error(problem);
  const settings = agentSettings(options);
  const log = options.logger ?? jsonLogger();
  const warn = (msg: string, fields: Record<string, unknown>) => log("warn", msg, fields);

  const metrics = new AgentMetrics();
  // The data folder holds the database (every org's password hashes), the FTP accounts and the
  // agent's configuration files: the agent's alone, whatever the umask or an older agent left.
  fs.mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
  fs.chmodSync(options.dataDir, 0o700);
  const content = new ContentRoot(options.contentRoot ?? path.join(options.dataDir, "content"), settings.webGid);
  const store = new Store(path.join(options.dataDir, "agent.db"));
  const folders = new VerifiedFolders(content, store, content.ownsFolders);
  const assigned = assignMissingUnixIds(store, settings.orgIdRange);
  if (assigned.length > 0) log("info", "organizations given their Unix ids", { orgs: assigned.length });
  const sites = new NginxSites(
    options.nginxConfDir ?? path.join(options.dataDir, "nginx"),
    { agentName: options.name, listen: settings.httpListen, httpsListen: settings.httpsListen },
    options.nginx,
    warn,
    metrics.serverSteps("nginx"),
  );
  const reloads = new ReloadLive(options.nginx, warn, metrics.serverSteps("nginx"));
  const passwords = new PasswordPool();
  const nativeCrypt = loadNativeCrypt();
  if ("unavailable" in nativeCrypt) {
    warn("passwords are hashed in JavaScript, at ~7 times the CPU: the native crypt(3) binding is not built", {
      reason: nativeCrypt.unavailable,
    });
  }
  const ftp = new FtpFiles({
    dir: path.join(options.dataDir, "ftp"),
    content: folders,
    // Without a web group nothing serves the accounts: nogroup keeps them from any group's files.
    readonlyIds: { uid: settings.ftpReadonlyUid, gid: settings.webGid ?? NOGROUP },
    purePw: options.purePwBin,
    warn,
    report: metrics.serverSteps("ftp"),
    // A node with pure-ftpd (pure-pw) answers its logins itself (extauth); the PDB is the fallback.
    publishDelayMs: options.purePwBin === undefined ? undefined : FTP_FALLBACK_DELAY_MS,
  });
  const ftpAuth =
    options.purePwBin === undefined
      ? undefined
      : new FtpAuthServer({
          socket: ftpAuthSocketOf(options.dataDir),
          account: (login) => ftp.account(login),
          verify: (password, hash) => passwords.verify(password, hash),
          warn,
        });
  const rendering = new Rendering({
    store,
    sites,
    reloads,
    ftp,
    content: folders,
    // Logins are answered by the agent once the start has rendered every org's accounts.
    accountsReady: async () => ftpAuth?.listen(),
    warn,
  });
  const queue = new WritePipeline({
    store,
    sites,
    reloads,
    rendering,
    onCommit: (kind, writes) => metrics.writeBatch(kind, writes),
  });
  const changeLog = new ChangeLog(store, queue, settings.changeLogLimit);
  const balancer = new Balancer({
    store,
    confFile: options.haproxyConf ?? path.join(options.dataDir, "haproxy", "lbhosting.cfg"),
    haproxy: options.haproxy,
    agentName: options.name,
    // HAProxy binds a bare port on every address as ":PORT".
    httpListen: settings.httpListen.replace(/^(\d+)$/, ":$1"),
    httpsListen: settings.httpsListen.replace(/^(\d+)$/, ":$1"),
    warn,
    report: metrics.serverSteps("haproxy"),
  });
  metrics.watch({ held: () => store.held(), passwords, balancer });
  const node: NodeInfo = {
    name: options.name,
    version: packageVersion(),
    // Without nginx this node renders configuration only: nothing serves it.
    httpListen: options.nginx ? settings.httpListen : null,
    httpsListen: options.nginx ? settings.httpsListen : null,
    ftpListen: options.ftpListen ?? null,
    ftpPassivePorts: options.ftpPassivePorts ?? null,
    ftpMaxSessions: options.ftpMaxSessions ?? null,
    ftpTls: options.ftpTls ?? null,
  };
  const { app, stopAccepting } = buildApp({
    token: options.token,
    tls: options.tls,
    limits: settings.limits,
    replicaBodyLimit: settings.replicaBodyLimit,
    node,
    log,
    reads: new Reads(store),
    orgs: new OrgWrites(store, queue, changeLog, settings.orgIdRange),
    members: new MemberWrites({ store, queue, log: changeLog, passwords, content }),
    replication: new Replication(store, queue, changeLog, settings.orgIdRange),
    orgTokens: new OrgTokens(store),
    balancer,
    acmeChallenges: new AcmeChallenges(store, folders),
    metrics,
  });

  const scheme = options.tls ? "https" : "http";
  let checkRetries: NodeJS.Timeout | undefined;
  let ftpStart: Promise<void> | undefined;
  return {
    app,
    async listen() {
      // Sites are rendered from the database before the first request (heals a crash between a
      // commit and its render). FTP accounts follow in the write pipeline's first FTP round while
      // requests are answered (a write's round runs after it): the extauth socket listens once they
      // are all rendered, and pure-ftpd retries it (10 × 1 s) before it asks the PDB.
      await rendering.renderSites();
      const started = performance.now();
      ftpStart = queue.startFtp().then(
        () => log("info", "ftp accounts ready", { ms: Math.round(performance.now() - started) }),
        (error: Error) => log("error", "ftp accounts not ready on start", { reason: error.message }),
      );
      checkRetries = setInterval(() => void rendering.retryMissingChecks(), MISSING_CHECK_RETRY_MS);
      checkRetries.unref();
      void balancer.start(); // problems are logged; the balancer serializes its own changes
      await app.listen({ host: options.host, port: options.port });
      const address = app.server.address() as AddressInfo;
      const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
      return `${scheme}://${host}:${address.port}`;
    },
    async close() {
      clearInterval(checkRetries);
      stopAccepting();
      try {
        await app.close();
        await ftpStart;
        // The fallback PDB gets every change before pure-ftpd has to fall back to it.
        await ftp.flush();
        await ftpAuth?.close();
        await passwords.close();
      } finally {
        store.close();
      }
    },
  };
}
