/**
 * Changing an organization's primary, and fencing the primaries it had before.
 *
 * - Old primary reachable: a **move** — the new primary imports the old one's snapshot as a copy
 *   and that copy is promoted.
 * - Old primary lost (unreachable, or the org gone from it): a **failover** — the copy the new
 *   primary already holds is promoted in place, at its generation, unless it is behind what the
 *   stack recorded or another reachable copy (then only with `allowDataLoss`).
 *
 * Either way the org's epoch is raised, so the old primary is **fenced**: every copy refuses its
 * replication (HTTP 409 stale_epoch), and the stack keeps it in the org's `fencing` output until
 * it is removed from it, or demoted into a copy when the program lists it as a secondary.
 * `planPrimaryChange` and `formerState` are the pure decisions; the rest does the requests.
 */
import type { FencingStatus } from "../sdk/outputs";
import type { OrgStatus } from "../wire";
import { type AgentClient, AgentUnreachableError, type ClientFactory, unlessNotFound } from "./client";

/** What one node said about the org. */
export interface NodeView {
  endpoint: string;
  /** The org as the node holds it; undefined when it holds none (or did not answer). */
  status?: OrgStatus;
  /** Why the node could not be asked. */
  unreachable?: string;
}

export type PrimaryChange =
  /** The old primary is live: copy the org from it, promote the copy at `epoch`. */
  | { kind: "move"; epoch: number }
  /** Failover: promote the new primary's copy (as last seen) at `epoch`; `lost` says what is given up. */
  | { kind: "promote"; epoch: number; generation: number; digest: string; lost?: string }
  /** The new primary already is the primary at the newest epoch (an interrupted `up` promoted it). */
  | { kind: "promoted"; epoch: number }
  | { kind: "refuse"; message: string };

export interface PrimaryChangeInput {
  org: string;
  /** The old primary, the new one, and every other node that holds or held a copy. */
  from: NodeView;
  to: NodeView;
  others: NodeView[];
  /** What the stack recorded for the org (its outputs after the last operation). */
  recorded: { generation: number; epoch: number };
  allowDataLoss: boolean;
}

/** Orders two positions in the org's history: a higher epoch wins, then a higher generation. */
const ahead = (a: { epoch: number; generation: number }, b: { epoch: number; generation: number }): boolean =>
  a.epoch > b.epoch || (a.epoch === b.epoch && a.generation > b.generation);

const at = (position: { epoch: number; generation: number }) =>
  `generation ${position.generation} (epoch ${position.epoch})`;

/** Decides how the org reaches its new primary, or why it must not. */
export function planPrimaryChange(input: PrimaryChangeInput): PrimaryChange {
  const { org, from, to, recorded } = input;
  const views = [from, to, ...input.others];
  const newest = Math.max(recorded.epoch, ...views.flatMap((view) => (view.status ? [view.status.epoch] : [])));
  const epoch = newest + 1;
  const lead = `organization ${org}: cannot make ${to.endpoint} its primary`;
  if (from.status?.role === "primary" && from.status.epoch === newest) return { kind: "move", epoch };

  const fromProblem = from.unreachable
    ? `is unreachable (${from.unreachable})`
    : from.status
      ? `holds it at an older epoch ${from.status.epoch}`
      : "no longer holds it";
  const rival = views.find((view) => view !== to && view.status?.role === "primary" && view.status.epoch === newest);
  if (rival) {
    return {
      kind: "refuse",
      message: `${lead}: ${rival.endpoint} holds it as the primary at epoch ${newest}; set primary to ${rival.endpoint}`,
    };
  }
  const copies = input.others.filter((view) => view.status?.role === "secondary").map((view) => view.endpoint);
  if (to.unreachable) return { kind: "refuse", message: `${lead}: it is unreachable (${to.unreachable})` };
  const target = to.status;
  if (!target) {
    const hint =
      copies.length > 0 ? `set primary to a node holding a copy (${copies.join(", ")})` : "no node holds a copy";
    return {
      kind: "refuse",
      message: `${lead}: it holds no copy of it to promote, and the old primary ${from.endpoint} ${fromProblem}; ${hint}, or bring ${from.endpoint} back`,
    };
  }
  if (target.role === "primary") {
    if (target.epoch === newest && newest > recorded.epoch) return { kind: "promoted", epoch: newest };
    return {
      kind: "refuse",
      message: `${lead}: it already holds it as a primary of its own (epoch ${target.epoch}), not a copy, while the old primary ${from.endpoint} ${fromProblem}`,
    };
  }

  // A failover: is the copy behind anything that may hold changes Pulumi recorded?
  const losses: string[] = [];
  if (target.drifted) losses.push(`it was edited locally (drifted)`);
  if (ahead(recorded, target)) {
    losses.push(`it is behind ${at(recorded)}, which the stack recorded for the primary ${from.endpoint}`);
  }
  const best = views
    .filter((view) => view !== to && view.status?.role === "secondary")
    .map((view) => ({ endpoint: view.endpoint, position: view.status as OrgStatus }))
    .filter((copy) => ahead(copy.position, target))
    .sort((a, b) => (ahead(a.position, b.position) ? -1 : 1))[0];
  if (best) losses.push(`it is behind the copy on ${best.endpoint} at ${at(best.position)}`);
  if (losses.length > 0 && !input.allowDataLoss) {
    const better = best ? `set primary to ${best.endpoint}, or ` : "";
    return {
      kind: "refuse",
      message:
        `${lead}: the old primary ${from.endpoint} ${fromProblem}, and the copy on ${to.endpoint} is at ${at(target)}: ` +
        `${losses.join("; ")}. To fail over anyway, ${better}set allowDataLoss: true (what only the other nodes hold is lost)`,
    };
  }
  return {
    kind: "promote",
    epoch,
    generation: target.generation,
    digest: target.digest,
    ...(losses.length > 0 ? { lost: losses.join("; ") } : {}),
  };
}

