import * as pulumi from "@pulumi/pulumi";
import type { FencingStatus, SecondarySyncStatus } from "./outputs";
import { managedBy } from "./managed-by";
import { shims } from "./provider-shim";
import { LbhostingResource } from "./resource";

export interface LoadBalancedOrganizationArgs {
  /** The organization id: a DNS label. Changing it replaces the organization. */
  name: pulumi.Input<string>;
  displayName?: pulumi.Input<string>;
  /**
   * The primary hosting server's agent URL. Changing it moves the organization there or, when the
   * old primary is unreachable, promotes the copy that server holds (failover).
   */
  primary: pulumi.Input<string>;
  /** Agent URLs of the secondary hosting servers. */
  secondaries?: pulumi.Input<pulumi.Input<string>[]>;
  /** Whether the secondaries hold a synchronized copy (default false; true needs a secondary). */
  loadBalanced?: pulumi.Input<boolean>;
  /** Any value; changing it forces a full synchronization (the "initiate synchronization" button). */
  syncTrigger?: pulumi.Input<string | number>;
  /** Take over an organization that already exists on the primary. */
  adopt?: pulumi.Input<boolean>;
  /** Agent URL of the load balancer that routes the org's website domains (and FTP) to its serving nodes. */
  loadBalancer?: pulumi.Input<string>;
  /** "host:port" where the load balancer accepts the org's FTP sessions; needs `loadBalancer`. */
  loadBalancerFtp?: pulumi.Input<string>;
  /** Share of new connections per node (agent URL of the primary or a secondary → 1-256); default 1 each. */
  nodeWeights?: pulumi.Input<Record<string, pulumi.Input<number>>>;
  /**
   * Let a failover promote a copy that is behind what the stack recorded or another reachable
   * copy (or was edited locally): what only the old primary or those copies hold is lost.
   */
  allowDataLoss?: pulumi.Input<boolean>;
}

/** A hosting organization on a primary server, synchronized to its secondaries when load-balanced. */
export class LoadBalancedOrganization extends LbhostingResource {
  declare readonly name: pulumi.Output<string>;
  declare readonly displayName: pulumi.Output<string | undefined>;
  declare readonly primary: pulumi.Output<string>;
  declare readonly secondaries: pulumi.Output<string[] | undefined>;
  declare readonly loadBalanced: pulumi.Output<boolean | undefined>;
  declare readonly syncTrigger: pulumi.Output<string | number | undefined>;
  declare readonly adopt: pulumi.Output<boolean | undefined>;
  declare readonly loadBalancer: pulumi.Output<string | undefined>;
  declare readonly loadBalancerFtp: pulumi.Output<string | undefined>;
  declare readonly nodeWeights: pulumi.Output<Record<string, number> | undefined>;
  declare readonly allowDataLoss: pulumi.Output<boolean | undefined>;
  /** The organization id on the agents. */
  declare readonly orgId: pulumi.Output<string>;
  /** The primary's configuration version after this resource's last operation. */
  declare readonly generation: pulumi.Output<number>;
  /** Hash of the primary's canonical configuration after this resource's last operation. */
  declare readonly digest: pulumi.Output<string>;
  /** Raised by each failover or move: copies refuse replication from a primary at a lower epoch. */
  declare readonly epoch: pulumi.Output<number>;
  /** One entry per active secondary. */
  declare readonly syncStatus: pulumi.Output<SecondarySyncStatus[]>;
  /** Whether every active secondary is in sync. */
  declare readonly inSync: pulumi.Output<boolean>;
  /** Former primaries not fenced yet (unreachable, or still holding the org); empty once all are. */
  declare readonly fencing: pulumi.Output<FencingStatus[]>;

  constructor(name: string, args: LoadBalancedOrganizationArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      shims.organization,
      name,
      {
        // An optional argument given as undefined (e.g. `config.get(...)` unset) must not become a
        // registered output: during preview an output missing from state is unknown, and the
        // whole organization reference of every user and service with it (spurious replaces).
        ...Object.fromEntries(Object.entries(args).filter(([, value]) => value !== undefined)),
        managedBy: managedBy(name),
        orgId: undefined,
        generation: undefined,
        digest: undefined,
        epoch: undefined,
        syncStatus: undefined,
        inSync: undefined,
        fencing: undefined,
      },
      opts,
      "LoadBalancedOrganization",
    );
  }
}

/** An organization given by name and primary, for resources in another stack than the org's. */
export interface OrganizationRef {
  name: pulumi.Input<string>;
  primary: pulumi.Input<string>;
  loadBalancer?: pulumi.Input<string | undefined>;
  loadBalancerFtp?: pulumi.Input<string | undefined>;
}

/** One reference per org resource, shared by its members (a thousand users need not build a thousand). */
const refs = new WeakMap<object, pulumi.Output<unknown>>();

/** The `{ name, primary }` a user or service sends to its provider, depending on the org resource. */
export function organizationRef(organization: LoadBalancedOrganization | OrganizationRef) {
  const build = () =>
    pulumi.output({
      name: organization.name,
      primary: organization.primary,
      loadBalancer: organization.loadBalancer,
      loadBalancerFtp: organization.loadBalancerFtp,
    });
  if (!(organization instanceof LoadBalancedOrganization)) return build();
  let ref = refs.get(organization) as ReturnType<typeof build> | undefined;
  if (!ref) refs.set(organization, (ref = build()));
  return ref;
}
