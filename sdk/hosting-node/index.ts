import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { agentScripts, shellQuote } from "./scripts";
import {
  checkAgentTls,
  checkHostingNodeSettings,
  type AgentInstall,
  type HostingNodeFtp,
  type HostingNodeHaproxy,
  type HostingNodeNginx,
  type HostingNodeRole,
} from "./settings";

export type { HostingNodeFtp, HostingNodeHaproxy, HostingNodeNginx, HostingNodeRole };

/**
 * The agent's API over HTTPS: its certificate and key, PEM (e.g. from @pulumi/tls resources, or
 * files made with openssl). The stack trusts the CA that signed it through lbhosting:caCertificate.
 */
export interface HostingNodeTls {
  /** The agent's certificate first, then its chain; it must name the host of the node's `url`. */
  certificate: pulumi.Input<string>;
  /** Its private key (a secret): sent on the install command's stdin into a 0600 file, never in a file asset or on a command line. */
  privateKey: pulumi.Input<string>;
}

export interface HostingNodeArgs {
  /** How to reach the server over SSH: host, port, user, privateKey (a secret), … */
  connection: command.types.input.remote.ConnectionArgs;
  /** The packed agent package (`npm pack -w lbhosting-agent`: lbhosting-agent-<version>.tgz). A new file upgrades the agent in place. */
  agentPackage: string;
  /** The package's version; default: read from the file name npm pack gives it. */
  agentVersion?: string;
  /** host:port the agent binds on that server. */
  listen: string;
  /** How the provider reaches the agent; default https://<listen> with `tls`, else http://<listen>. */
  url?: pulumi.Input<string>;
  /** Serve the agent's API over HTTPS (recommended: the token and users' passwords cross the network). */
  tls?: HostingNodeTls;
  /** The agent's bearer token (a secret): written to a 0600 file through stdin, never on a command line. */
  token: pulumi.Input<string>;
  /** The agent's name (X-Served-By); default the resource name. */
  name?: string;
  /** Where the agent package is installed; default /opt/lbhosting/<name>. */
  installDir?: string;
  /**
   * The agent's database and generated files (the agent's alone: 0700), kept on delete unless
   * purgeData; default /var/lib/lbhosting/<name>.
   */
  dataDir?: string;
  /** The folder holding every org's content (the NAS mount); required with nginx or ftp. */
  contentRoot?: string;
  /**
   * "START-END": each org's Unix id (its writable FTP accounts' uid and gid, the owner of its
   * folder) comes from it; default 200000-999999. Give every node of an org the same range.
   */
  orgIdRange?: string;
  /** The group nginx's workers run as (group of every org folder); default www-data's gid on the server. */
  webGid?: number;
  /** "hosting" (default): nginx and FTP; "load-balancer": the agent next to HAProxy, which HostingNode runs too. */
  role?: HostingNodeRole;
  nginx?: HostingNodeNginx;
  ftp?: HostingNodeFtp;
  /** HAProxy on a load-balancer host (required with role "load-balancer"). */
  haproxy?: HostingNodeHaproxy;
  /** Delete removes dataDir too (default false: the data survives the node). */
  purgeData?: boolean;
  /** How long to wait for /v1/health after a start, in seconds (default 60). */
  healthTimeoutSeconds?: number;
}

const sha256 = (data: string | Buffer): string => createHash("sha256").update(data).digest("hex");

/** `npm pack` names the file <name>-<version>.tgz. */
export function versionFromPackageFile(file: string): string {
  const match = /^lbhosting-agent-(\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?)\.tgz$/.exec(path.basename(file));
  if (!match) {
    throw new Error(
      `agentPackage ${file}: expected a file named lbhosting-agent-<version>.tgz (npm pack), or give agentVersion`,
    );
  }
  return match[1];
}

/**
 * Turns a bare server reachable by SSH into a hosting node: copies the packed agent package,
 * installs it with npm, writes the token, runs the agent as a service (a systemd unit where
 * systemd runs, else a supervised background process with a pid file) and waits until
 * /v1/health answers with the package's version. Its `url` is ready to use as an organization's
 * primary or secondary; with `tls` the agent serves HTTPS and its `url` is https://. With `role: "load-balancer"` it also writes HAProxy's main file and runs
 * HAProxy the same way, after the agent; its `url` is then an organization's `loadBalancer`.
 */
