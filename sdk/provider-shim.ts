/**
 * The provider Pulumi serializes into state with every resource. It holds nothing but the resource
 * kind and loads the installed package's provider at run time, so the state stays small, no
 * credential or path is captured, and a bug fixed in the package is fixed for `refresh` and
 * `destroy` of existing stacks too. One object per kind, so Pulumi serializes each only once.
 */
import type * as pulumi from "@pulumi/pulumi";
import type { ProviderKind } from "../provider";

export function providerShim(kind: ProviderKind): pulumi.dynamic.ResourceProvider {
  const load = (): Required<pulumi.dynamic.ResourceProvider> => require("pulumi-lbhosting/provider").providers[kind];
  return {
    configure: (request) => load().configure(request),
    check: (olds, news) => load().check(olds, news),
    diff: (id, olds, news) => load().diff(id, olds, news),
    create: (inputs) => load().create(inputs),
    read: (id, props) => load().read(id, props),
    update: (id, olds, news) => load().update(id, olds, news),
    delete: (id, props) => load().delete(id, props),
  };
}

export const shims = {
  organization: providerShim("organization"),
  user: providerShim("user"),
  service: providerShim("service"),
};
