/**
 * Promotion and demotion as a stack config value: `loadBalanced` flips the organization between
 * its primary alone and primary + secondaries.
 *
 * Stack config: primary, secondaries (JSON list), loadBalanced (true/false), lbhosting:token.
 */
import * as pulumi from "@pulumi/pulumi";
import { LoadBalancedOrganization, WebService } from "pulumi-lbhosting";

export = async () => {
  const config = new pulumi.Config();
  const org = new LoadBalancedOrganization("shop", {
    name: "shop",
    displayName: "Shop",
    primary: config.require("primary"),
    secondaries: config.requireObject<string[]>("secondaries"),
    loadBalanced: config.requireBoolean("loadBalanced"),
  });
  new WebService("www", {
    organization: org,
    name: "www",
    kind: "website",
    domains: ["www.shop.test"],
    documentRoot: "www",
  });
  return { loadBalanced: org.loadBalanced, inSync: org.inSync, syncStatus: org.syncStatus };
};
