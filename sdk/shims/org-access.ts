/**
 * The OrgAccess provider as Pulumi stores it: this module's exports object. Installed as a package,
 * Pulumi serializes it as `require("pulumi-lbhosting/shims/org-access")`; see ../provider-shim.ts.
 */
import { providerShim } from "./forward";

export = providerShim("orgAccess");
