/** The SDK's public API: the resources a Pulumi program declares, their arguments and outputs. */
export { LoadBalancedOrganization, type LoadBalancedOrganizationArgs, type OrganizationRef } from "./organization";
export { OrgUser, type OrgUserArgs } from "./user";
export { WebService, type WebServiceArgs, type WebsiteTls, type AcmeTls, type CertificateSummary } from "./service";
export { SyncCheck, type SyncCheckArgs, type SyncCheckMember } from "./sync-check";
export { OrgAccess, type OrgAccessArgs } from "./org-access";
export {
  HostingNode,
  type HostingNodeArgs,
  type HostingNodeFtp,
  type HostingNodeHaproxy,
  type HostingNodeNginx,
  type HostingNodeRole,
  type HostingNodeTls,
} from "./hosting-node";
export type { FencingStatus, SecondaryState, SecondarySyncStatus } from "./outputs";
