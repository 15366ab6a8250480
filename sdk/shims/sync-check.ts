/**
 * The SyncCheck provider as Pulumi stores it: this module's exports object. Installed as a package,
 * Pulumi serializes it as `require("pulumi-lbhosting/shims/sync-check")` (~0.3 KB per resource);
 * see ../provider-shim.ts.
 */
import { providerShim } from "./forward";

export = providerShim("syncCheck");
