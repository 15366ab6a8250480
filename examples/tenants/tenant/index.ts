/**
 * One tenant's stack: its organization on the shared nodes, load-balanced, with a website and a
 * user — managed with its organization tokens only (`lbhosting:tokens`, issued by the
 * administrator's OrgAccess), which act on this organization and nothing else.
 *
 * Stack config: organization, primary, secondaries (JSON list), loadBalancer, domains (JSON list),
 * lbhosting:tokens (secret), adminPassword (secret).
 */
import * as pulumi from "@pulumi/pulumi";
import { LoadBalancedOrganization, OrgUser, SyncCheck, WebService } from "pulumi-lbhosting";

const config = new pulumi.Config();
const name = config.require("organization");

const org = new LoadBalancedOrganization("org", {
  name,
  primary: config.require("primary"),
  secondaries: config.requireObject<string[]>("secondaries"),
  loadBalanced: true,
  loadBalancer: config.require("loadBalancer"),
});

const site = new WebService("www", {
  organization: org,
  name: "www",
  kind: "website",
  domains: config.requireObject<string[]>("domains"),
  documentRoot: "www",
});

const admin = new OrgUser("admin", {
  organization: org,
  username: "admin",
  password: config.requireSecret("adminPassword"),
});

const check = new SyncCheck("sync", { organization: org, after: [site, admin] });

export const inSync = check.inSync;
export const generation = check.generation;
