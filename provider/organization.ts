/**
 * LoadBalancedOrganization: the org on its primary agent, its copies on the secondaries, and the
 * promotion, demotion, move, failover and manual-sync flows (DESIGN.md §3; failover.ts).
 */
import type * as pulumi from "@pulumi/pulumi";
import { type FencingStatus, type SecondarySyncStatus } from "../sdk/outputs";
import { activeSecondaries, normalizeEndpoint, type OrgSettingsInput, type OrgStatus } from "../wire";
import { organizationDefaults, organizationInputsSchema, withDefaults, type OrganizationInputs } from "../sdk/inputs";
import { AgentError, AgentUnreachableError, unlessNotFound } from "./client";
import { reasonOf } from "./agent-errors";
import { clientFor, credentials, scheduler, syncLog } from "./context";
import { changePrimary, fencingNote, fencingPending, inspectFormer, removeFromFormer } from "./failover";
import { checkInputs, containsUnknown, differs, inputsOf, partialFailure } from "./inputs";
import { inspectOrg, splitNamed, SyncError, toSyncStatus, unexpectedSecondaryLine } from "./sync";
import { type LoadBalancing, routeOrg, servingNodes, unroute } from "./balancer";

export interface OrganizationOutputs extends OrganizationInputs {
  orgId: string;
  generation: number;
  digest: string;
  /** Raised by each failover or move: copies refuse replication from a lower epoch. */
  epoch: number;
  syncStatus: SecondarySyncStatus[];
  inSync: boolean;
  /** Former primaries not yet fenced (see failover.ts); empty once every one is. */
  fencing: FencingStatus[];
}

/**
 * Notes the agents the program's inputs name: the only ones its syncs send a token to
 * (sync/named.ts). From state, the secondaries come from `syncStatus` (the copies a sync or a
 * refresh reached), not from `secondaries`, which a refresh copies from the primary's record.
 */
function nameEndpoints(org: Partial<OrganizationOutputs>, from: "program" | "state"): void {
  credentials.name([
    org.primary,
    org.loadBalancer,
    ...(from === "program" ? (org.secondaries ?? []) : []),
    ...(org.syncStatus ?? []).map((secondary) => secondary.endpoint),
    ...(org.fencing ?? []).map((entry) => entry.endpoint),
  ]);
}

/** The org's settings as the agent holds them: the inputs, each left-out setting at the agent's default. */
const settingsOf = (inputs: OrganizationInputs): Required<OrgSettingsInput> => {
  const settings = withDefaults(inputs, organizationDefaults);
  return {
    displayName: settings.displayName,
    loadBalanced: settings.loadBalanced,
    secondaries: settings.secondaries.map(normalizeEndpoint),
    managedBy: settings.managedBy,
  };
};

const activeOf = (inputs: OrganizationInputs): string[] => activeSecondaries(settingsOf(inputs));

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

/** The outputs: the inputs, the primary's position, where each secondary stands, former primaries left. */
function outputsOf(
  inputs: OrganizationInputs,
  primary: { generation: number; digest: string; epoch: number },
  secondaries: SecondarySyncStatus[],
  fencing: FencingStatus[],
): OrganizationOutputs {
  return {
    ...inputs,
    orgId: inputs.name,
    generation: primary.generation,
    digest: primary.digest,
    epoch: primary.epoch,
    syncStatus: secondaries,
    inSync: secondaries.every((secondary) => secondary.state === "in-sync"),
    fencing,
  };
}

/** Former primaries the program lists as secondaries: the sync demotes them into copies. */
function fencedBySync(former: string[], secondaries: SecondarySyncStatus[]): FencingStatus[] {
  return former.flatMap((endpoint): FencingStatus[] => {
    const status = secondaries.find((secondary) => secondary.endpoint === endpoint);
    if (!status || status.state === "in-sync") return [];
    const state = status.state === "unreachable" ? "unreachable" : "stale-primary";
    return [{ endpoint, state, ...(status.error ? { error: status.error } : {}) }];
  });
}

/**
 * Syncs and returns the outputs; a failed secondary becomes a partial failure that keeps the
 * outputs. `fencing.listed` are former primaries among the secondaries (fenced once in sync),
 * `fencing.left` the others still to be fenced.
 */
