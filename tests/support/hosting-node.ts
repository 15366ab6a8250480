/**
 * A hosting node on one loopback address, as the demo and the serving tests need it: the agent,
 * plus a real nginx (own prefix, config and pid file) serving the agent's rendered sites when
 * nginx is installed, and a real pure-ftpd serving its FTP accounts when given. Nodes usually
 * share one content folder, standing in for the NAS. With `haproxyBin` the node is a load balancer
 * instead: the agent drives a real HAProxy on the same address.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { startAgentProcess, type AgentProcess } from "./agent-process";
import type { AgentCertificate } from "./agent-tls";
import { startNginx, type NginxProcess } from "./nginx";
import { freePort } from "./ports";
import type { FtpSession } from "./ftp-client";
import { startHaproxy, type HaproxyProcess } from "./haproxy";
import {
  ftpAuthOf,
  passivePortsOf,
  startPureFtpd,
  type FtpBinaries,
  type FtpTlsSetup,
  type PureFtpdProcess,
} from "./pureftpd";

export interface HostingNodeOptions {
  host: string;
  name: string;
  token: string;
  /** The shared content folder (the NAS). */
  contentRoot: string;
  /** nginx binary; without it the agent runs config-only (the embedded default). */
  nginxBin?: string;
  /** pure-ftpd and pure-pw; without them FTP accounts are only rendered to files. */
  ftp?: FtpBinaries;
  /** The address pure-ftpd advertises for passive mode (the load balancer's FTP host); default `host`. */
  ftpPassiveAddress?: string;
  /** pure-ftpd's session limit (-c), given to the agent as --ftp-max-sessions too; default: pure-ftpd's. */
  ftpMaxSessions?: number;
  /** FTPS: pure-ftpd's `-Y` and certificate, and the agent's `--ftp-tls`; default: cleartext only. */
  ftpTls?: FtpTlsSetup;
  /** A load balancer: HAProxy on `host`, driven by the agent (no nginx, no FTP of its own). */
  haproxyBin?: string;
  /** The agent's API over HTTPS with this certificate (`--tls-cert`/`--tls-key`): its `url` is then https://. */
  agentTls?: AgentCertificate;
}

export interface HostingNode {
  readonly name: string;
  readonly agent: AgentProcess;
  readonly nginx?: NginxProcess;
  readonly ftp?: PureFtpdProcess;
  readonly haproxy?: HaproxyProcess;
  /** The agent's API URL. */
  readonly url: string;
  /** "host:port" where its nginx serves HTTPS sites, or its HAProxy passes HTTPS through. */
  readonly httpsListen: string;
  /** Stops pure-ftpd, the agent and nginx by pid and removes their temporary folders. */
  stop(): Promise<void>;
}

export async function startHostingNode(options: HostingNodeOptions): Promise<HostingNode> {
  const confDir = fs.mkdtempSync(path.join(os.tmpdir(), `lbh-${options.name}-sites-`));
  const httpsListen = `${options.host}:${await freePort(options.host)}`;
  let nginx: NginxProcess | undefined;
  let agent: AgentProcess | undefined;
  let ftp: PureFtpdProcess | undefined;
  let haproxy: HaproxyProcess | undefined;
  const stopAll = async () => {
    await ftp?.stop();
    await agent?.stop();
    agent?.cleanup();
    await nginx?.stop();
    await haproxy?.stop();
    fs.rmSync(confDir, { recursive: true, force: true });
  };
  try {
    if (options.nginxBin) {
      nginx = await startNginx({ bin: options.nginxBin, host: options.host, includeDirs: [confDir] });
    }
    if (options.haproxyBin) {
      haproxy = await startHaproxy({ bin: options.haproxyBin, host: options.host, agentName: options.name });
    }
    const ftpPort = options.ftp ? await freePort(options.host) : undefined;
    const httpsArgs = ["--https-listen", httpsListen];
    const passivePorts = passivePortsOf(options.host);
    const ftpArgs = options.ftp
      ? [
          ...["--pure-pw-bin", options.ftp.purePw],
          ...["--ftp-listen", `${options.host}:${ftpPort}`, "--ftp-passive-ports", passivePorts.join(":")],
          ...(options.ftpMaxSessions === undefined ? [] : ["--ftp-max-sessions", `${options.ftpMaxSessions}`]),
          ...(options.ftpTls === undefined ? [] : ["--ftp-tls", options.ftpTls.mode]),
        ]
      : [];
    const haproxyArgs = haproxy
      ? [
          ...["--haproxy-bin", haproxy.bin, "--haproxy-main-conf", haproxy.mainConf],
          ...["--haproxy-conf", haproxy.confFile, "--haproxy-master-socket", haproxy.masterSocket],
          ...["--http-listen", haproxy.listen],
        ]
      : [];
    agent = await startAgentProcess({
      host: options.host,
      name: options.name,
      token: options.token,
      contentRoot: options.contentRoot,
      nginxConfDir: confDir,
      ...(nginx
        ? { nginx: { bin: nginx.bin, mainConf: nginx.mainConf, prefix: nginx.prefix }, httpListen: nginx.listen }
        : {}),
      extraArgs: [...ftpArgs, ...haproxyArgs, ...httpsArgs],
      ...(options.agentTls
        ? { tls: { certFile: options.agentTls.certificateFile, keyFile: options.agentTls.privateKeyFile } }
        : {}),
    });
    if (options.ftp) {
      ftp = await startPureFtpd({
        bin: options.ftp.pureFtpd,
        host: options.host,
        ...ftpAuthOf(agent.dataDir),
        port: ftpPort,
        passivePorts,
        passiveAddress: options.ftpPassiveAddress,
        maxSessions: options.ftpMaxSessions,
        tls: options.ftpTls,
      });
    }
  } catch (error) {
    await stopAll();
    throw error;
  }
  const started = agent;
  return { name: options.name, agent: started, nginx, ftp, haproxy, url: started.url, httpsListen, stop: stopAll };
}

