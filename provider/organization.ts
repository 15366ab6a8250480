/**
 * LoadBalancedOrganization: the org on its primary agent, its copies on the secondaries, and the
 * promotion, demotion, move and manual-sync flows (DESIGN.md §3).
 */
import type * as pulumi from "@pulumi/pulumi";
import {
  normalizeEndpoint,
  organizationInputsSchema,
  type OrganizationInputs,
  type OrgSettingsInput,
  type OrgStatus,
  type SecondarySyncStatus,
} from "../sdk/schemas";
import { AgentUnreachableError, isNotFound, type AgentClient } from "./client";
import { clientFor, configureCredentials } from "./credentials";
import { checkInputs, containsUnknown, differs, partialFailure } from "./inputs";
import { inspectOrg, requestSync, syncLogger, SyncError, toSyncStatus } from "./sync";
import { type LoadBalancing, routeOrg, servingNodes, unroute } from "./balancer";

export interface OrganizationOutputs extends OrganizationInputs {
  orgId: string;
  generation: number;
  digest: string;
  syncStatus: SecondarySyncStatus[];
  inSync: boolean;
}

const activeOf = (inputs: Pick<OrganizationInputs, "loadBalanced" | "secondaries">): string[] =>
  inputs.loadBalanced ? (inputs.secondaries ?? []).map(normalizeEndpoint) : [];

const refOf = (inputs: OrganizationInputs) => ({
  name: inputs.name,
  primary: inputs.primary,
  loadBalancer: inputs.loadBalancer,
});

/** The org's load-balancing settings: its FTP address on the load balancer and the nodes' weights. */
const balancingOf = (inputs: OrganizationInputs): LoadBalancing => ({
  ftp: inputs.loadBalancerFtp,
  weights: inputs.nodeWeights,
});

const settingsOf = (inputs: OrganizationInputs): OrgSettingsInput => ({
  displayName: inputs.displayName ?? "",
  loadBalanced: inputs.loadBalanced ?? false,
  secondaries: (inputs.secondaries ?? []).map(normalizeEndpoint),
  managedBy: inputs.managedBy ?? "",
});

/** The outputs: the inputs, the primary's generation and digest, and where each secondary stands. */
function outputsOf(
  inputs: OrganizationInputs,
  primary: { generation: number; digest: string },
  secondaries: SecondarySyncStatus[],
): OrganizationOutputs {
  return {
    ...inputs,
    orgId: inputs.name,
    generation: primary.generation,
    digest: primary.digest,
    syncStatus: secondaries,
    inSync: secondaries.every((secondary) => secondary.state === "in-sync"),
  };
}

/** Syncs and returns the outputs; a failed secondary becomes a partial failure that keeps the outputs. */
async function syncAndReport(inputs: OrganizationInputs, full: boolean, extra: SecondarySyncStatus[] = []) {
  const report = await requestSync(clientFor(inputs.primary), inputs.name, clientFor, { full, log: syncLogger });
  const secondaries = [...report.secondaries, ...extra];
  const outs = outputsOf(inputs, report, secondaries);
  try {
    await routeOrg(refOf(inputs), servingNodes(report.primary, secondaries), clientFor, balancingOf(inputs));
  } catch (error) {
    const message = `organization ${inputs.name}: the load balancer ${inputs.loadBalancer} was not updated: ${(error as Error).message}`;
    throw partialFailure(`${message}. Run 'pulumi up' again once it is reachable.`, inputs.name, { ...outs });
  }
  if (!outs.inSync) {
    const error = new SyncError({ ...report, secondaries, inSync: false });
    throw partialFailure(error.message, inputs.name, { ...outs });
  }
  return outs;
}

