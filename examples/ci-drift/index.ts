/**
 * The stack a CI pipeline guards: a load-balanced organization whose drift is checked on a
 * schedule with `pulumi refresh --expect-no-changes` (see workflow.yml).
 *
 * Stack config: primary, secondaries (JSON list), lbhosting:token, deployPassword (secret).
 */
import * as pulumi from "@pulumi/pulumi";
import { LoadBalancedOrganization, OrgUser, WebService } from "pulumi-lbhosting";

export = async () => {
  const config = new pulumi.Config();
  const org = new LoadBalancedOrganization("blog", {
    name: "blog",
    primary: config.require("primary"),
    secondaries: config.requireObject<string[]>("secondaries"),
    loadBalanced: true,
  });
  new WebService("www", { organization: org, name: "www", kind: "website", domains: ["blog.test"], documentRoot: "." });
  new WebService("ftp", { organization: org, name: "ftp", kind: "ftp", rootPath: ".", writable: true });
  new OrgUser("deploy", {
    organization: org,
    username: "deploy",
    password: config.requireSecret("deployPassword"),
    access: ["ftp"],
  });
  return { inSync: org.inSync, syncStatus: org.syncStatus };
};
