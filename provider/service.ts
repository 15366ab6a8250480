/** WebService: a web site or an FTP service of an organization, on the primary and synced. */
import type * as pulumi from "@pulumi/pulumi";
import {
  type AcmeSettings,
  type WebServiceInputs,
  webServiceDefaults,
  webServiceInputsSchema,
  withDefaults,
} from "../sdk/inputs";
import { type ServiceBody, type ServiceRecord, certificateSummary, normalizePem } from "../wire";
import {
  type AcmeIssued,
  DEFAULT_RENEW_BEFORE_DAYS,
  LETS_ENCRYPT_DIRECTORY,
  issueCertificate,
  reissueReason,
} from "./acme";
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
type Material = { certificate: string; privateKey: string };

/** An ACME website's settings, defaults applied; undefined for any other service. */
function acmeOf(inputs: Partial<WebServiceInputs>): Required<AcmeSettings> | undefined {
  const tls = inputs.kind === "website" ? (inputs.tls as unknown) : undefined;
  if (typeof tls !== "object" || tls === null || !("acme" in tls)) return undefined;
  const acme = tls.acme as AcmeSettings;
  return {
    email: acme.email,
    directory: acme.directory ?? LETS_ENCRYPT_DIRECTORY,
    renewBefore: acme.renewBefore ?? DEFAULT_RENEW_BEFORE_DAYS,
  };
}

/**
 * The inputs as the agent gets them: an ACME website's `tls` replaced by its issued certificate
 * and key (or left out, with redirect and HSTS, before the first issuance).
 */
function uploaded(inputs: WebServiceInputs, issued: Material | undefined): WebServiceInputs {
  if (acmeOf(inputs) === undefined || inputs.kind !== "website") return inputs;
  if (issued) return { ...inputs, tls: { certificate: issued.certificate, privateKey: issued.privateKey } };
  return { ...inputs, tls: undefined, httpsRedirect: undefined, hsts: undefined };
}

