/** WebService: a web site or an FTP service of an organization, on the primary and synced. */
import type * as pulumi from "@pulumi/pulumi";
import { webServiceInputsSchema, type ServiceBody, type WebServiceInputs } from "../sdk/schemas";
import { clientFor, configureCredentials } from "./credentials";
import { differs } from "./inputs";
import { assertMayTakeOver, checkMember, deleteAndSync, findOnPrimary, syncAfterChange } from "./members";

const idOf = (inputs: WebServiceInputs) => `${inputs.organization.name}/${inputs.name}`;

const bodyOf = (inputs: WebServiceInputs): ServiceBody =>
  inputs.kind === "website"
    ? {
        kind: "website",
        domains: inputs.domains,
        documentRoot: inputs.documentRoot,
        enabled: inputs.enabled ?? true,
        managedBy: inputs.managedBy ?? "",
      }
    : {
        kind: "ftp",
        rootPath: inputs.rootPath,
        writable: inputs.writable ?? false,
        enabled: inputs.enabled ?? true,
        managedBy: inputs.managedBy ?? "",
      };

/** Where the service answers: each domain for a web site; for FTP the load balancer, else the primary's host. */
const urlsOf = (inputs: WebServiceInputs): string[] =>
  inputs.kind === "website"
    ? inputs.domains.map((domain) => `http://${domain}/`)
    : [`ftp://${inputs.organization.loadBalancerFtp ?? new URL(inputs.organization.primary).hostname}/`];

async function apply(inputs: WebServiceInputs) {
  const { name, primary } = inputs.organization;
  await clientFor(primary).putService(name, inputs.name, bodyOf(inputs));
  const outs = { ...inputs, urls: urlsOf(inputs) };
  await syncAfterChange(idOf(inputs), inputs.organization, outs, inputs.kind === "website");
  return outs;
}

export const serviceProvider: pulumi.dynamic.ResourceProvider = {
  async configure(request) {
    configureCredentials(request.config);
  },

  async check(_olds, news) {
    return checkMember(webServiceInputsSchema, news);
  },

  async diff(_id, olds: WebServiceInputs, news: WebServiceInputs) {
    const replaces = (["name", "kind"] as const).filter((key) => differs(olds[key], news[key]));
    if (differs(olds.organization?.name, news.organization?.name)) replaces.push("organization" as never);
    const domains = (inputs: WebServiceInputs) => (inputs.kind === "website" ? inputs.domains : []);
    const changed = differs(settingsOf(olds), settingsOf(news)) || differs(domains(olds), domains(news), true);
    return { changes: replaces.length > 0 || changed, replaces, deleteBeforeReplace: true };
  },

  async create(inputs: WebServiceInputs) {
    const { name, primary } = inputs.organization;
    const existing = await findOnPrimary(() => clientFor(primary).getService(name, inputs.name));
    assertMayTakeOver(`service ${inputs.name}`, existing, inputs);
    return { id: idOf(inputs), outs: await apply(inputs) };
  },

  async update(_id, _olds: WebServiceInputs, news: WebServiceInputs) {
    return { outs: await apply(news) };
  },

  async read(id, props: WebServiceInputs & { urls: string[] }) {
    const { name, primary } = props.organization;
    const service = await findOnPrimary(() => clientFor(primary).getService(name, props.name));
    if (!service) return { id: "", props: {} };
    const { managedBy, enabled, ...rest } = service;
    const inputs = { ...props, ...rest, enabled, managedBy } as WebServiceInputs;
    delete (inputs as { urls?: string[] }).urls;
    return { id, props: { ...inputs, urls: urlsOf(inputs) }, inputs };
  },

  async delete(_id, props: WebServiceInputs) {
    const { name, primary } = props.organization;
    await deleteAndSync(
      props.organization,
      () => clientFor(primary).deleteService(name, props.name),
      props.kind === "website",
    );
  },
};

/** The fields an in-place update changes, with their defaults, for canonical comparison. */
function settingsOf(
  inputs: Partial<WebServiceInputs> & { writable?: boolean; documentRoot?: string; rootPath?: string },
) {
  return {
    primary: inputs.organization?.primary,
    loadBalancer: inputs.organization?.loadBalancer,
    loadBalancerFtp: inputs.organization?.loadBalancerFtp,
    enabled: inputs.enabled ?? true,
    documentRoot: inputs.documentRoot,
    rootPath: inputs.rootPath,
    writable: inputs.kind === "ftp" ? (inputs.writable ?? false) : undefined,
    managedBy: inputs.managedBy ?? "",
  };
}
