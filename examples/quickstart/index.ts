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
 *   siteCheckUrl    where the site is served: the load balancer's (or the primary's) nginx,
 *                   e.g. http://lb1.internal/; when set, every up checks the site answers
 *   siteText        what the page must contain                          (default "Acme Corp")
 *   alicePassword   secret                                             (required)
 *   bobPassword     secret                                             (required)
 *   lbhosting:token secret agent token (or LBHOSTING_TOKEN)
 */
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { LoadBalancedOrganization, OrgUser, SyncCheck, WebService } from "pulumi-lbhosting";

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

  const domain = config.get("domain") ?? "www.acme.test";
  const site = new WebService("www", {
    organization: org,
    name: "www",
    kind: "website",
    domains: [domain],
    documentRoot: "www",
  });

  const ftp = new WebService("ftp", { organization: org, name: "ftp", kind: "ftp", rootPath: ".", writable: true });

  const alice = new OrgUser("alice", {
    organization: org,
    username: "alice",
    password: config.requireSecret("alicePassword"),
    displayName: "Alice Admin",
    access: ["ftp"],
  });
  const bob = new OrgUser("bob", { organization: org, username: "bob", password: config.requireSecret("bobPassword") });

  // Where the org stands once every user and service is done: the stack's outputs come from it,
  // not from the org resource (whose own outputs are as of its last operation).
  const sync = new SyncCheck("acme-sync", { organization: org, after: [site, ftp, alice, bob] });

  // Post-deploy check: the up fails unless the site answers with its content. It runs again
  // whenever the organization's configuration (its digest at the end of the up) or the check changes.
  const siteCheckUrl = config.get("siteCheckUrl");
  const siteCheck = siteCheckUrl
    ? new command.local.Command(
        "site-check",
        {
          create:
            'curl -fsS --max-time 10 --retry 5 --retry-delay 1 --retry-all-errors -H "Host: $SITE_DOMAIN" "$SITE_URL" ' +
            '| grep -F -- "$SITE_TEXT"',
          environment: {
            SITE_URL: siteCheckUrl,
            SITE_DOMAIN: domain,
            SITE_TEXT: config.get("siteText") ?? "Acme Corp",
          },
          triggers: [sync.digest],
        },
        { dependsOn: [site] },
      )
    : undefined;

  return {
    orgId: org.orgId,
    generation: sync.generation,
    digest: sync.digest,
    inSync: sync.inSync,
    syncStatus: sync.syncStatus,
    siteUrls: site.urls,
    ftpUrls: ftp.urls,
    // Only with a check: an undefined output makes Pulumi warn that it will not show.
    ...(siteCheck ? { siteCheck: siteCheck.stdout } : {}),
  };
};