/** The service's settings as the agent holds them: each one the program left out at the agent's default. */
function bodyOf(inputs: WebServiceInputs): ServiceBody {
  if (inputs.kind === "website") {
    const { domains, documentRoot, enabled, managedBy, tls, httpsRedirect, hsts } = withDefaults(
      inputs,
      webServiceDefaults.website,
    );
    const material = tls && !("acme" in tls) ? tls : undefined;
    return {
      kind: "website",
      domains,
      documentRoot,
      enabled,
      managedBy,
      ...(material && { tls: material, httpsRedirect, hsts }),
    };
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
  const tls = inputs.tls as Partial<Material> | undefined;
  if (tls === undefined || acmeOf(inputs) !== undefined) return undefined;
  const pem = (value: unknown) => (typeof value === "string" && !containsUnknown(value) ? normalizePem(value) : value);
  return {
    certificate: pem(tls.certificate) as string,
    privateKey: pem(tls.privateKey) as string,
    httpsRedirect: inputs.httpsRedirect ?? true,
    hsts: inputs.hsts ?? false,
  };
}
type ServiceTls = NonNullable<Extract<ServiceRecord, { kind: "website" }>["tls"]>;

/** What the outputs show of a website's certificate: fingerprint, names, expiry (the PEM stays in a secret). */
function certificateOf(inputs: WebServiceInputs, issued: Partial<AcmeIssued> | undefined) {
  const tls = inputs.kind === "website" ? inputs.tls : undefined;
  const pem = tls && "acme" in tls ? issued?.certificate : tls?.certificate;
  return pem ? certificateSummary(normalizePem(pem as string)) : undefined;
}

/**
 * The outputs the program's inputs make: what create, update and refresh all write. An ACME
 * website keeps its account key, certificate and key in `acmeIssued` (a secret output), so the
 * next `up` reuses them and orders nothing until renewal is due.
 */
function outputsOf(inputs: WebServiceInputs, issued?: Partial<AcmeIssued>) {
  const certificate = certificateOf(inputs, issued);
  return {
    ...inputs,
    urls: urlsOf(inputs),
    ...(certificate && { certificate }),
    ...(acmeOf(inputs) && issued && { acmeIssued: issued }),
  };
}
type Outputs = WebServiceInputs & { acmeIssued?: Partial<AcmeIssued> };

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
async function writeRouted(inputs: WebServiceInputs, previous?: WebServiceInputs) {
  const { primary } = inputs.organization;
  const report = await writeAndSync(inputs.organization, putter(inputs, bodyOf(inputs), previous === undefined));
  if (inputs.kind === "website") {
    try {
      await routeOrg(inputs.organization, servingNodes(clientFor(primary).endpoint, report.secondaries), clientFor);
    } catch (error) {
      if (!(error instanceof AgentError && error.status === 409)) throw error;
      await undo(inputs, previous);
      throw new Error(
        `service ${inputs.name}: the load balancer ${inputs.organization.loadBalancer} refused its route ` +
          `(${error.reason}); the ${previous ? "change" : "service"} was undone on the organization's nodes`,
      );
    }
  }
  return report;
}

/** The write of `body` on the primary (a create's only over no service or its own, see ownerOnCreate). */
const putter = (inputs: WebServiceInputs, body: ServiceBody, create: boolean) => () =>
  refusingTakeOver(`service ${inputs.name}`, inputs.organization, async () => {
    const { name, primary } = inputs.organization;
    return (
      await clientFor(primary).putService(name, inputs.name, body, false, create ? ownerOnCreate(inputs) : undefined)
    ).answer;
  });

/**
 * A failed change taken back on the nodes — the previous settings written again, or the created
 * service removed — and, for a website, on the load balancer's route, which the change's write
 * may have given its domains (an ACME order routes the site before it asks).
 */
async function undo(inputs: WebServiceInputs, previous: WebServiceInputs | undefined): Promise<void> {
  const { name, primary } = inputs.organization;
  const reroute = inputs.kind === "website";
  await (previous
    ? writeAndSync(inputs.organization, putter(previous, bodyOf(previous), false), reroute)
    : deleteAndSync(inputs.organization, () => clientFor(primary).deleteService(name, inputs.name), reroute));
}

async function apply(inputs: WebServiceInputs, previous?: Outputs) {
  const issued = acmeOf(inputs) ? await acmeCertificate(inputs, previous) : undefined;
  const before = previous && uploaded(previous, previous.acmeIssued as Material | undefined);
  const report = await writeRouted(uploaded(inputs, issued), before);
  const outs = outputsOf(inputs, issued);
  assertSynced(report, idOf(inputs), outs);
  return outs;
}

/**
 * An ACME website's certificate: the one issued before while it still serves (covers the domains,
 * not due for renewal), else a new one. Ordering one needs the site, with its domains, on every
 * serving node and routed by the load balancer (the ACME server asks through it): that is written
 * first with the TLS it has now — the previous certificate if it covers the new domains, none
 * otherwise — and taken back if the order fails, so a failed ACME order changes nothing live.
 */
async function acmeCertificate(inputs: WebServiceInputs, previous: Outputs | undefined): Promise<AcmeIssued> {
  const acme = acmeOf(inputs) as Required<AcmeSettings>;
  const domains = inputs.kind === "website" ? inputs.domains : [];
  const held = previous?.acmeIssued;
  const sameDirectory = previous !== undefined && acmeOf(previous)?.directory === acme.directory;
  if (sameDirectory && reissueReason(held, domains, acme.renewBefore) === undefined) return held as AcmeIssued;
  // The certificate it has now — issued before, or uploaded before the switch to ACME — while it
  // covers the domains and has not expired: served until the new one is there.
  const uploadedBefore =
    previous?.kind === "website" && previous.tls && !("acme" in previous.tls) ? previous.tls : undefined;
  const current = [held, uploadedBefore].find((material) => reissueReason(material, domains, 0) === undefined);
  const before = previous && uploaded(previous, held as Material | undefined);
  const report = await writeRouted(uploaded(inputs, current as Material | undefined), before);
  const { name, primary } = inputs.organization;
  const nodes = servingNodes(clientFor(primary).endpoint, report.secondaries);
  const site = resourceName(inputs) ?? inputs.name;
  const started = performance.now();
  try {
    await webServersChecked(inputs.organization);
    const issued = await issueCertificate({
      site,
      domains,
      directory: acme.directory,
      email: acme.email,
      accountKey: held?.accountKey,
      answer: async (token, keyAuthorization) => {
        await Promise.all(
          nodes.map((node) => clientFor(node).putAcmeChallenge(name, inputs.name, token, keyAuthorization)),
        );
      },
      withdraw: async (token) => {
        await Promise.all(nodes.map((node) => clientFor(node).deleteAcmeChallenge(name, inputs.name, token)));
      },
    });
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    console.log(
      `WebService ${site}: certificate issued by ${acme.directory} for ${domains.join(", ")} in ${seconds} s`,
    );
    return issued;
  } catch (error) {
    await undo(inputs, before);
    throw error;
  }
}

export const serviceProvider: pulumi.dynamic.ResourceProvider = {
  async configure(request) {
    credentials.configure(request.config);
  },

  async check(_olds, news) {
    return checkMember(webServiceInputsSchema, news);
  },

  async diff(_id, olds: Outputs, news: WebServiceInputs) {
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
    const reissue = acmeReissue(olds, news);
    if (reissue) console.log(`WebService ${resourceName(news) ?? news.name}: ${reissue}`);
    return { changes: replaces.length > 0 || changed || reissue !== undefined, replaces, deleteBeforeReplace: true };
  },

  async create(inputs: WebServiceInputs) {
    return { id: idOf(inputs), outs: await apply(inputs) };
  },

  async update(_id, olds: Outputs, news: WebServiceInputs) {
    return { outs: await apply(news, olds) };
  },

  /**
   * `pulumi refresh`: the stored inputs, each replaced only where the primary holds something else
   * (drift); a default the program did not set (enabled, writable) stays unset.
   */
  async read(id, props: Outputs & { urls: string[] }) {
    const service = await readMember(props.organization, (org) => org.services.find((s) => s.name === props.name));
    if (!service) return { id: "", props: {} };
    const inputs = inputsOf(webServiceInputsSchema, props) as Record<string, unknown>;
    const stored = props as Partial<Record<string, unknown>> & WebServiceInputs;
    const settings = settingsOf(stored);
    let issued = props.acmeIssued;
    if (stored.kind !== service.kind) {
      // Another kind on the primary: take its settings whole (the next up replaces it).
      for (const key of ["domains", "documentRoot", "rootPath", "writable", "tls", "httpsRedirect", "hsts"]) {
        delete inputs[key];
      }
      Object.assign(inputs, { ...withoutKey(service), name: props.name });
    } else if (service.kind === "website") {
      if (differs(stored.domains ?? [], service.domains, true)) inputs.domains = service.domains;
      if (stored.documentRoot !== service.documentRoot) inputs.documentRoot = service.documentRoot;
      if (acmeOf(stored)) {
        issued = acmeDrift(stored, service.tls);
        Object.assign(inputs, acmeFlagsDrift(stored, service.tls));
      } else {
        Object.assign(inputs, tlsDrift(tlsSettingsOf(stored as WebsiteInputs), service.tls));
      }
    } else {
      if (stored.rootPath !== service.rootPath) inputs.rootPath = service.rootPath;
      if (settings.writable !== service.writable) inputs.writable = service.writable;
    }
    if (settings.enabled !== service.enabled) inputs.enabled = service.enabled;
    if (settings.managedBy !== service.managedBy) inputs.managedBy = service.managedBy;
    const refreshed = inputs as WebServiceInputs;
    return { id, props: outputsOf(refreshed, issued), inputs: refreshed };
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

/** How long an order waits for the load balancer to take a new site's nodes in (their checks pass). */
const BALANCER_CHECKS_MS = 30_000;

/**
 * Waits (bounded) until the load balancer's web checks pass on every node of the org's route, so
 * the ACME server's request reaches a node whichever it picks: a site just created is only taken
 * in after its checks pass. Past the bound the order goes ahead; a failed challenge then says why.
 */
async function webServersChecked(organization: WebServiceInputs["organization"]): Promise<void> {
  if (organization.loadBalancer === undefined) return;
  const balancer = clientFor(organization.loadBalancer);
  const deadline = Date.now() + BALANCER_CHECKS_MS;
  while (Date.now() < deadline) {
    const { nodes } = await balancer.balancerStatus(organization.name);
    if (nodes.length > 0 && nodes.every((node) => node.web?.healthy)) return;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/**
 * Why an ACME website needs a certificate ordered (see reissueReason; also a new directory), or
 * undefined. `olds` are the outputs (an `up`'s state, or a refresh's result), so a certificate
 * due for renewal shows in `preview` and fails `refresh --expect-no-changes` until an `up` renews it.
 */
function acmeReissue(olds: Outputs, news: WebServiceInputs): string | undefined {
  const acme = acmeOf(news);
  if (acme === undefined || news.kind !== "website" || containsUnknown(news.domains)) return undefined;
  if (acmeOf(olds)?.directory !== acme.directory) return "certificate issued by ACME";
  return reissueReason(olds.acmeIssued, news.domains, acme.renewBefore);
}

/**
 * An ACME website's issued material against the primary's: another certificate there (or none)
 * keeps the account key and drops the key, so the next `up` orders a certificate again — a key
 * never enters state from a refresh.
 */
function acmeDrift(stored: Outputs, primary: ServiceTls | undefined): Partial<AcmeIssued> | undefined {
  const held = stored.acmeIssued;
  if (!held?.certificate) return held;
  if (primary && normalizePem(held.certificate) === primary.certificate) return held;
  return { accountKey: held.accountKey, certificate: held.certificate, privateKey: "" };
}

/** An ACME website's redirect and HSTS as the primary has them, where they differ. */
function acmeFlagsDrift(stored: Outputs, primary: ServiceTls | undefined): Record<string, unknown> {
  if (primary === undefined || stored.kind !== "website") return {};
  return {
    ...((stored.httpsRedirect ?? true) !== primary.httpsRedirect && { httpsRedirect: primary.httpsRedirect }),
    ...((stored.hsts ?? false) !== primary.hsts && { hsts: primary.hsts }),
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
    acme: acmeOf(inputs),
    acmeFlags: acmeOf(inputs) && {
      httpsRedirect: (inputs as WebsiteInputs).httpsRedirect ?? true,
      hsts: (inputs as WebsiteInputs).hsts ?? false,
    },
    managedBy: settings.managedBy,
  };
}
