/** WebService: a web site or an FTP service of an organization, on the primary and synced. */
import type * as pulumi from "@pulumi/pulumi";
import { webServiceDefaults, webServiceInputsSchema, withDefaults, type WebServiceInputs } from "../sdk/inputs";
import { type ServiceBody, type ServiceRecord, certificateSummary, normalizePem } from "../wire";
import { routeOrg, servingNodes } from "./balancer";
import { AgentError } from "./client";
import { clientFor, credentials } from "./context";
import { containsUnknown, differs, inputsOf, resourceName } from "./inputs";
import {
  assertSynced,
  checkMember,
  deleteAndSync,
  ownerOnCreate,
  readMember,
  refusingTakeOver,
  writeAndSync,
} from "./members";

const idOf = (inputs: WebServiceInputs) => `${inputs.organization.name}/${inputs.name}`;

type WebsiteInputs = Extract<WebServiceInputs, { kind: "website" }>;

/** The service's settings as the agent holds them: each one the program left out at the agent's default. */
function bodyOf(inputs: WebServiceInputs): ServiceBody {
  if (inputs.kind === "website") {
    const { domains, documentRoot, enabled, managedBy, tls, httpsRedirect, hsts } = withDefaults(
      inputs,
      webServiceDefaults.website,
    );
    return { kind: "website", domains, documentRoot, enabled, managedBy, ...(tls && { tls, httpsRedirect, hsts }) };
  }
  const { rootPath, writable, enabled, managedBy } = withDefaults(inputs, webServiceDefaults.ftp);
  return { kind: "ftp", rootPath, writable, enabled, managedBy };
}

/** The defaults of a service's kind (a stored service of unknown kind takes the website's). */
const defaultsOf = (inputs: Partial<WebServiceInputs>) =>
  inputs.kind === "ftp" ? webServiceDefaults.ftp : { ...webServiceDefaults.website, writable: undefined };

/**
 * A website's TLS as the agent stores it (PEM normalized, defaults applied), to compare the
 * program's with state and with the primary's record; undefined for an HTTP-only site.
 */
function tlsSettingsOf(inputs: Partial<WebsiteInputs>): ServiceTls | undefined {
  const { tls } = inputs;
  if (tls === undefined) return undefined;
  const pem = (value: unknown) => (typeof value === "string" && !containsUnknown(value) ? normalizePem(value) : value);
  return {
    certificate: pem(tls.certificate) as string,
    privateKey: pem(tls.privateKey) as string,
    httpsRedirect: inputs.httpsRedirect ?? true,
    hsts: inputs.hsts ?? false,
  };
}
type ServiceTls = NonNullable<Extract<ServiceRecord, { kind: "website" }>["tls"]>;

/** What the outputs show of a website's certificate: fingerprint, names, expiry (the PEM stays in the secret input). */
const certificateOf = (inputs: WebServiceInputs) =>
  inputs.kind === "website" && inputs.tls ? certificateSummary(normalizePem(inputs.tls.certificate)) : undefined;

/** The outputs the program's inputs make: what create, update and refresh all write. */
const outputsOf = (inputs: WebServiceInputs) => ({
  ...inputs,
  urls: urlsOf(inputs),
  ...(certificateOf(inputs) && { certificate: certificateOf(inputs) }),
});

/** Where the service answers: each domain for a web site; for FTP the load balancer, else the primary's host. */
const urlsOf = (inputs: WebServiceInputs): string[] =>
  inputs.kind === "website"
    ? inputs.domains.map((domain) => `${inputs.tls ? "https" : "http"}://${domain}/`)
    : [`ftp://${inputs.organization.loadBalancerFtp ?? new URL(inputs.organization.primary).hostname}/`];

/**
 * Writes the service on the primary (a create: only over no service or its own, see
 * ownerOnCreate), syncs, then routes a website's domains on the load balancer. A load balancer
 * that refuses the route (a domain another org routes there: 409 domain_taken) undoes the write on
 * the nodes — the create removed, an update's previous settings written back — so a failed `up`
 * leaves no node serving a domain for an org the load balancer does not route it to.
 */
async function apply(inputs: WebServiceInputs, previous?: WebServiceInputs) {
  const { name, primary } = inputs.organization;
  const owner = previous ? undefined : ownerOnCreate(inputs);
  const put = (body: ServiceBody, ifOwner?: string) => () =>
    refusingTakeOver(`service ${inputs.name}`, inputs.organization, async () => {
      return (await clientFor(primary).putService(name, inputs.name, body, false, ifOwner)).answer;
    });
  const report = await writeAndSync(inputs.organization, put(bodyOf(inputs), owner));
  if (inputs.kind === "website") {
    try {
      await routeOrg(inputs.organization, servingNodes(clientFor(primary).endpoint, report.secondaries), clientFor);
    } catch (error) {
      if (!(error instanceof AgentError && error.status === 409)) throw error;
      await (previous
        ? writeAndSync(inputs.organization, put(bodyOf(previous)))
        : deleteAndSync(inputs.organization, () => clientFor(primary).deleteService(name, inputs.name)));
      throw new Error(
        `service ${inputs.name}: the load balancer ${inputs.organization.loadBalancer} refused its route ` +
          `(${error.reason}); the ${previous ? "change" : "service"} was undone on the organization's nodes`,
      );
    }
  }
  const outs = outputsOf(inputs);
  assertSynced(report, idOf(inputs), outs);
  return outs;
}

