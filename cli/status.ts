/**
 * `lbhosting status`: one row per node of an organization — what `pulumi refresh` sees, through
 * the same `inspectOrg` and classification — and an exit code for monitoring checks.
 */
import type { Command } from "commander";
import { inspectOrg, toSyncStatus } from "../provider/sync";
import type { SecondarySyncStatus } from "../sdk/schemas";
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
  type OperatorOptions,
} from "./common";

interface StatusOptions extends OperatorOptions {
  json?: boolean;
}

interface Cell {
  text: string;
  paint?: (text: string) => string;
}

/** Pads on the plain text, then colours, so escape codes do not skew the columns. */
function renderTable(header: string[], rows: Cell[][]): string[] {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column].text.length)));
  const last = header.length - 1;
  const line = (cells: Cell[]) =>
    cells
      .map((cell, column) => (cell.paint ?? String)(column === last ? cell.text : cell.text.padEnd(widths[column])))
      .join("  ");
  return [line(header.map((text) => ({ text, paint: colours.bold }))), ...rows.map(line)];
}

const when = (iso: string | undefined) => (iso ? iso.replace(/\.\d+Z$/, "Z") : "-");

function secondaryRow(secondary: SecondarySyncStatus): Cell[] {
  const known = secondary.digest !== "";
  return [
    { text: secondary.endpoint },
    { text: "secondary" },
    { text: known ? String(secondary.generation) : "-" },
    { text: shortDigest(secondary.digest) },
    { text: secondary.state, paint: paintState(secondary.state) },
    { text: when(secondary.lastSyncedAt) },
  ];
}

async function status(options: StatusOptions): Promise<number> {
  const { primary, clientFor } = connect(options);
  const inspection = await inspectOrg(primary, options.org, clientFor);
  requirePrimary(inspection.primary, primary.endpoint);
  const { generation, digest, loadBalanced } = inspection.primary;
  const secondaries = inspection.secondaries.map(toSyncStatus);
  const inSync = secondaries.every((secondary) => secondary.state === "in-sync");

  if (options.json) {
    const report = { org: options.org, loadBalanced, primary: { endpoint: primary.endpoint, generation, digest } };
    printLine(JSON.stringify({ ...report, secondaries, inSync }, null, 2));
  } else {
    const primaryRow: Cell[] = [
      { text: primary.endpoint },
      { text: "primary" },
      { text: String(generation) },
      { text: shortDigest(digest) },
      { text: "primary", paint: paintState("primary") },
      { text: "-" },
    ];
    const header = ["ENDPOINT", "ROLE", "GENERATION", "DIGEST", "STATE", "LAST SYNC"];
    for (const line of renderTable(header, [primaryRow, ...secondaries.map(secondaryRow)])) printLine(line);
    for (const { endpoint, error } of secondaries) if (error) printLine(nodeNote(endpoint, error));
    printLine(summary(options.org, primary.endpoint, loadBalanced, secondaries));
  }
  return inSync ? 0 : EXIT_NOT_IN_SYNC;
}

function summary(org: string, primary: string, loadBalanced: boolean, secondaries: SecondarySyncStatus[]): string {
  if (!loadBalanced) return `${org} is not load-balanced: no secondaries to check`;
  const inSync = secondaries.filter((secondary) => secondary.state === "in-sync").length;
  const counted = `${org}: ${inSync} of ${secondaries.length} secondaries in sync`;
  if (inSync === secondaries.length) return colours.green(counted);
  return colours.red(`${counted}; run 'lbhosting sync --org ${org} --primary ${primary}'`);
}

export function registerStatusCommand(program: Command): void {
  program.addCommand(
    operatorCommand("status", "show each node of an organization and whether its secondaries are in sync", {
      example: "LBHOSTING_TOKEN=... lbhosting status --org acme --primary https://web1.example.net:8443",
      exitCodes: "0 every secondary in sync, 1 a secondary is not in sync, 2 bad usage or the primary cannot be read",
    })
      .option("--json", "print a JSON object instead of the table")
      .action(operatorAction("status", status)),
  );
}