export interface BalancedNodesOptions {
  /** Loopback addresses of the primary, the secondary and the load balancer. */
  hosts: [string, string, string];
  names: [string, string, string];
  token: string;
  /** The NAS both nodes share, or one content folder per node (primary, secondary). */
  contentRoot: string | [string, string];
  nginxBin: string;
  haproxyBin: string;
  ftp: FtpBinaries;
  /** Each node's FTP session limit (pure-ftpd's -c and the agent's --ftp-max-sessions); default: pure-ftpd's. */
  ftpMaxSessions?: [number, number];
  /** Both nodes' FTPS (one certificate for the load balancer's FTP name); default: cleartext only. */
  ftpTls?: FtpTlsSetup;
}

export interface BalancedNodes {
  primary: HostingNode;
  secondary: HostingNode;
  balancer: HostingNode;
  /** A free "host:port" on the load balancer for an org's FTP sessions. */
  ftpAddress: string;
}

/**
 * Two hosting nodes (nginx, and pure-ftpd advertising the load balancer for passive mode) and a
 * load balancer (HAProxy) in front of them, on three loopback addresses.
 */
export async function startBalancedNodes(options: BalancedNodesOptions): Promise<BalancedNodes> {
  const { hosts, names, token } = options;
  const contentRoots = typeof options.contentRoot === "string" ? [options.contentRoot] : options.contentRoot;
  const node = (index: 0 | 1) =>
    startHostingNode({
      host: hosts[index],
      name: names[index],
      token,
      contentRoot: contentRoots[index] ?? contentRoots[0],
      nginxBin: options.nginxBin,
      ftp: options.ftp,
      ftpPassiveAddress: hosts[2],
      ftpMaxSessions: options.ftpMaxSessions?.[index],
      ftpTls: options.ftpTls,
    });
  const started = await Promise.allSettled([
    node(0),
    node(1),
    startHostingNode({
      host: hosts[2],
      name: names[2],
      token,
      contentRoot: contentRoots[0],
      haproxyBin: options.haproxyBin,
    }),
  ]);
  const nodes = started.flatMap((result) => (result.status === "fulfilled" ? [result.value] : []));
  const failed = started.find((result): result is PromiseRejectedResult => result.status === "rejected");
  if (failed) {
    await Promise.allSettled(nodes.map((running) => running.stop()));
    throw failed.reason;
  }
  const [primary, secondary, balancer] = nodes;
  return { primary, secondary, balancer, ftpAddress: `${hosts[2]}:${await freePort(hosts[2])}` };
}

/** The node behind an FTP session through a load balancer: the one whose passive range holds its last data port. */
export function nodeBehind(session: FtpSession, nodes: HostingNode[]): string {
  return nodeOfPassivePort(session.passive[session.passive.length - 1]?.port, nodes);
}

/** The node whose passive range holds `port`: where the load balancer forwards a data connection to it. */
export function nodeOfPassivePort(port: number | undefined, nodes: HostingNode[]): string {
  const node = nodes.find((candidate) => {
    if (!candidate.ftp || port === undefined) return false;
    const [low, high] = passivePortsOf(candidate.ftp.host);
    return port >= low && port <= high;
  });
  return node?.name ?? `no node for passive port ${port}`;
}