/** Where a former primary stands against the org's epoch; undefined once it is fenced. */
export function formerState(
  endpoint: string,
  view: NodeView,
  epoch: number,
  listed: boolean,
): FencingStatus | undefined {
  if (view.unreachable) return { endpoint, state: "unreachable", error: view.unreachable };
  const status = view.status;
  if (!status) return undefined; // holds nothing
  const position = { epoch: status.epoch, generation: status.generation };
  if (status.role === "primary") return { endpoint, state: "stale-primary", ...position };
  if (!listed) return { endpoint, state: "stale-copy", ...position };
  // A copy the program lists: the sync keeps it; it is fenced once it follows the current epoch.
  return status.epoch < epoch ? { endpoint, state: "stale-copy", ...position } : undefined;
}

/** Asks a node about the org: its status, none (404), or why it could not be asked. */
async function viewNode(client: AgentClient, org: string): Promise<NodeView> {
  try {
    const status = await unlessNotFound(client.getOrg(org));
    return status ? { endpoint: client.endpoint, status } : { endpoint: client.endpoint };
  } catch (error) {
    if (error instanceof AgentUnreachableError) return { endpoint: client.endpoint, unreachable: error.reason };
    throw error;
  }
}

/**
 * Makes `to` the org's primary, moving the org from `from` or failing over to `to`'s copy (see
 * `planPrimaryChange`); `others` are the nodes that hold or held a copy. Returns the new epoch.
 * `mayTakeOver` vets an org `to` holds as a primary of its own before a move overwrites it.
 */
export async function changePrimary(options: {
  org: string;
  from: AgentClient;
  to: AgentClient;
  others: string[];
  clientFor: ClientFactory;
  recorded: { generation: number; epoch: number };
  allowDataLoss: boolean;
  mayTakeOver: (existing: OrgStatus) => void;
  log: (line: string) => void;
}): Promise<number> {
  const { org, from, to } = options;
  const [fromView, toView, ...others] = await Promise.all(
    [from, to, ...options.others.map(options.clientFor)].map((client) => viewNode(client, org)),
  );
  const plan = planPrimaryChange({
    org,
    from: fromView,
    to: toView,
    others,
    recorded: options.recorded,
    allowDataLoss: options.allowDataLoss,
  });
  switch (plan.kind) {
    case "refuse":
      throw new Error(plan.message);
    case "promoted":
      options.log(`failover ${org}: ${to.endpoint} is already the primary at epoch ${plan.epoch}`);
      return plan.epoch;
    case "promote":
      await to.promote(org, { epoch: plan.epoch, generation: plan.generation, digest: plan.digest });
      options.log(
        `failover ${org}: ${from.endpoint} → ${to.endpoint}, its copy promoted at generation ${plan.generation}, ` +
          `epoch ${plan.epoch}${plan.lost ? ` (allowDataLoss: ${plan.lost})` : ""}`,
      );
      return plan.epoch;
    case "move": {
      if (toView.status?.role === "primary") {
        options.mayTakeOver(toView.status);
        await to.deleteOrg(org);
      }
      const snapshot = await from.snapshot(org);
      await to.putReplica(org, { ...snapshot, primary: from.endpoint });
      await to.promote(org, { epoch: plan.epoch, generation: snapshot.generation, digest: snapshot.digest });
      options.log(
        `move ${org}: ${from.endpoint} → ${to.endpoint} (${snapshot.users.length} users, ` +
          `${snapshot.services.length} services, generation ${snapshot.generation}, epoch ${plan.epoch})`,
      );
      return plan.epoch;
    }
  }
}

