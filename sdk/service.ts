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
  /**
   * website: serve it over HTTPS too, with this certificate (PEM: the site's first, then its
   * issuers) and unencrypted private key (PEM). Always stored as a secret in state; the agents keep
   * it readable by themselves and nginx's master only, and answer only its fingerprint.
   * Or `{ acme: { email, directory?, renewBefore? } }`: `pulumi up` obtains the certificate from
   * that ACME directory (default Let's Encrypt's) with HTTP-01 answered through the load balancer,
   * and renews it within `renewBefore` days (default 30) of its expiry.
   */
  tls?: pulumi.Input<WebsiteTls>;
  /** website with tls: redirect plain HTTP to HTTPS (default true). */
  httpsRedirect?: pulumi.Input<boolean>;
  /** website with tls: send Strict-Transport-Security for a year (default false). */
  hsts?: pulumi.Input<boolean>;
  /** ftp: the folder users land in, relative to the organization's content folder. */
  rootPath?: pulumi.Input<string>;
  /** ftp: whether users may write (default false). */
  writable?: pulumi.Input<boolean>;
  /** Take over a service that already exists on the primary. */
  adopt?: pulumi.Input<boolean>;
}

export type WebsiteTls =
  { certificate: pulumi.Input<string>; privateKey: pulumi.Input<string> } | { acme: pulumi.Input<AcmeTls> };

export interface AcmeTls {
  /** The ACME account's contact (expiry notices from the CA). */
  email: pulumi.Input<string>;
  /** The ACME directory URL (default Let's Encrypt's production directory). */
  directory?: pulumi.Input<string>;
  /** Renew this many days before the certificate expires (default 30). */
  renewBefore?: pulumi.Input<number>;
}

/** A website certificate as the outputs show it. */
export interface CertificateSummary {
  /** SHA-256 of the certificate (DER), lowercase hex. */
  fingerprint: string;
  names: string[];
  /** ISO 8601. */
  notAfter: string;
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
  declare readonly tls: pulumi.Output<
    | { certificate: string; privateKey: string }
    | { acme: { email: string; directory?: string; renewBefore?: number } }
    | undefined
  >;
  declare readonly httpsRedirect: pulumi.Output<boolean | undefined>;
  declare readonly hsts: pulumi.Output<boolean | undefined>;
  /** website with tls: the certificate's fingerprint, names and expiry. */
  declare readonly certificate: pulumi.Output<CertificateSummary | undefined>;
  /** Where the service answers: http(s)://<domain>/ per domain, or ftp://<primary host>/. */
  declare readonly urls: pulumi.Output<string[]>;

  constructor(name: string, args: WebServiceArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      shims.service,
      name,
      {
        ...args,
        organization: organizationRef(args.organization),
        ...(args.tls !== undefined && { tls: pulumi.secret(args.tls) }),
        managedBy: managedBy(name),
        urls: undefined,
        certificate: undefined,
        // An ACME website's account key, certificate and key (provider/acme.ts): made by the
        // provider, so marked secret here.
        acmeIssued: undefined,
      },
      { ...opts, additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), "tls", "acmeIssued"] },
      "WebService",
    );
  }
}
