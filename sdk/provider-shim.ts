/**
 * The provider Pulumi serializes into state with every resource. It holds nothing but the resource
 * kind and loads the installed package's provider at run time, so no credential or path is
 * captured, and a bug fixed in the package is fixed for `refresh` and `destroy` of existing stacks
 * too. One object per kind, so Pulumi serializes each only once.
 *
 * Each object is the whole exports of a module (shims/<kind>.ts), and the package exports those
 * modules by name: Pulumi's closure serializer writes an object that is the exports of a module
 * inside node_modules as a `require("pulumi-lbhosting/shims/<kind>")` — about 0.3 KB per resource
 * in state (twice: inputs and outputs) instead of ~2.2 KB for the seven serialized closures.
 * Programs inside this repository load the package through a symlink (scripts/link-self.cjs),
 * outside node_modules, so there the closures are still serialized by value.
 */
import type * as pulumi from "@pulumi/pulumi";

/** The shim modules' exports (the same objects whatever path loads them). */
export const shims = {
  organization: require("./shims/organization") as pulumi.dynamic.ResourceProvider,
  user: require("./shims/user") as pulumi.dynamic.ResourceProvider,
  service: require("./shims/service") as pulumi.dynamic.ResourceProvider,
  syncCheck: require("./shims/sync-check") as pulumi.dynamic.ResourceProvider,
  orgAccess: require("./shims/org-access") as pulumi.dynamic.ResourceProvider,
};
