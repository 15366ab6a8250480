import * as pulumi from "@pulumi/pulumi";
import { shims } from "./provider-shim";
import { LbhostingResource } from "./resource";

export interface OrgAccessArgs {
  /** The organization the tokens act on (it need not exist yet: the tenant's stack creates it). */
  organization: pulumi.Input<string>;
  /** The agents the org may live on: its primary and secondaries, now and to come. */
  nodes: pulumi.Input<pulumi.Input<string>[]>;
  /** Its load balancer's agent: a token for the org's route there, and the nodes registered as its backends. */
  loadBalancer?: pulumi.Input<string>;
  /** Who holds the tokens (shown by the agents' token lists), e.g. the tenant stack's name. */
  label?: pulumi.Input<string>;
}

/**
 * Organization tokens for one org, issued by an administrator's stack (with the nodes' admin
 * token) on each of its nodes and its load balancer. Each acts on that org only: its users,
 * services, status, sync and load-balancer route — anything else is 403. `tokens` is a secret
 * endpoint → token map, the value of the tenant stack's `lbhosting:tokens`:
 *
 *     pulumi config set --secret lbhosting:tokens "$(pulumi stack output acmeTokens --json --show-secrets --stack admin)"
 *
 * Destroying it (or removing a node) revokes the tokens.
 */
export class OrgAccess extends LbhostingResource {
  declare readonly organization: pulumi.Output<string>;
  declare readonly nodes: pulumi.Output<string[]>;
  declare readonly loadBalancer: pulumi.Output<string | undefined>;
  /** Agent endpoint → the org's token there (secret). */
  declare readonly tokens: pulumi.Output<Record<string, string>>;
  /** Agent endpoint → the token's id there, as the agent lists it. */
  declare readonly tokenIds: pulumi.Output<Record<string, string>>;

  constructor(name: string, args: OrgAccessArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      shims.orgAccess,
      name,
      { ...args, tokens: undefined, tokenIds: undefined },
      { ...opts, additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), "tokens"] },
      "OrgAccess",
    );
  }
}
