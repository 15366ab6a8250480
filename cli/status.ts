/**
 * `lbhosting status`: one row per node of an organization — what `pulumi refresh` sees, through
 * the same `inspectOrg` and classification — and an exit code for monitoring checks. With
 * `--load-balancer`, each row also shows how the load balancer sees that node right now: healthy
 * or not, and its open connections, for web and FTP traffic, and how the node takes FTPS.
 */
import type { Command } from "commander";
import type { AgentClient, ClientFactory } from "../provider/client";
import { supersededBy } from "../provider/failover";
import { inspectOrg, syncCommand, toSyncStatus } from "../provider/sync";
import { type BalancerStatus, type FtpTls, endpointSchema, type ServerView } from "../wire";
import { type SecondarySyncStatus } from "../sdk/outputs";
import {
  EXIT_NOT_IN_SYNC,
  colours,
  connect,
  nodeNote,
  operatorAction,
  operatorCommand,
  paintState,
  parseWith,
  printLine,
  requirePrimary,
  shortDigest,
  unexpectedLine,
  type OperatorOptions,
} from "./common";

interface StatusOptions extends OperatorOptions {
  json?: boolean;
  loadBalancer?: string;
}

/** How the load balancer sees one node, per kind of traffic; `note` when it could not be asked. */
interface NodeBalancing {
  endpoint: string;
  name?: string;
  web?: ServerView;
  ftp?: ServerView;
  /** How the node's pure-ftpd takes FTPS, as its agent reports it (`--ftp-tls`). */
  ftpTls?: FtpTls;
}

/** The load balancer's view of every node, matched to them by node name; undefined without --load-balancer. */
async function balancing(
  options: StatusOptions,
  endpoints: string[],
  clientFor: ClientFactory,
): Promise<{ nodes: NodeBalancing[]; note?: string } | undefined> {
  if (!options.loadBalancer) return undefined;
  const balancer: AgentClient = clientFor(options.loadBalancer);
  let status: BalancerStatus;
  try {
    status = await balancer.balancerStatus(options.org);
  } catch (error) {
    const note = `${balancer.endpoint}: the load balancer's view is unavailable: ${(error as Error).message}`;
    return { nodes: endpoints.map((endpoint) => ({ endpoint })), note };
  }
  const nodes = await Promise.all(
    endpoints.map(async (endpoint): Promise<NodeBalancing> => {
      const info = await clientFor(endpoint)
        .nodeInfo()
        .catch(() => undefined);
      const name = info?.name;
      const seen = status.nodes.find((node) => node.name === name);
      return {
        endpoint,
        name,
        ...(seen?.web ? { web: seen.web } : {}),
        ...(seen?.ftp ? { ftp: seen.ftp } : {}),
        ...(info?.ftpTls ? { ftpTls: info.ftpTls } : {}),
      };
    }),
  );
  return { nodes };
}

const FTPS_NOTE: Record<FtpTls, string> = { off: "", accept: ", FTPS accepted", require: ", FTPS required" };

function viewCell(view: ServerView | undefined, ftpTls?: FtpTls): Cell {
  if (!view) return { text: "-" };
  return {
    text: `${view.status}, ${view.active} open${ftpTls ? FTPS_NOTE[ftpTls] : ""}`,
    paint: view.healthy ? colours.green : colours.red,
  };
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
  const { primary, clientFor, isNamed } = connect(options);
  const inspection = await inspectOrg(primary, options.org, clientFor, isNamed);
  const { unexpected } = inspection;
  requirePrimary(inspection.primary, primary.endpoint);
  const { generation, digest, epoch, loadBalanced } = inspection.primary;
  const secondaries = inspection.secondaries.map(toSyncStatus);
  // A former primary that came back: one of the nodes it lists follows a newer primary.
  const newer = supersededBy(inspection.primary, inspection.secondaries);
  const inSync = !newer && unexpected.length === 0 && secondaries.every((secondary) => secondary.state === "in-sync");
  const endpoints = [primary.endpoint, ...secondaries.map((secondary) => secondary.endpoint)];
  const lb = await balancing(options, endpoints, clientFor);

  if (options.json) {
    const stale = newer ? { stale: { primary: newer.primary, epoch: newer.epoch } } : {};
    const report = {
      org: options.org,
      loadBalanced,
      primary: { endpoint: primary.endpoint, generation, digest, epoch, ...stale },
    };
    const balancer = lb ? { loadBalancer: { endpoint: options.loadBalancer, ...lb } } : {};
    printLine(JSON.stringify({ ...report, secondaries, unexpected, inSync, ...balancer }, null, 2));
  } else {
    const primaryRow: Cell[] = [
      { text: primary.endpoint },
      { text: "primary" },
      { text: String(generation) },
      { text: shortDigest(digest) },
      newer ? { text: "stale-primary", paint: colours.red } : { text: "primary", paint: paintState("primary") },
      { text: "-" },
    ];
    const header = ["ENDPOINT", "ROLE", "GENERATION", "DIGEST", "STATE", "LAST SYNC"];
    let rows = [primaryRow, ...secondaries.map(secondaryRow)];
    if (lb) {
      header.push("LB WEB", "LB FTP");
      rows = rows.map((row, index) => {
        const node = lb.nodes[index];
        return [...row, viewCell(node?.web), viewCell(node?.ftp, node?.ftpTls)];
      });
    }
    for (const line of renderTable(header, rows)) printLine(line);
    for (const { endpoint, error } of secondaries) if (error) printLine(nodeNote(endpoint, error));
    for (const endpoint of unexpected) printLine(unexpectedLine(options.org, endpoint));
    if (lb?.note) printLine(lb.note);
    if (newer) printLine(colours.red(staleNote(options.org, primary.endpoint, epoch, newer)));
    else printLine(summary(options.org, primary.endpoint, loadBalanced, secondaries));
  }
  return inSync ? 0 : EXIT_NOT_IN_SYNC;
}

function staleNote(org: string, primary: string, epoch: number, newer: { primary: string; epoch: number }): string {
  return (
    `${primary} is a stale primary of ${org} (epoch ${epoch}): its primary is now ${newer.primary} (epoch ${newer.epoch}). ` +
    `It is fenced (the copies refuse its replication); the next 'pulumi up' demotes it or removes ${org} from it. ` +
    `Run 'lbhosting status --org ${org} --primary ${newer.primary}' for the org as it is served.`
  );
}

function summary(org: string, primary: string, loadBalanced: boolean, secondaries: SecondarySyncStatus[]): string {
  if (!loadBalanced) return `${org} is not load-balanced: no secondaries to check`;
  const inSync = secondaries.filter((secondary) => secondary.state === "in-sync").length;
  const counted = `${org}: ${inSync} of ${secondaries.length} secondaries in sync`;
  if (inSync === secondaries.length) return colours.green(counted);
  const command = syncCommand(
    org,
    primary,
    secondaries.map((secondary) => secondary.endpoint),
  );
  return colours.red(`${counted}; run '${command}'`);
}

export function registerStatusCommand(program: Command): void {
  program.addCommand(
    operatorCommand("status", "show each node of an organization and whether its secondaries are in sync", {
      example: "LBHOSTING_TOKEN=... lbhosting status --org acme --primary https://web1.example.net:8443",
      exitCodes: "0 every secondary in sync, 1 a secondary is not in sync, 2 bad usage or the primary cannot be read",
    })
      .option("--json", "print a JSON object instead of the table")
      .option(
        "--load-balancer <url>",
        "the org's load-balancer agent: also show whether it considers each node healthy, and its open connections",
        parseWith(endpointSchema),
      )
      .action(operatorAction("status", status)),
  );
}
