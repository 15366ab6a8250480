/**
 * The quick-start stack (the repository's root Pulumi project): one load-balanced organization
 * with two users, a web site and the FTP service.
 *
 * Stack config:
 *   primary         agent URL of the primary hosting server            (required)
 *   secondaries     JSON list of secondary agent URLs                  (default [])
 *   loadBalanced    true/false                                         (default: any secondaries)
 *   loadBalancer    agent URL of the load balancer                     (optional)
 *   loadBalancerFtp host:port where the load balancer accepts FTP      (optional)
 *   domain          the web site's domain                              (default www.acme.test)
 *   alicePassword   secret                                             (required)
 *   bobPassword     secret                                             (required)
 *   lbhosting:token secret agent token (or LBHOSTING_TOKEN)
 */
import * as pulumi from "@pulumi/pulumi";
import { LoadBalancedOrganization, OrgUser, WebService } from "pulumi-lbhosting";

export = async () => {
  const config = new pulumi.Config();
  const secondaries = config.getObject<string[]>("secondaries") ?? [];

  const org = new LoadBalancedOrganization("acme", {
    name: "acme",
    displayName: "Acme Corp",
    primary: config.require("primary"),
    secondaries,
    loadBalanced: config.getBoolean("loadBalanced") ?? secondaries.length > 0,
    loadBalancer: config.get("loadBalancer"),
    loadBalancerFtp: config.get("loadBalancerFtp"),
  });

  const site = new WebService("www", {
    organization: org,
    name: "www",
    kind: "website",
    domains: [config.get("domain") ?? "www.acme.test"],
    documentRoot: "www",
  });

  const ftp = new WebService("ftp", { organization: org, name: "ftp", kind: "ftp", rootPath: ".", writable: true });

  new OrgUser("alice", {
    organization: org,
    username: "alice",
    password: config.requireSecret("alicePassword"),
    displayName: "Alice Admin",
    access: ["ftp"],
  });
  new OrgUser("bob", { organization: org, username: "bob", password: config.requireSecret("bobPassword") });

  return {
    orgId: org.orgId,
    generation: org.generation,
    digest: org.digest,
    inSync: org.inSync,
    syncStatus: org.syncStatus,
    siteUrls: site.urls,
    ftpUrls: ftp.urls,
  };
};
