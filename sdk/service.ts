import * as pulumi from "@pulumi/pulumi";
import { managedBy } from "./managed-by";
import { organizationRef, type LoadBalancedOrganization, type OrganizationRef } from "./organization";
import { shims } from "./provider-shim";
import { LbhostingResource } from "./resource";

export interface WebServiceArgs {
  /** The organization resource, or `{ name, primary }`. */
  organization: LoadBalancedOrganization | OrganizationRef;
  /** A DNS label; changing it replaces the service. */
  name: pulumi.Input<string>;
  /** Changing it replaces the service. */
  kind: pulumi.Input<"website" | "ftp">;
  /** Default true. */
  enabled?: pulumi.Input<boolean>;
  /** website: the domains it answers for. */
  domains?: pulumi.Input<pulumi.Input<string>[]>;
  /** website: the folder served, relative to the organization's content folder on the NAS. */
  documentRoot?: pulumi.Input<string>;
  /** ftp: the folder users land in, relative to the organization's content folder. */
  rootPath?: pulumi.Input<string>;
  /** ftp: whether users may write (default false). */
  writable?: pulumi.Input<boolean>;
  /** Take over a service that already exists on the primary. */
  adopt?: pulumi.Input<boolean>;
}

/** A web hosting service component of an organization: a web site or the FTP service. */
export class WebService extends LbhostingResource {
  declare readonly organization: pulumi.Output<{ name: string; primary: string }>;
  declare readonly name: pulumi.Output<string>;
  declare readonly kind: pulumi.Output<"website" | "ftp">;
  declare readonly enabled: pulumi.Output<boolean | undefined>;
  declare readonly domains: pulumi.Output<string[] | undefined>;
  declare readonly documentRoot: pulumi.Output<string | undefined>;
  declare readonly rootPath: pulumi.Output<string | undefined>;
  declare readonly writable: pulumi.Output<boolean | undefined>;
  /** Where the service answers: http://<domain>/ per domain, or ftp://<primary host>/. */
  declare readonly urls: pulumi.Output<string[]>;

  constructor(name: string, args: WebServiceArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      shims.service,
      name,
      { ...args, organization: organizationRef(args.organization), managedBy: managedBy(name), urls: undefined },
      opts,
      "WebService",
    );
  }
}
