/**
 * OrgAccess: an administrator's stack issues an organization's tokens on the nodes the org may
 * live on (and on its load balancer), for the tenant's stack to use as `lbhosting:tokens`. Each
 * token acts on that one org on that one node; the agents keep only a hash of it, so the secret
 * lives in this resource's (secret) outputs. With a load balancer, the nodes are registered with
 * it as backends: the only ones the org's route may send traffic to.
 */
import type * as pulumi from "@pulumi/pulumi";
import { orgAccessInputsSchema, type OrgAccessInputs } from "../sdk/inputs";
import { normalizeEndpoint } from "../wire";
import { backendOf } from "./balancer";
import { unlessNotFound } from "./client";
import { clientFor, credentials } from "./context";
import { checkInputs, containsUnknown, differs, inputsOf } from "./inputs";

export interface OrgAccessOutputs extends OrgAccessInputs {
  /** Agent endpoint → the org's token there: the value of the tenant stack's `lbhosting:tokens`. Secret. */
  tokens: Record<string, string>;
  /** Agent endpoint → the token's id there (what revokes it). */
  tokenIds: Record<string, string>;
}

/** Every agent the org gets a token on: its nodes, then its load balancer. */
const endpointsOf = (inputs: OrgAccessInputs): string[] => [
  ...new Set([...inputs.nodes, ...(inputs.loadBalancer ? [inputs.loadBalancer] : [])].map(normalizeEndpoint)),
];

const labelOf = (inputs: OrgAccessInputs): string => inputs.label ?? `OrgAccess ${inputs.organization}`;

/** Issues the org's token on each endpoint; on any failure revokes those just issued, then throws. */
async function issue(
  inputs: OrgAccessInputs,
  endpoints: string[],
): Promise<Pick<OrgAccessOutputs, "tokens" | "tokenIds">> {
  const results = await Promise.allSettled(
    endpoints.map(async (endpoint) => ({
      endpoint,
      issued: await clientFor(endpoint).issueOrgToken(inputs.organization, labelOf(inputs)),
    })),
  );
  const issued = results.flatMap((result) => (result.status === "fulfilled" ? [result.value] : []));
  const failed = results.flatMap((result, index) =>
    result.status === "rejected" ? [`${endpoints[index]}: ${(result.reason as Error).message}`] : [],
  );
  if (failed.length > 0) {
    await Promise.allSettled(
      issued.map(({ endpoint, issued: token }) => clientFor(endpoint).revokeOrgToken(inputs.organization, token.id)),
    );
    throw new Error(`OrgAccess ${inputs.organization}: could not issue its token on ${failed.join("; ")}`);
  }
  return {
    tokens: Object.fromEntries(issued.map(({ endpoint, issued: token }) => [endpoint, token.token])),
    tokenIds: Object.fromEntries(issued.map(({ endpoint, issued: token }) => [endpoint, token.id])),
  };
}

/** Revokes the org's tokens by id; one already gone is fine. */
async function revoke(org: string, tokenIds: Record<string, string>): Promise<void> {
  const results = await Promise.allSettled(
    Object.entries(tokenIds).map(([endpoint, id]) => unlessNotFound(clientFor(endpoint).revokeOrgToken(org, id))),
  );
  const failed = results.flatMap((result, index) =>
    result.status === "rejected" ? [`${Object.keys(tokenIds)[index]}: ${(result.reason as Error).message}`] : [],
  );
  if (failed.length > 0) throw new Error(`OrgAccess ${org}: could not revoke its token on ${failed.join("; ")}`);
}

/** Registers each node with the load balancer as a backend, at the addresses it reports. */
async function registerNodes(inputs: OrgAccessInputs): Promise<void> {
  if (!inputs.loadBalancer) return;
  const balancer = clientFor(inputs.loadBalancer);
  for (const endpoint of inputs.nodes) {
    const node = await clientFor(endpoint).nodeInfo();
    const backend = backendOf(normalizeEndpoint(endpoint), node, undefined);
    if (!backend) continue; // the node serves neither web nor FTP: nothing to route to
    const { name, ...addresses } = backend;
    await balancer.registerBackend(name, addresses);
  }
}

