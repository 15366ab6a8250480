/**
 * From bare servers to a load-balanced organization in one `pulumi up`: a HostingNode per
 * server installs and starts the agent over SSH, and the organization lives on the first
 * (primary) and is synchronized to the others (secondaries).
 *
 * Stack config:
 *   servers            JSON list, the primary first, each
 *                      { name, host, port?, user?, listen, installDir?, dataDir?, contentRoot?, nginxBin? }
 *   sshPrivateKey      secret: the private key that logs in on every server
 *   agentPackage       the packed agent, lbhosting-agent-<version>.tgz (a new file upgrades every node)
 *   lbhosting:token    secret: the agents' token (HostingNode installs it, the provider uses it)
 *   webmasterPassword  secret
 */
import * as pulumi from "@pulumi/pulumi";
import { HostingNode, LoadBalancedOrganization, OrgUser, WebService } from "pulumi-lbhosting";

interface Server {
  name: string;
  host: string;
  port?: number;
  user?: string;
  listen: string;
  installDir?: string;
  dataDir?: string;
  contentRoot?: string;
  nginxBin?: string;
}

export = async () => {
  const config = new pulumi.Config();
  const token = new pulumi.Config("lbhosting").requireSecret("token");
  const privateKey = config.requireSecret("sshPrivateKey");
  const servers = config.requireObject<Server[]>("servers");

  const nodes = servers.map(
    (server) =>
      new HostingNode(server.name, {
        connection: { host: server.host, port: server.port ?? 22, user: server.user ?? "root", privateKey },
        agentPackage: config.require("agentPackage"),
        listen: server.listen,
        token,
        installDir: server.installDir,
        dataDir: server.dataDir,
        contentRoot: server.contentRoot,
        nginx: server.nginxBin ? { bin: server.nginxBin } : undefined,
      }),
  );

  const [primary, ...secondaries] = nodes;
  const org = new LoadBalancedOrganization("acme", {
    name: "acme",
    displayName: "Acme Corp",
    primary: primary.url,
    secondaries: secondaries.map((node) => node.url),
    loadBalanced: secondaries.length > 0,
  });
  new WebService("www", {
    organization: org,
    name: "www",
    kind: "website",
    domains: ["www.acme.test"],
    documentRoot: "www",
  });
  new OrgUser("webmaster", {
    organization: org,
    username: "webmaster",
    password: config.requireSecret("webmasterPassword"),
  });

  return {
    nodes: nodes.map((node) => ({ name: node.name, url: node.url, version: node.version })),
    inSync: org.inSync,
    syncStatus: org.syncStatus,
  };
};
