/**
 * The administrator's stack: it holds the nodes' admin token (`lbhosting:token`) and issues each
 * organization its own tokens, which act on that organization only.
 *
 * Stack config: organizations (JSON list of names), nodes (JSON list of agent URLs),
 * loadBalancer (agent URL), lbhosting:token (secret).
 */
import * as pulumi from "@pulumi/pulumi";
import { OrgAccess } from "pulumi-lbhosting";

const config = new pulumi.Config();
const nodes = config.requireObject<string[]>("nodes");
const loadBalancer = config.require("loadBalancer");

const accesses = config
  .requireObject<string[]>("organizations")
  .map(
    (organization) =>
      new OrgAccess(organization, { organization, nodes, loadBalancer, label: `tenant ${organization}` }),
  );

/** Per organization, its `lbhosting:tokens` value (secret): hand each to that tenant's stack only. */
export const tokens = pulumi
  .all(accesses.map((access) => pulumi.all([access.organization, access.tokens])))
  .apply((entries) => Object.fromEntries(entries));