async function getOrgOrUndefined(client: AgentClient, org: string): Promise<OrgStatus | undefined> {
  try {
    return await client.getOrg(org);
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

/** Refuses to take over an org this resource did not create, unless `adopt` says so. */
function assertMayTakeOver(existing: OrgStatus, inputs: OrganizationInputs, endpoint: string): void {
  if (existing.role === "secondary") {
    throw new Error(
      `organization ${inputs.name}: ${endpoint} holds a secondary copy of it (primary ${existing.primary ?? "unknown"}); ` +
        `it cannot also be its primary`,
    );
  }
  if (!inputs.adopt && existing.managedBy !== (inputs.managedBy ?? "")) {
    throw new Error(
      `organization ${inputs.name} already exists on ${endpoint} and was not created by this resource ` +
        `(managed by '${existing.managedBy || "nobody"}'); set adopt: true to take it over`,
    );
  }
}

/** Removes the org's copy from secondaries that should no longer hold it (demotion). */
async function removeCopies(org: string, endpoints: string[]): Promise<SecondarySyncStatus[]> {
  const failures = await Promise.all(
    endpoints.map(async (endpoint): Promise<SecondarySyncStatus | undefined> => {
      try {
        await clientFor(endpoint).deleteReplica(org);
        syncLogger(`demote ${org}: removed the copy from ${endpoint}`);
        return undefined;
      } catch (error) {
        if (isNotFound(error)) return undefined;
        return {
          endpoint,
          state: error instanceof AgentUnreachableError ? "unreachable" : "drifted",
          generation: 0,
          digest: "",
          lastSyncedAt: "",
          error: `its copy is still to be removed: ${(error as Error).message}`,
        };
      }
    }),
  );
  return failures.filter((failure): failure is SecondarySyncStatus => failure !== undefined);
}

/** Moves an org with its users and services to a new primary, then removes it from the old one. */
async function moveOrg(olds: OrganizationOutputs, news: OrganizationInputs): Promise<void> {
  const from = clientFor(olds.primary);
  const to = clientFor(news.primary);
  const snapshot = await from.snapshot(news.name);
  const existing = await getOrgOrUndefined(to, news.name);
  if (existing?.role === "secondary") await to.deleteReplica(news.name);
  else if (existing) assertMayTakeOver(existing, news, to.endpoint);
  await to.putOrg(news.name, settingsOf(news));
  for (const { username, managedBy, ...user } of snapshot.users) {
    await to.putUser(news.name, username, { ...user, managedBy });
  }
  for (const { name, managedBy, ...service } of snapshot.services) {
    await to.putService(news.name, name, { ...service, managedBy });
  }
  const moved = await to.snapshot(news.name);
  const names = (list: { username?: string; name?: string }[]) => list.map((item) => item.username ?? item.name).sort();
  if (differs(names(moved.users), names(snapshot.users)) || differs(names(moved.services), names(snapshot.services))) {
    throw new Error(
      `organization ${news.name}: the copy on ${to.endpoint} does not match ${from.endpoint}; nothing was removed`,
    );
  }
  await from.deleteOrg(news.name);
  syncLogger(
    `move ${news.name}: ${from.endpoint} → ${to.endpoint} (${moved.users.length} users, ${moved.services.length} services)`,
  );
}

export const organizationProvider: pulumi.dynamic.ResourceProvider = {
  async configure(request) {
    configureCredentials(request.config);
  },

  async check(_olds, news) {
    const { inputs, failures } = checkInputs(organizationInputsSchema, news);
    if (failures.length > 0 || containsUnknown(inputs)) return { inputs, failures };
    // Canonical endpoints, so "http://h:1/" and "http://h:1" never make a diff.
    const org = inputs as OrganizationInputs;
    org.primary = normalizeEndpoint(org.primary);
    if (org.secondaries) org.secondaries = org.secondaries.map(normalizeEndpoint);
    if (org.loadBalancer) org.loadBalancer = normalizeEndpoint(org.loadBalancer);
    if (org.nodeWeights) {
      org.nodeWeights = Object.fromEntries(
        Object.entries(org.nodeWeights).map(([endpoint, weight]) => [normalizeEndpoint(endpoint), weight]),
      );
    }
    return { inputs, failures };
  },

  async diff(_id, olds: OrganizationOutputs, news: OrganizationInputs) {
    const replaces = differs(olds.name, news.name) ? ["name"] : [];
    const settingsChanged =
      differs(olds.displayName ?? "", news.displayName ?? "") ||
      differs(olds.primary, news.primary) ||
      differs(olds.loadBalanced ?? false, news.loadBalanced ?? false) ||
      differs(olds.secondaries ?? [], news.secondaries ?? [], true) ||
      differs(olds.syncTrigger, news.syncTrigger) ||
      differs(olds.loadBalancer, news.loadBalancer) ||
      differs(olds.loadBalancerFtp, news.loadBalancerFtp) ||
      differs(olds.nodeWeights ?? {}, news.nodeWeights ?? {}) ||
      differs(olds.managedBy ?? "", news.managedBy ?? "");
    // A secondary left behind (a failed sync, or drift found by refresh) makes the next `up` heal it.
    const needsHeal = (olds.syncStatus ?? []).some((secondary) => secondary.state !== "in-sync");
    return { changes: replaces.length > 0 || settingsChanged || needsHeal, replaces, deleteBeforeReplace: false };
  },

  async create(inputs: OrganizationInputs) {
    const primary = clientFor(inputs.primary);
    const existing = await getOrgOrUndefined(primary, inputs.name);
    if (existing) assertMayTakeOver(existing, inputs, primary.endpoint);
    await primary.putOrg(inputs.name, settingsOf(inputs));
    return { id: inputs.name, outs: await syncAndReport(inputs, false) };
  },

  async update(_id, olds: OrganizationOutputs, news: OrganizationInputs) {
    if (normalizeEndpoint(olds.primary) !== normalizeEndpoint(news.primary)) await moveOrg(olds, news);
    const keep = new Set(activeOf(news));
    const held = new Set([...activeOf(olds), ...(olds.syncStatus ?? []).map((secondary) => secondary.endpoint)]);
    const demoted = [...held].filter((endpoint) => !keep.has(endpoint) && endpoint !== normalizeEndpoint(news.primary));
    if (olds.loadBalancer && olds.loadBalancer !== news.loadBalancer)
      await unroute(clientFor(olds.loadBalancer), news.name);
    // Demotion drains first: the load balancer stops sending to a secondary before its copy goes.
    const primaryEndpoint = clientFor(news.primary).endpoint;
    await routeOrg(
      refOf(news),
      servingNodes(primaryEndpoint, olds.syncStatus ?? [], demoted),
      clientFor,
      balancingOf(news),
    );
    const pendingRemovals = await removeCopies(news.name, demoted);
    await clientFor(news.primary).putOrg(news.name, settingsOf(news));
    const full = differs(olds.syncTrigger, news.syncTrigger);
    return { outs: await syncAndReport(news, full, pendingRemovals) };
  },

  async read(id, props: OrganizationOutputs) {
    const primary = clientFor(props.primary);
    let inspection: Awaited<ReturnType<typeof inspectOrg>>;
    try {
      inspection = await inspectOrg(primary, id, clientFor);
    } catch (error) {
      if (isNotFound(error)) return { id: "", props: {} };
      throw error;
    }
    const status = inspection.primary;
    if (status.role !== "primary") return { id: "", props: {} };
    // The stored inputs, with what the primary now says in place of the settings it holds.
    const stored = Object.keys(organizationInputsSchema.shape).filter((key) => key in props);
    const inputs: OrganizationInputs = {
      ...(Object.fromEntries(stored.map((key) => [key, props[key as keyof OrganizationInputs]])) as OrganizationInputs),
      name: id,
      primary: primary.endpoint,
      loadBalanced: status.loadBalanced,
      secondaries: status.secondaries,
      managedBy: status.managedBy,
    };
    if (props.displayName !== undefined || status.displayName !== "") inputs.displayName = status.displayName;
    return { id, props: outputsOf(inputs, status, inspection.secondaries.map(toSyncStatus)), inputs };
  },

  async delete(id, props: OrganizationOutputs) {
    if (props.loadBalancer) await unroute(clientFor(props.loadBalancer), id);
    const held = [...activeOf(props), ...(props.syncStatus ?? []).map((secondary) => secondary.endpoint)];
    const failures = await removeCopies(id, [...new Set(held)]);
    if (failures.length > 0) {
      throw new Error(
        `organization ${id}: could not remove the copies on ${failures.map((f) => `${f.endpoint} (${f.error})`).join(", ")}; ` +
          `nothing was deleted on the primary. Run 'pulumi destroy' again once they are reachable.`,
      );
    }
    try {
      await clientFor(props.primary).deleteOrg(id);
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  },
};