/** Issues what is missing and revokes what is no longer wanted, keeping the tokens that stay. */
async function reconcile(olds: Partial<OrgAccessOutputs>, news: OrgAccessInputs): Promise<OrgAccessOutputs> {
  const wanted = endpointsOf(news);
  const kept = wanted.filter((endpoint) => olds.tokenIds?.[endpoint] && olds.tokens?.[endpoint]);
  const gone = Object.fromEntries(
    Object.entries(olds.tokenIds ?? {}).filter(([endpoint]) => !wanted.includes(endpoint)),
  );
  const fresh = await issue(
    news,
    wanted.filter((endpoint) => !kept.includes(endpoint)),
  );
  await registerNodes(news);
  await revoke(news.organization, gone);
  const pick = (map: Record<string, string> | undefined) =>
    Object.fromEntries(kept.map((endpoint) => [endpoint, map?.[endpoint] ?? ""]));
  return {
    ...news,
    tokens: { ...pick(olds.tokens), ...fresh.tokens },
    tokenIds: { ...pick(olds.tokenIds), ...fresh.tokenIds },
  };
}

export const orgAccessProvider: pulumi.dynamic.ResourceProvider = {
  async configure(request) {
    credentials.configure(request.config);
  },

  async check(_olds, news) {
    const { inputs, failures } = checkInputs(orgAccessInputsSchema, news);
    if (failures.length > 0 || containsUnknown(inputs)) return { inputs, failures };
    const access = inputs as OrgAccessInputs;
    access.nodes = access.nodes.map(normalizeEndpoint);
    if (access.loadBalancer) access.loadBalancer = normalizeEndpoint(access.loadBalancer);
    credentials.name(endpointsOf(access));
    return { inputs, failures };
  },

  async diff(_id, olds: OrgAccessOutputs, news: OrgAccessInputs) {
    const replaces = [
      ...(differs(olds.organization, news.organization) ? ["organization"] : []),
      ...(differs(olds.label, news.label) ? ["label"] : []),
    ];
    // A token revoked behind the stack's back (found by refresh) is issued again by the next up.
    const missing = containsUnknown(news) || endpointsOf(news).some((endpoint) => !olds.tokenIds?.[endpoint]);
    const changes =
      replaces.length > 0 ||
      missing ||
      differs(olds.nodes, news.nodes, true) ||
      differs(olds.loadBalancer, news.loadBalancer);
    return { changes, replaces, deleteBeforeReplace: false };
  },

  async create(inputs: OrgAccessInputs) {
    credentials.name(endpointsOf(inputs));
    return { id: inputs.organization, outs: await reconcile({}, inputs) };
  },

  async update(_id, olds: OrgAccessOutputs, news: OrgAccessInputs) {
    credentials.name([...endpointsOf(news), ...Object.keys(olds.tokenIds ?? {})]);
    return { outs: await reconcile(olds, news) };
  },

  /** `pulumi refresh`: a token revoked on a node leaves the outputs (the next `up` issues it again). */
  async read(id, props: OrgAccessOutputs) {
    credentials.name(Object.keys(props.tokenIds ?? {}));
    const inputs = inputsOf(orgAccessInputsSchema, props) as OrgAccessInputs;
    const present = await Promise.all(
      Object.entries(props.tokenIds ?? {}).map(async ([endpoint, tokenId]) => {
        const listed = await clientFor(endpoint).listOrgTokens(props.organization);
        return listed.some((token) => token.id === tokenId) ? [endpoint] : [];
      }),
    );
    const still = present.flat();
    const keep = (map: Record<string, string> | undefined) =>
      Object.fromEntries(Object.entries(map ?? {}).filter(([endpoint]) => still.includes(endpoint)));
    return { id, props: { ...inputs, tokens: keep(props.tokens), tokenIds: keep(props.tokenIds) }, inputs };
  },

  async delete(_id, props: OrgAccessOutputs) {
    credentials.name(Object.keys(props.tokenIds ?? {}));
    await revoke(props.organization, props.tokenIds ?? {});
  },
};
