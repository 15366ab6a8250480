/**
 * From bare servers to a load-balanced organization in one `pulumi up`: a HostingNode per
 * server installs and starts the agent over SSH, and the organization lives on the first
 * (primary) and is synchronized to the others (secondaries). With a `loadBalancer` host, a
 * HostingNode with role "load-balancer" installs the agent next to HAProxy and runs both; the
 * organization's website (and FTP, with `loadBalancerFtp`) is then served through it.
 *
 * Each agent serves HTTPS with a certificate from a private CA (made with openssl, README), which
 * the stack trusts through lbhosting:caCertificate.
 *
 * Stack config:
 *   servers            JSON list of hosting nodes, the primary first, each
 *                      { name, host, port?, user?, listen, tlsCertFile, tlsKeyFile, installDir?,
 *                        dataDir?, contentRoot?, nginxBin?, nginx?, ftp? } (nginx and ftp:
 *                        HostingNode's settings; the TLS files: the agent's certificate, naming
 *                        the host of listen, and its key)
 *   loadBalancer       optional JSON { name, host, port?, user?, listen, tlsCertFile, tlsKeyFile,
 *                        installDir?, dataDir?, haproxy }
 *   loadBalancerFtp    optional host:port on the load balancer for the org's FTP sessions
 *   sshPrivateKey      secret: the private key that logs in on every server
 *   agentPackage       the packed agent, lbhosting-agent-<version>.tgz (a new file upgrades every node)
 *   lbhosting:token    secret: the agents' token (HostingNode installs it, the provider uses it)
 *   lbhosting:caCertificate  the CA (PEM) that signed the agents' certificates
 *   webmasterPassword  secret
 */
import * as fs from "node:fs";
import * as pulumi from "@pulumi/pulumi";
import {
  HostingNode,
  LoadBalancedOrganization,
  OrgUser,
  WebService,
  type HostingNodeFtp,
  type HostingNodeHaproxy,
  type HostingNodeNginx,
} from "pulumi-lbhosting";

/** A bare server reachable by SSH, and where its agent goes. */
interface SshServer {
  name: string;
  host: string;
  port?: number;
  user?: string;
  listen: string;
  /** The agent's certificate (PEM file), and its key: the agent serves HTTPS. */
  tlsCertFile?: string;
  tlsKeyFile?: string;
  installDir?: string;
  dataDir?: string;
}

interface Server extends SshServer {
  contentRoot?: string;
  /** Shorthand for nginx: { bin }. */
  nginxBin?: string;
  nginx?: HostingNodeNginx;
  ftp?: HostingNodeFtp;
}

interface LoadBalancerHost extends SshServer {
  haproxy: HostingNodeHaproxy;
}

export = async () => {
  const config = new pulumi.Config();
  const token = new pulumi.Config("lbhosting").requireSecret("token");
  const privateKey = config.requireSecret("sshPrivateKey");
  const agentPackage = config.require("agentPackage");
  const servers = config.requireObject<Server[]>("servers");
  const balancerHost = config.getObject<LoadBalancerHost>("loadBalancer");
  const connection = (server: SshServer) => ({
    host: server.host,
    port: server.port ?? 22,
    user: server.user ?? "root",
    privateKey,
  });
  // The agent's certificate and key from files made with openssl (README, "HTTPS agents"); with
  // @pulumi/tls, give a LocallySignedCert's certPem and its PrivateKey's privateKeyPem instead.
  const agentTls = (server: SshServer) => {
    if (!server.tlsCertFile && !server.tlsKeyFile) return undefined;
    if (!server.tlsCertFile || !server.tlsKeyFile)
      throw new Error(`server ${server.name}: tlsCertFile and tlsKeyFile go together`);
    return {
      certificate: fs.readFileSync(server.tlsCertFile, "utf8"),
      privateKey: pulumi.secret(fs.readFileSync(server.tlsKeyFile, "utf8")),
    };
  };

  const nodes = servers.map(
    (server) =>
      new HostingNode(server.name, {
        connection: connection(server),
        agentPackage,
        listen: server.listen,
        token,
        tls: agentTls(server),
        installDir: server.installDir,
        dataDir: server.dataDir,
        contentRoot: server.contentRoot,
        nginx: server.nginx ?? (server.nginxBin ? { bin: server.nginxBin } : undefined),
        ftp: server.ftp,
      }),
  );
  const balancer =
    balancerHost &&
    new HostingNode(balancerHost.name, {
      connection: connection(balancerHost),
      agentPackage,
      listen: balancerHost.listen,
      token,
      tls: agentTls(balancerHost),
      installDir: balancerHost.installDir,
      dataDir: balancerHost.dataDir,
      role: "load-balancer",
      haproxy: balancerHost.haproxy,
    });

  const [primary, ...secondaries] = nodes;
  const org = new LoadBalancedOrganization("acme", {
    name: "acme",
    displayName: "Acme Corp",
    primary: primary.url,
    secondaries: secondaries.map((node) => node.url),
    loadBalanced: secondaries.length > 0,
    loadBalancer: balancer?.url,
    loadBalancerFtp: balancer ? config.get("loadBalancerFtp") : undefined,
  });
  new WebService("www", {
    organization: org,
    name: "www",
    kind: "website",
    domains: ["www.acme.test"],
    documentRoot: "www",
  });
  // Where the nodes serve FTP, a writable FTP service for the webmaster.
  const ftp = servers.some((server) => server.ftp)
    ? new WebService("files", { organization: org, name: "files", kind: "ftp", rootPath: "files", writable: true })
    : undefined;
  new OrgUser(
    "webmaster",
    {
      organization: org,
      username: "webmaster",
      password: config.requireSecret("webmasterPassword"),
      access: ftp ? ["files"] : undefined,
    },
    { dependsOn: ftp ? [ftp] : [] },
  );

  return {
    nodes: nodes.map((node) => ({ name: node.name, url: node.url, version: node.version })),
    ...(balancer ? { loadBalancer: { name: balancer.name, url: balancer.url, version: balancer.version } } : {}),
    inSync: org.inSync,
    syncStatus: org.syncStatus,
  };
};
