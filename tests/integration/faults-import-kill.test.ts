/**
 * Fault: a secondary agent SIGKILLed at random points while it imports the snapshot of a
 * 2,000-user org (127.0.31.1). After each restart the copy must be absent or whole at one
 * generation — the one it had before or the one being imported — with that generation's digest
 * and exactly its users and services, its rendered FTP accounts and site matching, and the agent
 * must have started cleanly. Kill points are spread over the length of an import measured on this
 * machine in this run, half of them over no copy and half over an older copy.
 */
import { expect } from "chai";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { SITES_FILE } from "../../agent/src/render/nginx/sites";
import { contentDigest } from "../../agent/src/store/digest";
import { type OrgRecord, type ServiceRecord, type Snapshot, type UserRecord, orgStatusSchema } from "../../wire";
import { type AgentClient, agentClient, call } from "../support/agent-http";
import { type AgentProcess, startAgentProcess } from "../support/agent-process";
import { faultSeed, printKillReport, seededRandom, sleep, spreadPoints } from "../support/faults";
import { orgAccounts } from "../support/puredb";

const ORG = "big";
const USERS = 2000;
const KILL_POINTS = 24;
const PRIMARY = "http://127.0.31.250:8443";
const HASH = execFileSync("openssl", ["passwd", "-6", "-salt", "importkill", "a-password-for-all"], {
  encoding: "utf8",
}).trim();

const ORG_RECORD: OrgRecord = { name: ORG, displayName: "Big", loadBalanced: true, secondaries: [], managedBy: "" };
const SERVICES: ServiceRecord[] = [
  { name: "files", kind: "ftp", enabled: true, rootPath: "files", writable: false, managedBy: "" },
  { name: "www", kind: "website", enabled: true, domains: ["www.big.test"], documentRoot: "www", managedBy: "" },
];

const userRecord = (index: number, label: string): UserRecord => ({
  username: `user${String(index).padStart(4, "0")}`,
  passwordHash: HASH,
  displayName: `User ${index} ${label}`,
  email: "",
  enabled: true,
  access: ["files"],
  managedBy: "",
});

/** A snapshot as a primary would send it (users in name order, the digest of the content). */
function snapshotOf(generation: number, users: UserRecord[]): Snapshot {
  const sorted = [...users].sort((a, b) => a.username.localeCompare(b.username));
  return {
    generation,
    digest: contentDigest(ORG_RECORD, sorted, SERVICES),
    epoch: 0,
    org: ORG_RECORD,
    users: sorted,
    services: SERVICES,
  };
}

type Outcome = "absent" | "old" | "new";

/** The org at two generations: an older copy, and a newer one that changes half the users, drops 200 and adds 200. */
const older = snapshotOf(
  USERS + 3,
  Array.from({ length: USERS }, (_, index) => userRecord(index, "v1")),
);
const newer = snapshotOf(USERS + 3 + USERS / 2 + 400, [
  ...Array.from({ length: USERS / 2 }, (_, index) => userRecord(index, "v2")),
  ...Array.from({ length: USERS / 2 - 200 }, (_, index) => userRecord(USERS / 2 + index, "v1")),
  ...Array.from({ length: 200 }, (_, index) => userRecord(USERS + index, "v2")),
]);

