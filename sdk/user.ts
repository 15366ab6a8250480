import * as pulumi from "@pulumi/pulumi";
import { managedBy } from "./managed-by";
import { organizationRef, type LoadBalancedOrganization, type OrganizationRef } from "./organization";
import { shims } from "./provider-shim";
import { LbhostingResource } from "./resource";

export interface OrgUserArgs {
  /** The organization resource, or `{ name, primary }`. */
  organization: LoadBalancedOrganization | OrganizationRef;
  /** Changing it replaces the user. */
  username: pulumi.Input<string>;
  /** Always stored as a secret in state; agents keep only a salted hash. */
  password: pulumi.Input<string>;
  displayName?: pulumi.Input<string>;
  email?: pulumi.Input<string>;
  /** Default true. */
  enabled?: pulumi.Input<boolean>;
  /** Names of the services the user may use, e.g. the FTP service. */
  access?: pulumi.Input<pulumi.Input<string>[]>;
  /** Take over a user that already exists on the primary. */
  adopt?: pulumi.Input<boolean>;
}

/** An organization user, created on the primary and synchronized to the secondaries. */
export class OrgUser extends LbhostingResource {
  declare readonly organization: pulumi.Output<{ name: string; primary: string }>;
  declare readonly username: pulumi.Output<string>;
  declare readonly password: pulumi.Output<string>;
  declare readonly displayName: pulumi.Output<string | undefined>;
  declare readonly email: pulumi.Output<string | undefined>;
  declare readonly enabled: pulumi.Output<boolean | undefined>;
  declare readonly access: pulumi.Output<string[] | undefined>;

  constructor(name: string, args: OrgUserArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      shims.user,
      name,
      {
        ...args,
        organization: organizationRef(args.organization),
        password: pulumi.secret(args.password),
        managedBy: managedBy(name),
      },
      { ...opts, additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), "password"] },
      "OrgUser",
    );
  }
}