export const serviceProvider: pulumi.dynamic.ResourceProvider = {
  async configure(request) {
    credentials.configure(request.config);
  },

  async check(_olds, news) {
    return checkMember(webServiceInputsSchema, news);
  },

  async diff(_id, olds: WebServiceInputs, news: WebServiceInputs) {
    const replaces = (["name", "kind"] as const).filter((key) => differs(olds[key], news[key]));
    if (differs(olds.organization?.name, news.organization?.name)) replaces.push("organization" as never);
    const domains = (inputs: WebServiceInputs) => (inputs.kind === "website" ? inputs.domains : []);
    const changed = differs(settingsOf(olds), settingsOf(news)) || differs(domains(olds), domains(news), true);
    const website = (inputs: WebServiceInputs) => (inputs.kind === "website" ? inputs : {});
    const [before, after] = [tlsSettingsOf(website(olds)), tlsSettingsOf(website(news))];
    if (differs(before?.certificate, after?.certificate) || differs(before?.privateKey, after?.privateKey)) {
      // Pulumi shows no diff of a secret input: say what changes, never the material.
      console.log(`WebService ${resourceName(news) ?? news.name}: certificate changes`);
    }
    return { changes: replaces.length > 0 || changed, replaces, deleteBeforeReplace: true };
  },

  async create(inputs: WebServiceInputs) {
    return { id: idOf(inputs), outs: await apply(inputs) };
  },

  async update(_id, olds: WebServiceInputs, news: WebServiceInputs) {
    return { outs: await apply(news, olds) };
  },

  /**
   * `pulumi refresh`: the stored inputs, each replaced only where the primary holds something else
   * (drift); a default the program did not set (enabled, writable) stays unset.
   */
  async read(id, props: WebServiceInputs & { urls: string[] }) {
    const service = await readMember(props.organization, (org) => org.services.find((s) => s.name === props.name));
    if (!service) return { id: "", props: {} };
    const inputs = inputsOf(webServiceInputsSchema, props) as Record<string, unknown>;
    const stored = props as Partial<Record<string, unknown>> & WebServiceInputs;
    const settings = settingsOf(stored);
    if (stored.kind !== service.kind) {
      // Another kind on the primary: take its settings whole (the next up replaces it).
      for (const key of ["domains", "documentRoot", "rootPath", "writable", "tls", "httpsRedirect", "hsts"]) {
        delete inputs[key];
      }
      Object.assign(inputs, { ...withoutKey(service), name: props.name });
    } else if (service.kind === "website") {
      if (differs(stored.domains ?? [], service.domains, true)) inputs.domains = service.domains;
      if (stored.documentRoot !== service.documentRoot) inputs.documentRoot = service.documentRoot;
      Object.assign(inputs, tlsDrift(tlsSettingsOf(stored as WebsiteInputs), service.tls));
    } else {
      if (stored.rootPath !== service.rootPath) inputs.rootPath = service.rootPath;
      if (settings.writable !== service.writable) inputs.writable = service.writable;
    }
    if (settings.enabled !== service.enabled) inputs.enabled = service.enabled;
    if (settings.managedBy !== service.managedBy) inputs.managedBy = service.managedBy;
    const refreshed = inputs as WebServiceInputs;
    return { id, props: outputsOf(refreshed), inputs: refreshed };
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

/** A record as the program could give it: a website's certificate without its key, which refresh never copies into state. */
function withoutKey(service: ServiceRecord): Record<string, unknown> {
  if (service.kind !== "website" || service.tls === undefined) return service;
  const { tls, ...rest } = service;
  return {
    ...rest,
    tls: { certificate: tls.certificate, privateKey: "" },
    httpsRedirect: tls.httpsRedirect,
    hsts: tls.hsts,
  };
}

/**
 * The inputs to change where the primary's TLS differs from the stored one (none when equal). A
 * certificate or key changed on the primary comes back as the primary's certificate with an empty
 * key: the key never enters state from a refresh, and the next `up` writes the program's again.
 */
function tlsDrift(stored: ServiceTls | undefined, primary: ServiceTls | undefined): Record<string, unknown> {
  if (!differs(stored, primary)) return {};
  if (primary === undefined) return { tls: undefined, httpsRedirect: undefined, hsts: undefined };
  const material =
    stored?.certificate === primary.certificate && stored.privateKey === primary.privateKey
      ? {}
      : { tls: { certificate: primary.certificate, privateKey: "" } };
  return {
    ...material,
    ...(stored?.httpsRedirect !== primary.httpsRedirect && { httpsRedirect: primary.httpsRedirect }),
    ...(stored?.hsts !== primary.hsts && { hsts: primary.hsts }),
  };
}

/** The fields an in-place update changes, with their defaults, for canonical comparison. */
function settingsOf(
  inputs: Partial<WebServiceInputs> & { writable?: boolean; documentRoot?: string; rootPath?: string },
) {
  const settings = withDefaults(inputs, defaultsOf(inputs));
  return {
    primary: inputs.organization?.primary,
    loadBalancer: inputs.organization?.loadBalancer,
    loadBalancerFtp: inputs.organization?.loadBalancerFtp,
    enabled: settings.enabled,
    documentRoot: inputs.documentRoot,
    rootPath: inputs.rootPath,
    writable: inputs.kind === "ftp" ? settings.writable : undefined,
    tls: inputs.kind === "website" ? tlsSettingsOf(inputs) : undefined,
    managedBy: settings.managedBy,
  };
}
