/**
 * The dynamic-provider implementations, loaded at run time by the tiny provider that Pulumi stores
 * in state (sdk/provider-shim.ts): a fix here reaches `refresh` and `destroy` of existing stacks.
 */
import { orgAccessProvider } from "./org-access";
import { organizationProvider } from "./organization";
import { serviceProvider } from "./service";
import { syncCheckProvider } from "./sync-check";
import { userProvider } from "./user";

export const providers = {
  organization: organizationProvider,
  user: userProvider,
  service: serviceProvider,
  syncCheck: syncCheckProvider,
  orgAccess: orgAccessProvider,
};

export type ProviderKind = keyof typeof providers;
