/** One provider that forwards every call to the installed package's provider of a kind, loaded at run time. */
import type * as pulumi from "@pulumi/pulumi";
import type { ProviderKind } from "../../provider";

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