async function syncAndReport(
  inputs: OrganizationInputs,
  full: boolean,
  extra: CopyRemovals = { statuses: [], reasons: {} },
  fencing: { listed: string[]; left: FencingStatus[] } = { listed: [], left: [] },
) {
  const report = await scheduler.requestSync(clientFor(inputs.primary), inputs.name, clientFor, {
    full,
    log: syncLog,
    isNamed: credentials.isNamed,
  });
  for (const endpoint of report.unexpected ?? []) syncLog(unexpectedSecondaryLine(inputs.name, endpoint));
  const secondaries = [...report.secondaries, ...extra.statuses];
  const former = [...fencing.left, ...fencedBySync(fencing.listed, report.secondaries)];
  const outs = outputsOf(inputs, report, secondaries, former);
  try {
    await routeOrg(refOf(inputs), servingNodes(report.primary, secondaries), clientFor, balancingOf(inputs));
  } catch (error) {
    const message = `organization ${inputs.name}: the load balancer ${inputs.loadBalancer} was not updated: ${(error as Error).message}`;
    throw partialFailure(`${message}. Run 'pulumi up' again once it is reachable.`, inputs.name, { ...outs });
  }
  // A former primary still down is fenced once it answers: it does not fail this up (users and
  // services follow the new primary now), though the outputs say it is not in sync.
  const awaited = new Set(fencing.left.map((entry) => entry.endpoint));
  if (secondaries.some((secondary) => secondary.state !== "in-sync" && !awaited.has(secondary.endpoint))) {
    const error = new SyncError({
      ...report,
      secondaries,
      inSync: false,
      reasons: { ...report.reasons, ...extra.reasons },
    });
    throw partialFailure(error.message, inputs.name, { ...outs });
  }
  return outs;
}

/** Refuses to take over an org this resource did not create, unless `adopt` says so. */
function assertOwned(existing: OrgStatus, inputs: OrganizationInputs, endpoint: string): void {
  if (!inputs.adopt && existing.managedBy !== settingsOf(inputs).managedBy) {
    throw new Error(
      `organization ${inputs.name} already exists on ${endpoint} and was not created by this resource ` +
        `(managed by '${existing.managedBy || "nobody"}'); set adopt: true to take it over`,
    );
  }
}

/** A new org's primary must not hold a copy of it, nor someone else's org of that name. */
function assertMayCreateOn(existing: OrgStatus, inputs: OrganizationInputs, endpoint: string): void {
  if (existing.role === "secondary") {
    throw new Error(
      `organization ${inputs.name}: ${endpoint} holds a secondary copy of it (primary ${existing.primary ?? "unknown"}); ` +
        `it cannot also be its primary`,
    );
  }
  assertOwned(existing, inputs, endpoint);
}

/**
 * The secondaries that may hold the org's copy, per the state: those a refresh copied from the
 * primary's record but the stack never named are reported, not contacted.
 */
function heldCopies(org: string, state: OrganizationOutputs): string[] {
  const listed = [...new Set([...activeOf(state), ...(state.syncStatus ?? []).map((secondary) => secondary.endpoint)])];
  const { named, unexpected } = splitNamed(listed, credentials.isNamed);
  for (const endpoint of unexpected) syncLog(unexpectedSecondaryLine(org, endpoint));
  return named;
}

/** Copies still to be removed: their status as the org's output shows it, and why (without the endpoint). */
interface CopyRemovals {
  statuses: SecondarySyncStatus[];
  reasons: Record<string, string>;
}

/** Removes the org's copy from secondaries that should no longer hold it (demotion). */
async function removeCopies(org: string, endpoints: string[]): Promise<CopyRemovals> {
  const left: CopyRemovals = { statuses: [], reasons: {} };
  await Promise.all(
    endpoints.map(async (endpoint) => {
      try {
        if (await unlessNotFound(clientFor(endpoint).deleteReplica(org))) {
          syncLog(`demote ${org}: removed the copy from ${endpoint}`);
        }
      } catch (error) {
        left.statuses.push({
          endpoint,
          state: error instanceof AgentUnreachableError ? "unreachable" : "drifted",
          generation: 0,
          digest: "",
          lastSyncedAt: "",
          error: `its copy is still to be removed: ${(error as Error).message}`,
        });
        left.reasons[endpoint] = `its copy is still to be removed: ${reasonOf(error)}`;
      }
    }),
  );
  left.statuses.sort((a, b) => endpoints.indexOf(a.endpoint) - endpoints.indexOf(b.endpoint));
  return left;
}

/** The nodes among `endpoints` that do not answer now, as former primaries still to be fenced. */
async function unreachableAmong(endpoints: string[]): Promise<FencingStatus[]> {
  const answers = await Promise.all(
    endpoints.map((endpoint) =>
      clientFor(endpoint)
        .health()
        .then(
          () => undefined,
          (error: unknown): FencingStatus | undefined => {
            if (!(error instanceof AgentUnreachableError)) return undefined; // it answers: the sync tells more
            return { endpoint, state: "unreachable", error: error.message };
          },
        ),
    ),
  );
  return answers.filter((entry): entry is FencingStatus => entry !== undefined);
}