describe("fault: an agent killed while importing a 2,000-user snapshot (integration)", function () {
  this.timeout(600_000); // many agent restarts; the suite default (60 s) is for single requests
  let secondary: AgentProcess;
  let replica: AgentClient;

  const importBody = (snapshot: Snapshot) => ({ ...snapshot, primary: PRIMARY });

  before(async function () {
    secondary = await startAgentProcess({ host: "127.0.31.1", name: "importer" });
    replica = agentClient(secondary.url, secondary.token);
    expect(older.users).to.have.length(USERS);
    expect(newer.users).to.have.length(USERS);
  });

  after(async function () {
    await secondary?.stop();
    secondary?.cleanup();
  });

  /** What the restarted agent holds, checked to be one whole generation (and its rendered files). */
  async function inspectCopy(): Promise<Outcome> {
    const status = await replica.get(`/v1/orgs/${ORG}`);
    const sitesFile = path.join(secondary.nginxConfDir, SITES_FILE);
    const served = () =>
      fs.existsSync(sitesFile) && fs.readFileSync(sitesFile, "utf8").includes("server_name www.big.test;");
    if (status.status === 404) {
      expect(orgAccounts(secondary.dataDir, ORG), "no FTP accounts without a copy").to.equal("");
      expect(served(), "no site without a copy").to.equal(false);
      return "absent";
    }
    const copy = orgStatusSchema.parse(status.json);
    expect(copy).to.include({ role: "secondary", drifted: false });
    const expected = copy.generation === older.generation ? older : newer;
    expect(copy.generation, "the generation of a whole snapshot").to.be.oneOf([older.generation, newer.generation]);
    expect(copy.digest).to.equal(expected.digest);
    expect((await replica.get(`/v1/orgs/${ORG}/snapshot`)).json).to.deep.equal(expected);
    const accounts = orgAccounts(secondary.dataDir, ORG).trim().split("\n");
    expect(accounts).to.have.length(expected.users.length);
    expect(served(), "the site is rendered").to.equal(true);
    return expected === older ? "old" : "new";
  }

  /** Brings the secondary to the starting state of a kill point: no copy, or the older copy. */
  async function prepare(start: "absent" | "old"): Promise<void> {
    const present = (await replica.get(`/v1/orgs/${ORG}`)).status === 200;
    if (start === "absent" && present) {
      expect((await replica.delete(`/v1/orgs/${ORG}/replica`)).status).to.equal(200);
    }
    if (start === "old") {
      const answer = await replica.put(`/v1/orgs/${ORG}/replica`, importBody(older));
      expect(answer.status, answer.text).to.equal(200);
    }
  }

  it(`leaves the copy absent or whole at one generation, at each of ${KILL_POINTS} kill points`, async function () {
    // The import's length on this machine now, so the kill points cover it whatever its speed.
    await prepare("absent");
    const started = Date.now();
    expect((await replica.put(`/v1/orgs/${ORG}/replica`, importBody(newer))).status).to.equal(200);
    const importMs = Date.now() - started;
    expect(await inspectCopy()).to.equal("new");

    const seed = faultSeed();
    const delays = spreadPoints(KILL_POINTS, importMs * 1.3, seededRandom(seed));
    const report: Array<Record<string, unknown>> = [];
    for (const [index, delay] of delays.entries()) {
      const start = index % 2 === 0 ? "absent" : "old";
      await prepare(start);
      const answer = call(secondary.url, "PUT", `/v1/orgs/${ORG}/replica`, {
        token: secondary.token,
        body: importBody(newer),
      }).then(
        (reply) => String(reply.status),
        () => "no answer",
      );
      await sleep(delay);
      const killed = await secondary.stop("SIGKILL");
      const outcome = `${await answer}`;
      const logLinesBefore = secondary.stdout.length;
      const stderrBefore = secondary.stderr().length;
      await secondary.restart();
      // A clean start: nothing on stderr, no warning or error in the log.
      expect(secondary.stderr().slice(stderrBefore)).to.equal("");
      const levels = secondary.stdout
        .slice(logLinesBefore)
        .map((line) => (JSON.parse(line) as { level: string }).level);
      expect(levels.filter((level) => level !== "info")).to.deep.equal([]);
      const found = await inspectCopy();
      expect(found).to.be.oneOf([start, "new"]);
      if (outcome === "200") expect(found, "an answered import survives").to.equal("new");
      report.push({ delayMs: delay, before: start, answer: outcome, signal: killed.signal, after: found });
    }
    printKillReport(`snapshot import of ${USERS} users (${importMs} ms unkilled)`, report, seed);
    // The agent still imports normally afterwards.
    expect((await replica.put(`/v1/orgs/${ORG}/replica`, importBody(newer))).status).to.equal(200);
    expect(await inspectCopy()).to.equal("new");
  });
});
