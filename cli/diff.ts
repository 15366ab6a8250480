/**
 * `lbhosting diff`: a dry run of `lbhosting sync`. For each active secondary: what a sync would
 * add, change or remove, and whether it would go by delta or snapshot (the same rule as
 * provider/sync/). Only reads: the org, its snapshot and change log on the primary, and each
 * secondary's org status and snapshot.
 */
import type { Command } from "commander";
import { AgentError, type AgentClient } from "../provider/client";
import { planSync, type PlannedChange } from "../provider/plan";
import { inspectSecondary, splitNamed, syncCommand } from "../provider/sync";
import type { SecondaryState } from "../sdk/outputs";
import { activeSecondaries, type Snapshot } from "../wire";
import {
  EXIT_NOT_IN_SYNC,
  colours,
  connect,
  nodeNote,
  operatorAction,
  operatorCommand,
  paintState,
  printLine,
  requirePrimary,
  shortDigest,
  unexpectedLine,
  type OperatorOptions,
} from "./common";

interface DiffOptions extends OperatorOptions {
  json?: boolean;
}

interface SecondaryPlan {
  endpoint: string;
  state: SecondaryState;
  generation: number;
  /** How a sync would go; "unknown" when the secondary cannot be read. */
  mode: "none" | "delta" | "snapshot" | "unknown";
  /** Why a snapshot, or why the secondary cannot be read. */
  reason?: string;
  changes: PlannedChange[];
}

async function planSecondary(primary: AgentClient, secondary: AgentClient, snapshot: Snapshot): Promise<SecondaryPlan> {
  const org = snapshot.org.name;
  const inspection = await inspectSecondary(secondary, org, snapshot);
  const plan = (mode: SecondaryPlan["mode"], reason: string | undefined, copy?: Snapshot): SecondaryPlan => ({
    endpoint: secondary.endpoint,
    state: inspection.state,
    generation: copy?.generation ?? 0,
    mode,
    ...(reason || inspection.error ? { reason: [reason, inspection.error].filter(Boolean).join("; ") } : {}),
    changes: mode === "unknown" ? [] : planSync(snapshot, copy),
  });
  if (inspection.state === "unreachable") return plan("unknown", undefined);
  if (inspection.state === "missing") return plan("snapshot", "it has no copy");
  const copy = await secondary.snapshot(org);
  if (inspection.state === "in-sync") return plan("none", undefined, copy);
  if (inspection.state === "behind" && (await logReachesBack(primary, org, copy.generation))) {
    return plan("delta", undefined, copy);
  }
  const reason =
    inspection.state === "behind"
      ? "the primary's change log no longer reaches back"
      : inspection.copy?.drifted
        ? "edited outside a sync"
        : "its history differs from the primary's";
  return plan("snapshot", reason, copy);
}

/** Whether the primary can still send the changes after `generation` (else a sync sends a snapshot). */
async function logReachesBack(primary: AgentClient, org: string, generation: number): Promise<boolean> {
  try {
    await primary.changesSince(org, generation);
    return true;
  } catch (error) {
    if (error instanceof AgentError && error.status === 410) return false;
    throw error;
  }
}

const SIGNS = { add: ["+", colours.green], change: ["~", colours.yellow], remove: ["-", colours.red] } as const;

function changeLine(change: PlannedChange): string {
  const [sign, paint] = SIGNS[change.action];
  const what = `${sign} ${change.kind} ${change.name}`;
  return `  ${paint(change.fields.length > 0 ? `${what}: ${change.fields.join("; ")}` : what)}`;
}

function printPlan(plan: SecondaryPlan): void {
  const where = `${plan.endpoint}: ${paintState(plan.state)(plan.state)}`;
  const at = plan.generation > 0 ? ` at generation ${plan.generation}` : "";
  const why = plan.reason ? ` (${plan.reason})` : "";
  if (plan.mode === "unknown") {
    const note = nodeNote(plan.endpoint, plan.reason ?? plan.state);
    printLine(`${paintState(plan.state)(note)}; start its agent or check the URL (a sync cannot reach it until then)`);
    return;
  }
  if (plan.mode === "none") {
    printLine(`${where}${at}: nothing to do`);
    return;
  }
  const count = `${plan.changes.length} change${plan.changes.length === 1 ? "" : "s"}`;
  printLine(`${where}${at}${why}: a sync would send a ${plan.mode} (${count})`);
  for (const change of plan.changes) printLine(changeLine(change));
}

async function diff(options: DiffOptions): Promise<number> {
  const { primary, clientFor, isNamed } = connect(options);
  const status = await primary.getOrg(options.org);
  requirePrimary(status, primary.endpoint);
  const snapshot = await primary.snapshot(options.org);
  const { named, unexpected } = splitNamed(activeSecondaries(snapshot.org), isNamed);
  const plans = await Promise.all(named.map((endpoint) => planSecondary(primary, clientFor(endpoint), snapshot)));
  const pending = unexpected.length > 0 || plans.some((plan) => plan.mode !== "none");
  const { generation, digest } = snapshot;
  if (options.json) {
    const report = { org: options.org, primary: { endpoint: primary.endpoint, generation, digest }, pending };
    printLine(JSON.stringify({ ...report, secondaries: plans, unexpected }, null, 2));
    return pending ? EXIT_NOT_IN_SYNC : 0;
  }
  printLine(
    `${options.org} on the primary ${primary.endpoint}: generation ${generation} (digest ${shortDigest(digest)})`,
  );
  plans.forEach(printPlan);
  for (const endpoint of unexpected) printLine(unexpectedLine(options.org, endpoint));
  const waiting = plans.filter((plan) => plan.mode !== "none").length;
  if (plans.length === 0) printLine(`${options.org} is not load-balanced: no secondaries to synchronize`);
  else if (!pending) printLine(colours.green(`${options.org}: all ${plans.length} secondaries in sync; nothing to do`));
  else {
    printLine(
      `${options.org}: ${waiting} of ${plans.length} secondaries not in sync (dry run, nothing changed); ` +
        `apply with '${syncCommand(options.org, primary.endpoint, named)}'`,
    );
  }
  return pending ? EXIT_NOT_IN_SYNC : 0;
}

export function registerDiffCommand(program: Command): void {
  program.addCommand(
    operatorCommand("diff", "dry run of sync: what a sync would add, change or remove on each secondary", {
      example: "LBHOSTING_TOKEN=... lbhosting diff --org acme --primary https://web1.example.net:8443",
      exitCodes:
        "0 nothing to synchronize, 1 a sync would change something (or a secondary cannot be read), 2 bad usage or the primary cannot be read",
    })
      .option("--json", "print a JSON object instead of text")
      .action(operatorAction("diff", diff)),
  );
}
