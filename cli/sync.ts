/**
 * `lbhosting sync`: the *initiate synchronization* button — the provider's own `syncOrg`, with a
 * progress line per secondary and a summary.
 */
import type { Command } from "commander";
import { SyncError, syncOrg } from "../provider/sync";
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

interface SyncCliOptions extends OperatorOptions {
  full?: boolean;
}

async function sync(options: SyncCliOptions): Promise<number> {
  const { primary, clientFor, isNamed } = connect(options);
  requirePrimary(await primary.getOrg(options.org), primary.endpoint);
  const report = await syncOrg(primary, options.org, clientFor, {
    full: options.full === true,
    log: printLine,
    isNamed,
  });
  const unexpected = report.unexpected ?? [];
  for (const endpoint of unexpected) printLine(unexpectedLine(options.org, endpoint));
  // syncOrg logs only the secondaries it reached; the others get their line here.
  for (const { endpoint, state, error } of report.secondaries.filter((entry) => entry.state !== "in-sync")) {
    printLine(`sync ${options.org} → ${paintState(state)(nodeNote(endpoint, error ?? `${state}, not synchronized`))}`);
  }
  const total = report.secondaries.length;
  const done = report.secondaries.filter((secondary) => secondary.state === "in-sync").length;
  const target = `generation ${report.generation} (digest ${shortDigest(report.digest)})`;
  if (total === 0) {
    printLine(`${options.org} is not load-balanced: no secondaries to synchronize`);
  } else {
    const line = `${options.org}: ${done} of ${total} secondaries in sync at ${target}`;
    printLine(report.inSync ? colours.green(line) : colours.red(line));
  }
  if (report.inSync && unexpected.length === 0) return 0;
  if (report.inSync) return EXIT_NOT_IN_SYNC;
  process.stderr.write(`lbhosting sync: ${new SyncError(report, false).message}\n`);
  return EXIT_NOT_IN_SYNC;
}

export function registerSyncCommand(program: Command): void {
  program.addCommand(
    operatorCommand("sync", "initiate synchronization: bring every secondary of an organization to its primary", {
      example: "LBHOSTING_TOKEN=... lbhosting sync --org acme --primary https://web1.example.net:8443 --full",
      exitCodes:
        "0 every secondary in sync, 1 a secondary could not be synchronized, 2 bad usage or the primary cannot be read",
    })
      .option("--full", "send a full snapshot to every secondary, even one already in sync")
      .action(operatorAction("sync", sync)),
  );
}