/**
 * Fences former primaries the program does not list as secondaries: the org is removed from each
 * (a copy, or a primary at a lower epoch; a node at the current epoch or newer refuses, 409).
 * Returns the ones still to be fenced (unreachable).
 */
export async function removeFromFormer(
  org: string,
  endpoints: string[],
  epoch: number,
  clientFor: ClientFactory,
  log: (line: string) => void,
): Promise<FencingStatus[]> {
  const left = await Promise.all(
    endpoints.map(async (endpoint): Promise<FencingStatus | undefined> => {
      try {
        if (await unlessNotFound(clientFor(endpoint).deleteReplica(org, epoch))) {
          log(`fence ${org}: removed it from the former primary ${endpoint}`);
        }
      } catch (error) {
        if (!(error instanceof AgentUnreachableError)) throw error;
        return { endpoint, state: "unreachable", error: error.message };
      }
      return undefined;
    }),
  );
  return left.filter((entry): entry is FencingStatus => entry !== undefined);
}

/** `pulumi refresh`: where each former primary stands now; fenced ones are dropped. */
export async function inspectFormer(
  org: string,
  endpoints: string[],
  epoch: number,
  listed: string[],
  clientFor: ClientFactory,
): Promise<FencingStatus[]> {
  const states = await Promise.all(
    endpoints.map(async (endpoint) =>
      formerState(endpoint, await viewNode(clientFor(endpoint), org), epoch, listed.includes(endpoint)),
    ),
  );
  return states.filter((state): state is FencingStatus => state !== undefined);
}

/**
 * Whether a node that holds the org as its primary has been superseded: a node it lists holds the
 * org at a higher epoch. Returns the newest such epoch and the primary it names (the node itself,
 * or the primary its copy follows).
 */
export function supersededBy(
  primary: Pick<OrgStatus, "epoch">,
  nodes: Array<{ endpoint: string; copy?: OrgStatus }>,
): { epoch: number; primary: string } | undefined {
  let found: { epoch: number; primary: string } | undefined;
  for (const { endpoint, copy } of nodes) {
    if (!copy || copy.epoch <= primary.epoch || (found && copy.epoch <= found.epoch)) continue;
    found = { epoch: copy.epoch, primary: copy.role === "primary" ? endpoint : (copy.primary ?? "unknown") };
  }
  return found;
}

/**
 * Why `preview` and `up` update the org for a former primary the state records: as it stood when
 * last checked, since the update itself may fence it a moment later (then it says so).
 */
export function fencingPending(org: string, entry: FencingStatus): string {
  const was = {
    "stale-primary": "a stale primary",
    "stale-copy": "holding an outdated copy",
    unreachable: "unreachable",
  }[entry.state];
  return `organization ${org}: the former primary ${entry.endpoint} is not fenced yet (${was} when last checked); an update fences it once it answers`;
}

/** One line for a former primary still to be fenced, as it stands now: what `pulumi refresh` and `up` print. */
export function fencingNote(org: string, entry: FencingStatus): string {
  const at = entry.epoch === undefined ? "" : ` (epoch ${entry.epoch}, generation ${entry.generation})`;
  switch (entry.state) {
    case "stale-primary":
      return (
        `organization ${org}: ${entry.endpoint} is a stale primary${at}: fenced, its replication is refused; ` +
        `the next 'pulumi up' demotes it into a copy (listed in secondaries) or removes the org from it`
      );
    case "stale-copy":
      return `organization ${org}: the former primary ${entry.endpoint} holds an outdated copy${at}; the next 'pulumi up' replaces or removes it`;
    case "unreachable":
      return `organization ${org}: the former primary ${entry.endpoint} is unreachable; it is fenced by the first 'pulumi up' after it is back`;
  }
}