export const organizationProvider: pulumi.dynamic.ResourceProvider = {
  async configure(request) {
    credentials.configure(request.config);
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
    nameEndpoints(org, "program");
    return { inputs, failures };
  },

  async diff(_id, olds: OrganizationOutputs, news: OrganizationInputs) {
    nameEndpoints(olds, "state");
    nameEndpoints(news, "program");
    const replaces = differs(olds.name, news.name) ? ["name"] : [];
    const [before, after] = [withDefaults(olds, organizationDefaults), withDefaults(news, organizationDefaults)];
    const settingsChanged =
      differs(before.displayName, after.displayName) ||
      differs(olds.primary, news.primary) ||
      differs(before.loadBalanced, after.loadBalanced) ||
      differs(before.secondaries, after.secondaries, true) ||
      differs(olds.syncTrigger, news.syncTrigger) ||
      differs(olds.loadBalancer, news.loadBalancer) ||
      differs(olds.loadBalancerFtp, news.loadBalancerFtp) ||
      differs(before.nodeWeights, after.nodeWeights) ||
      differs(before.managedBy, after.managedBy);
    // A secondary left behind (a failed sync, or drift found by refresh), or a former primary not
    // yet fenced, makes the next `up` heal it.
    const needsHeal =
      (olds.syncStatus ?? []).some((secondary) => secondary.state !== "in-sync") || (olds.fencing ?? []).length > 0;
    // The engine shows no reason for a change the state alone asks for: say it (stdout reaches the CLI).
    for (const entry of olds.fencing ?? []) console.log(`lbhosting: ${fencingPending(news.name, entry)}`);
    return { changes: replaces.length > 0 || settingsChanged || needsHeal, replaces, deleteBeforeReplace: false };
  },

  async create(inputs: OrganizationInputs) {
    nameEndpoints(inputs, "program");
    const primary = clientFor(inputs.primary);
    const existing = await unlessNotFound(primary.getOrg(inputs.name));
    if (existing) assertMayCreateOn(existing, inputs, primary.endpoint);
    // The read above only words the usual refusals; the write carries the owner mark, so another
    // stack creating the same org between the two is refused by the agent, in the write itself.
    const settings = settingsOf(inputs);
    await primary
      .putOrg(inputs.name, settings, false, inputs.adopt ? undefined : settings.managedBy)
      .catch((error: unknown) => {
        if (!(error instanceof AgentError && error.code === "managed_elsewhere")) throw error;
        throw new Error(
          `organization ${inputs.name} already exists on ${primary.endpoint} and was not created by this resource ` +
            `(${error.reason}); set adopt: true to take it over`,
        );
      });
    return { id: inputs.name, outs: await syncAndReport(inputs, false) };
  },

  async update(_id, olds: OrganizationOutputs, news: OrganizationInputs) {
    nameEndpoints(olds, "state");
    nameEndpoints(news, "program");
    const primary = clientFor(news.primary);
    const previous = clientFor(olds.primary);
    // Copies may be removed, moved or promoted: what this process verified of them no longer holds.
    scheduler.forget(previous, news.name);
    scheduler.forget(primary, news.name);
    const keep = new Set(activeOf(news));
    const held = new Set(heldCopies(news.name, olds));
    // Former primaries to fence: those the stack remembers, and the old one when the primary changes.
    const former = new Set((olds.fencing ?? []).map((entry) => entry.endpoint));
    if (previous.endpoint !== primary.endpoint) {
      await changePrimary({
        org: news.name,
        from: previous,
        to: primary,
        others: [...new Set([...held, ...keep, ...former])].filter(
          (endpoint) => endpoint !== previous.endpoint && endpoint !== primary.endpoint,
        ),
        clientFor,
        recorded: { generation: olds.generation ?? 0, epoch: olds.epoch ?? 0 },
        allowDataLoss: withDefaults(news, organizationDefaults).allowDataLoss,
        mayTakeOver: (existing) => assertOwned(existing, news, primary.endpoint),
        log: syncLog,
      });
      former.add(previous.endpoint);
    }
    former.delete(primary.endpoint);
    const demoted = [...held].filter((endpoint) => !keep.has(endpoint) && endpoint !== primary.endpoint);
    if (olds.loadBalancer && olds.loadBalancer !== news.loadBalancer)
      await unroute(clientFor(olds.loadBalancer), news.name);
    // Demotion drains first: the load balancer stops sending to a secondary before its copy goes,
    // and never sends to a former primary.
    await routeOrg(
      refOf(news),
      servingNodes(primary.endpoint, olds.syncStatus ?? [], [...demoted, ...former]),
      clientFor,
      balancingOf(news),
    );
    const pendingRemovals = await removeCopies(
      news.name,
      demoted.filter((endpoint) => !former.has(endpoint)),
    );
    // A former primary the program lists as a secondary is demoted by the sync (its snapshot
    // carries the higher epoch); while it is down it stays out of the org's record, so no sync
    // (the org's or a member's) waits on it, and an update puts it back once it answers.
    const down = await unreachableAmong([...former].filter((endpoint) => keep.has(endpoint)));
    const settings = settingsOf(news);
    const { epoch } = await primary.putOrg(news.name, {
      ...settings,
      secondaries: settings.secondaries.filter((endpoint) => !down.some((entry) => entry.endpoint === endpoint)),
    });
    // From any other former primary the org is removed.
    const fencing = {
      listed: [...former].filter(
        (endpoint) => keep.has(endpoint) && !down.some((entry) => entry.endpoint === endpoint),
      ),
      left: [
        ...(await removeFromFormer(
          news.name,
          [...former].filter((endpoint) => !keep.has(endpoint)),
          epoch,
          clientFor,
          syncLog,
        )),
        ...down,
      ],
    };
    for (const entry of fencing.left) syncLog(fencingNote(news.name, entry));
    for (const entry of down) {
      pendingRemovals.statuses.push({
        endpoint: entry.endpoint,
        state: "unreachable",
        generation: 0,
        digest: "",
        lastSyncedAt: "",
        ...(entry.error ? { error: entry.error } : {}),
      });
      pendingRemovals.reasons[entry.endpoint] = `the former primary is unreachable: ${entry.error ?? "no answer"}`;
    }
    const full = differs(olds.syncTrigger, news.syncTrigger);
    return { outs: await syncAndReport(news, full, pendingRemovals, fencing) };
  },

  async read(id, props: OrganizationOutputs) {
    nameEndpoints(props, "state");
    const primary = clientFor(props.primary);
    const inspection = await unlessNotFound(inspectOrg(primary, id, clientFor, credentials.isNamed));
    const status = inspection?.primary;
    if (!inspection || status?.role !== "primary") return { id: "", props: {} };
    // The stored inputs as the program gave them; a setting changes only where the primary holds
    // something else (drift), so a default the program did not set stays unset.
    const inputs = inputsOf(organizationInputsSchema, props) as OrganizationInputs;
    const stored = settingsOf(props);
    if (stored.loadBalanced !== status.loadBalanced) inputs.loadBalanced = status.loadBalanced;
    if (differs(stored.secondaries, status.secondaries, true)) inputs.secondaries = status.secondaries;
    if (stored.displayName !== status.displayName) inputs.displayName = status.displayName;
    if (stored.managedBy !== status.managedBy) inputs.managedBy = status.managedBy;
    const former = (props.fencing ?? []).map((entry) => entry.endpoint).filter((e) => e !== primary.endpoint);
    const fencing = await inspectFormer(id, former, status.epoch, activeSecondaries(status), clientFor);
    for (const entry of fencing) syncLog(fencingNote(id, entry));
    for (const endpoint of inspection.unexpected) syncLog(unexpectedSecondaryLine(id, endpoint));
    return { id, props: outputsOf(inputs, status, inspection.secondaries.map(toSyncStatus), fencing), inputs };
  },

  async delete(id, props: OrganizationOutputs) {
    nameEndpoints(props, "state");
    if (props.loadBalancer) await unroute(clientFor(props.loadBalancer), id);
    const former = (props.fencing ?? []).map((entry) => entry.endpoint);
    const held = heldCopies(id, props);
    const { statuses: failures } = await removeCopies(
      id,
      [...new Set(held)].filter((endpoint) => !former.includes(endpoint)),
    );
    // Best effort: a former primary that never comes back is fenced (its epoch is lower) and unused.
    await removeFromFormer(id, former, props.epoch ?? 0, clientFor, syncLog);
    if (failures.length > 0) {
      throw new Error(
        `organization ${id}: could not remove the copies on ${failures.map((f) => `${f.endpoint} (${f.error})`).join(", ")}; ` +
          `nothing was deleted on the primary. Run 'pulumi destroy' again once they are reachable.`,
      );
    }
    await unlessNotFound(clientFor(props.primary).deleteOrg(id));
    scheduler.forget(clientFor(props.primary), id);
  },
};
