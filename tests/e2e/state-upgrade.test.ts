/**
 * A stack recorded with release 0.1.0 (tests/fixtures/state-v0.1.0, see its README) taken over by
 * this code: its agents come back from their database dumps on the addresses the state names, the
 * state is imported into a fresh backend, and the project runs with this build's packed library.
 * The state's providers are `require("pulumi-lbhosting/shims/<kind>")`, so every operation below
 * runs the new package's provider on the old state: refresh and preview must see no change, an
 * update must apply, destroy must empty the agents.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { expect } from "chai";
import Database from "better-sqlite3";
import { agentClient } from "../support/agent-http";
import { startAgentProcess, type AgentProcess } from "../support/agent-process";
import { createProjectFolder, type ProjectFolder } from "../support/project";
import { requirePulumi } from "../support/pulumi";
import {
  AGENTS,
  agentDumpFile,
  agentTokenFile,
  ORG,
  PASSPHRASE,
  PROJECT_DIR,
  SHIM_REQUIRES,
  STACK,
  STACK_CONFIG_FILE,
  STACK_FILE,
} from "../fixtures/state-fixture";

/** A new data folder whose database is the recorded dump. */
function restoreDataDir(root: string, dumpFile: string): string {
  const dataDir = fs.mkdtempSync(path.join(root, "data-"));
  const db = new Database(path.join(dataDir, "agent.db"));
  try {
    db.exec(fs.readFileSync(dumpFile, "utf8"));
  } finally {
    db.close();
  }
  return dataDir;
}

describe("e2e: state recorded with release 0.1.0, refreshed, updated and destroyed by this code", function () {
  let root: string;
  let agents: AgentProcess[] = [];
  let project: ProjectFolder;
  const clients = () => agents.map((agent) => agentClient(agent.url, agent.token));

  before(async function () {
    const bin = requirePulumi(this);
    root = fs.mkdtempSync(path.join(os.tmpdir(), "lbh-state-upgrade-"));
    agents = await Promise.all(
      AGENTS.map((agent) =>
        startAgentProcess({
          host: agent.host,
          port: agent.port,
          name: agent.name,
          token: fs.readFileSync(agentTokenFile(agent), "utf8").trim(),
          dataDir: restoreDataDir(root, agentDumpFile(agent)),
        }),
      ),
    );
    project = await createProjectFolder(bin, { source: PROJECT_DIR, stack: STACK, passphrase: PASSPHRASE });
    // The recorded config: the agents' URLs, the encrypted token and passwords, and the salt of
    // the passphrase that also encrypts the state's secrets.
    fs.copyFileSync(STACK_CONFIG_FILE, path.join(project.dir, `Pulumi.${STACK}.yaml`));
    await project.pulumi(["stack", "import", "--file", STACK_FILE]);
  });

  afterEach(function () {
    if (this.currentTest?.state === "failed" && project) console.log(project.log());
  });

  after(async () => {
    for (const agent of agents) {
      await agent.stop();
      agent.cleanup();
    }
    project?.cleanup();
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });

  it("the recorded state loads its providers from the installed package, and holds no secret in plain text", () => {
    const state = fs.readFileSync(STACK_FILE, "utf8");
    for (const shimRequire of SHIM_REQUIRES) expect(state).to.include(shimRequire);
    for (const agent of AGENTS) {
      expect(state).not.to.include(fs.readFileSync(agentTokenFile(agent), "utf8").trim());
    }
  });

  it("refresh reports no change", async () => {
    await project.refresh({ expectNoChanges: true });
  });

  it("preview reports no change", async () => {
    await project.preview({ expectNoChanges: true });
  });

  it("an update applies, on the primary and the secondary, and leaves nothing to do", async () => {
    await project.configSet("aliceDisplayName", "Alice Upgraded");
    await project.up();
    for (const client of clients()) {
      const alice = await client.get(`/v1/orgs/${ORG}/users/alice`);
      expect(alice.status).to.equal(200);
      expect(alice.json).to.include({ displayName: "Alice Upgraded" });
    }
    await project.preview({ expectNoChanges: true });
    // The new state keeps the installed-package form, so the next version can read it too.
    const state = JSON.stringify(await project.exportState());
    for (const shimRequire of SHIM_REQUIRES) expect(state).to.include(shimRequire);
  });

  it("destroy removes the organization from every agent", async () => {
    for (const client of clients()) expect((await client.get(`/v1/orgs/${ORG}`)).status).to.equal(200);
    await project.destroy();
    for (const client of clients()) expect((await client.get(`/v1/orgs/${ORG}`)).status).to.equal(404);
    const state = (await project.exportState()) as { resources?: unknown[] };
    expect(state.resources ?? []).to.deep.equal([]);
  });
});