export class HostingNode extends pulumi.ComponentResource {
  /** The agent's URL, known once the agent answers. */
  declare readonly url: pulumi.Output<string>;
  /** The agent's name (as /v1/health reports it). */
  declare readonly name: pulumi.Output<string>;
  /** The agent version running (as /v1/health reports it). */
  declare readonly version: pulumi.Output<string>;

  constructor(resourceName: string, args: HostingNodeArgs, opts?: pulumi.ComponentResourceOptions) {
    super("lbhosting:index:HostingNode", resourceName, {}, opts);
    const name = args.name ?? resourceName;
    const installDir = args.installDir ?? `/opt/lbhosting/${name}`;
    const packageFile = `${installDir}/packages/${path.basename(args.agentPackage)}`;
    const install: AgentInstall = {
      name,
      version: args.agentVersion ?? versionFromPackageFile(args.agentPackage),
      installDir,
      dataDir: args.dataDir ?? `/var/lib/lbhosting/${name}`,
      packageFile,
      packageSha256: sha256(fs.readFileSync(args.agentPackage)),
      listen: args.listen,
      contentRoot: args.contentRoot,
      orgIdRange: args.orgIdRange,
      webGid: args.webGid,
      role: args.role ?? "hosting",
      nginx: args.nginx,
      ftp: args.ftp,
      haproxy: args.haproxy,
      purgeData: args.purgeData ?? false,
      healthTimeoutSeconds: args.healthTimeoutSeconds ?? 60,
    };
    checkHostingNodeSettings(resourceName, install);
    const { connection, tls } = args;
    const url = pulumi
      .output(args.url ?? `${tls ? "https" : "http"}://${args.listen}`)
      .apply((given) => given.replace(/\/+$/, ""));
    // The certificate goes into the install script (a new one reinstalls); the key only into stdin.
    const scripts = pulumi.all([url, tls?.certificate]).apply(([nodeUrl, certificate]) => {
      const full = certificate === undefined ? install : { ...install, tls: { certificate, url: nodeUrl } };
      checkHostingNodeSettings(resourceName, full);
      return agentScripts(full);
    });
    const scriptFile = scripts.apply(
      (text) => `${installDir}/.hosting-node/install-${sha256(text.install).slice(0, 16)}.sh`,
    );
    const installCommand = pulumi.interpolate`sh ${scriptFile.apply(shellQuote)}`;
    // The token's line, then the key: install.sh writes each into its 0600 file.
    const stdin = pulumi
      .all([args.token, tls?.certificate, tls?.privateKey])
      .apply(([token, certificate, privateKey]) => {
        if (tls) checkAgentTls(resourceName, { certificate, privateKey });
        if (/[\r\n]/.test(token.trim())) throw new Error(`HostingNode ${resourceName}: token must be one line`);
        return privateKey === undefined ? token : `${token.trim()}\n${privateKey.trim()}\n`;
      });

    const copies = [
      new command.remote.CopyToRemote(
        `${resourceName}-package`,
        { connection, source: new pulumi.asset.FileAsset(args.agentPackage), remotePath: packageFile },
        { parent: this },
      ),
      new command.remote.CopyToRemote(
        `${resourceName}-install-script`,
        {
          connection,
          source: scripts.apply((text) => new pulumi.asset.StringAsset(text.install)),
          remotePath: scriptFile,
        },
        { parent: this },
      ),
    ];
    const agent = new command.remote.Command(
      `${resourceName}-agent`,
      {
        connection,
        create: installCommand,
        update: installCommand,
        delete: scripts.remove,
        stdin: pulumi.secret(stdin),
        addPreviousOutputInEnv: false,
        // Another server, folder or name is another installation: the old one is removed first.
        triggers: [connection.host, connection.port ?? 22, installDir, name],
      },
      { parent: this, dependsOn: copies, deleteBeforeReplace: true },
    );

    const health = agent.stdout.apply((stdout) => {
      const last = stdout.trim().split("\n").pop() ?? "";
      return JSON.parse(last) as { name: string; version: string };
    });
    this.url = pulumi.all([url, agent.stdout]).apply(([nodeUrl]) => nodeUrl);
    this.name = health.name;
    this.version = health.version;
    this.registerOutputs({ url: this.url, name: this.name, version: this.version });
  }
}
