/**
 * The three resources and the sync hook end to end: the real Pulumi CLI, real agents over HTTP on
 * loopback (one primary, two secondaries, plus a spare primary for the move). One stack whose
 * program is driven by a mutable spec, taken through the scenarios of issue 4 in order.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { expect } from "chai";
import Database from "better-sqlite3";
import {
  LoadBalancedOrganization,
  OrgUser,
  WebService,
  type LoadBalancedOrganizationArgs,
  type OrgUserArgs,
  type WebServiceArgs,
} from "../../sdk";
import { verifyPassword } from "../../common/password";
import { AgentClient } from "../../provider/client";
import { startAgentProcess, type AgentProcess } from "../support/agent-process";
import { createTestStack, requirePulumi, type TestStack } from "../support/pulumi";

const TOKEN = "e2e-agent-token-0123456789abcdef";
const ORG = "acme";

type UserSpec = Omit<OrgUserArgs, "organization">;
type ServiceSpec = Omit<WebServiceArgs, "organization">;
interface Spec {
  org: LoadBalancedOrganizationArgs;
  users: Record<string, UserSpec>;
  services: Record<string, ServiceSpec>;
}

const PASSWORDS = {
  alice: "alice-password-1",
  aliceNew: "alice-password-2",
  bob: "bob-password-1",
  carol: "carol-password-1",
  dave: "dave-password-1",
  erin: "erin-password-1",
};

describe("e2e: LoadBalancedOrganization, OrgUser, WebService and the sync hook", function () {
  let primary: AgentProcess;
  let secondaryA: AgentProcess;
  let secondaryB: AgentProcess;
  let sparePrimary: AgentProcess;
  let testStack: TestStack;
  let syncLog: string;
  let spec: Spec;
  const client = (agent: AgentProcess) => new AgentClient(agent.url, TOKEN, { timeoutMs: 5000, retries: 0 });

  /** Generation and digest of the org on every agent that holds it. */
  async function states(agents: AgentProcess[]) {
    return Promise.all(
      agents.map(async (agent) => {
        try {
          const org = await client(agent).getOrg(ORG);
          return { name: agent.name, generation: org.generation, digest: org.digest, role: org.role };
        } catch {
          return { name: agent.name, generation: -1, digest: "", role: "none" };
        }
      }),
    );
  }

  const syncLines = () => (fs.existsSync(syncLog) ? fs.readFileSync(syncLog, "utf8") : "");

  before(async function () {
    const bin = requirePulumi(this);
    const agentOptions = { token: TOKEN };
    [primary, secondaryA, secondaryB, sparePrimary] = await Promise.all([
      startAgentProcess({ ...agentOptions, host: "127.0.2.1", name: "primary" }),
      startAgentProcess({ ...agentOptions, host: "127.0.2.2", name: "secondary-a" }),
      startAgentProcess({ ...agentOptions, host: "127.0.2.3", name: "secondary-b" }),
      startAgentProcess({ ...agentOptions, host: "127.0.2.4", name: "spare-primary" }),
    ]);
    spec = {
      org: {
        name: ORG,
        displayName: "Acme Corp",
        primary: primary.url,
        secondaries: [secondaryA.url, secondaryB.url],
        loadBalanced: true,
      },
      users: {
        alice: { username: "alice", password: PASSWORDS.alice, displayName: "Alice", access: ["files"] },
        bob: { username: "bob", password: PASSWORDS.bob, email: "bob@example.com" },
        carol: { username: "carol", password: PASSWORDS.carol },
      },
      services: {
        www: { name: "www", kind: "website", domains: ["www.acme.test", "acme.test"], documentRoot: "public" },
        files: { name: "files", kind: "ftp", rootPath: "ftp", writable: true },
      },
    };
    testStack = await createTestStack(bin, {
      projectName: "resources",
      config: { "lbhosting:token": { value: TOKEN, secret: true } },
      program: async () => {
        const org = new LoadBalancedOrganization("org", spec.org);
        for (const [key, user] of Object.entries(spec.users)) new OrgUser(key, { organization: org, ...user });
        for (const [key, service] of Object.entries(spec.services)) {
          new WebService(key, { organization: org, ...service });
        }
        return { digest: org.digest, inSync: org.inSync, syncStatus: org.syncStatus, primary: org.primary };
      },
    });
    syncLog = path.join(testStack.root, "sync.log");
    process.env.LBHOSTING_SYNC_LOG = syncLog;
  });

  after(async () => {
    delete process.env.LBHOSTING_SYNC_LOG;
    for (const agent of [primary, secondaryA, secondaryB, sparePrimary]) {
      await agent?.stop();
      agent?.cleanup();
    }
    testStack?.cleanup();
  });

  it("1. up creates a load-balanced org with users and services; all agents agree", async () => {
    const result = await testStack.stack.up();
    expect(result.summary.result).to.equal("succeeded");
    expect(result.outputs.inSync.value).to.equal(true);
    const [p, a, b] = await states([primary, secondaryA, secondaryB]);
    expect(p.role).to.equal("primary");
    expect([a.role, b.role]).to.deep.equal(["secondary", "secondary"]);
    expect(a.digest).to.equal(p.digest);
    expect(b.digest).to.equal(p.digest);
    expect(a.generation).to.equal(p.generation);
    const users = await client(secondaryA).listUsers(ORG);
    expect(users.map((user) => user.username).sort()).to.deep.equal(["alice", "bob", "carol"]);

    const preview = await testStack.stack.preview();
    expect(preview.changeSummary).to.deep.equal({ same: 7 });
    const refresh = await testStack.stack.refresh({ expectNoChanges: true });
    expect(refresh.summary.result).to.equal("succeeded");
  });

  it("2. changes reach the secondaries as deltas", async () => {
    const linesBefore = syncLines().length;
    spec.users.alice = { ...spec.users.alice, password: PASSWORDS.aliceNew, displayName: "Alice Liddell" };
    spec.services.blog = { name: "blog", kind: "website", domains: ["blog.acme.test"], documentRoot: "blog" };
    delete spec.users.carol;
    const result = await testStack.stack.up();
    expect(result.summary.result).to.equal("succeeded");
    const [p, a, b] = await states([primary, secondaryA, secondaryB]);
    expect(a.digest).to.equal(p.digest);
    expect(b.digest).to.equal(p.digest);
    const alice = await client(secondaryB).getUser(ORG, "alice");
    expect(alice.displayName).to.equal("Alice Liddell");
    await expectMissing(() => client(secondaryA).getUser(ORG, "carol"));
    const state = JSON.stringify(await testStack.exportState());
    expect(state).to.include("alice").and.to.include("4dabf18193072939515e22adb298388d"); // a secret's signature
    for (const secret of [...Object.values(PASSWORDS), TOKEN]) expect(state.includes(secret), secret).to.equal(false);
    const newLines = syncLines().slice(linesBefore);
    expect(newLines).to.match(/→ http:\/\/127\.0\.2\.2:\d+: delta \d+ changes/);
    expect(newLines).to.match(/→ http:\/\/127\.0\.2\.3:\d+: delta \d+ changes/);
    expect(newLines).not.to.match(/snapshot/);
  });

  it("3. a forced local edit on a secondary is drift: refresh reports it, up heals it", async () => {
    await client(secondaryA).putUser(ORG, "mallory", { password: "mallory-password" }, true);
    const status = await client(secondaryA).getOrg(ORG);
    expect(status.drifted).to.equal(true);

    const refreshCheck = await failureOf(() => testStack.stack.refresh({ expectNoChanges: true }));
    expect(refreshCheck).to.match(/no changes were expected/);
    await testStack.stack.refresh();
    const drifted = (await testStack.exportState()) as {
      resources: { type: string; outputs?: Record<string, unknown> }[];
    };
    const org = drifted.resources.find((resource) => resource.type.endsWith("LoadBalancedOrganization"));
    const syncStatus = org?.outputs?.syncStatus as { endpoint: string; state: string }[];
    expect(syncStatus.find((entry) => entry.endpoint === secondaryA.url)?.state).to.equal("drifted");

    const up = await testStack.stack.up();
    expect(up.summary.result).to.equal("succeeded");
    expect(up.outputs.inSync.value).to.equal(true);
    await expectMissing(() => client(secondaryA).getUser(ORG, "mallory"));
    const [p, a] = await states([primary, secondaryA]);
    expect(a.digest).to.equal(p.digest);
    const check = await testStack.stack.refresh({ expectNoChanges: true });
    expect(check.summary.result).to.equal("succeeded");
  });

  it("4. demote removes the copies, promote copies the org whole; syncTrigger forces a full sync", async () => {
    const primaryBefore = (await states([primary]))[0];
    spec.org = { ...spec.org, loadBalanced: false };
    await testStack.stack.up();
    const [p, a, b] = await states([primary, secondaryA, secondaryB]);
    expect([a.role, b.role]).to.deep.equal(["none", "none"]);
    expect(p.digest).to.not.equal("");

    spec.org = { ...spec.org, loadBalanced: true };
    let linesBefore = syncLines().length;
    const promoted = await testStack.stack.up();
    expect(promoted.outputs.inSync.value).to.equal(true);
    const [p2, a2, b2] = await states([primary, secondaryA, secondaryB]);
    expect(a2.digest).to.equal(p2.digest);
    expect(b2.digest).to.equal(p2.digest);
    expect(syncLines().slice(linesBefore)).to.match(/127\.0\.2\.2:\d+: snapshot/);
    // Demotion and promotion changed only the org's settings on the primary, never its content.
    expect((await client(primary).listUsers(ORG)).length).to.equal(2);
    expect(primaryBefore.role).to.equal("primary");

    linesBefore = syncLines().length;
    spec.org = { ...spec.org, syncTrigger: 1 };
    await testStack.stack.up();
    const forced = syncLines().slice(linesBefore);
    expect(forced).to.match(/127\.0\.2\.2:\d+: snapshot/);
    expect(forced).to.match(/127\.0\.2\.3:\d+: snapshot/);
  });

  it("5. an unreachable secondary fails the up, the primary keeps the change, the next up completes it", async () => {
    await secondaryB.stop();
    spec.users.bob = { ...spec.users.bob, displayName: "Bob Builder" };
    const failure = await failureOf(() => testStack.stack.up());
    expect(failure).to.include("127.0.2.3");
    expect(failure).to.match(/pulumi up' again|lbhosting sync/);
    expect((await client(primary).getUser(ORG, "bob")).displayName).to.equal("Bob Builder");

    await secondaryB.restart();
    const healed = await testStack.stack.up();
    expect(healed.summary.result).to.equal("succeeded");
    const [p, b] = await states([primary, secondaryB]);
    expect(b.digest).to.equal(p.digest);
    expect((await client(secondaryB).getUser(ORG, "bob")).displayName).to.equal("Bob Builder");
  });

  it("6. bad input fails preview with the field named, and moves no agent", async () => {
    const before = await states([primary, secondaryA, secondaryB]);
    const saved = spec;
    const cases: [string, Spec, RegExp][] = [
      [
        "a username with a space",
        { ...saved, users: { ...saved.users, eve: { username: "eve smith", password: "eve-password-1" } } },
        /username must start with a lowercase letter/,
      ],
      [
        "a domain with ';'",
        {
          ...saved,
          services: {
            ...saved.services,
            evil: { name: "evil", kind: "website", domains: ["evil.test;"], documentRoot: "x" },
          },
        },
        /domains\.0 must be a lowercase DNS name/,
      ],
      [
        "documentRoot escaping the content folder",
        {
          ...saved,
          services: {
            ...saved.services,
            evil: { name: "evil", kind: "website", domains: ["e.test"], documentRoot: "../x" },
          },
        },
        /documentRoot must be '\.' or a relative path/,
      ],
      [
        "loadBalanced without secondaries",
        { ...saved, org: { ...saved.org, loadBalanced: true, secondaries: [] } },
        /loadBalanced loadBalanced: true requires at least one secondary/,
      ],
    ];
    try {
      for (const [what, badSpec, message] of cases) {
        spec = badSpec;
        const failure = await failureOf(() => testStack.stack.preview());
        expect(failure, what).to.match(message);
      }
    } finally {
      spec = saved;
    }
    expect(await states([primary, secondaryA, secondaryB])).to.deep.equal(before);
  });

  it("7. changing primary moves the org with its users and services", async () => {
    const before = await client(primary).snapshot(ORG);
    spec.org = { ...spec.org, primary: sparePrimary.url };
    const result = await testStack.stack.up();
    expect(result.summary.result).to.equal("succeeded");
    expect(result.outputs.primary.value).to.equal(sparePrimary.url);
    const moved = await client(sparePrimary).snapshot(ORG);
    expect(moved.users.map((user) => [user.username, user.passwordHash])).to.deep.equal(
      before.users.map((user) => [user.username, user.passwordHash]),
    );
    expect(moved.services.map((service) => service.name)).to.deep.equal(before.services.map((s) => s.name));
    await expectMissing(() => client(primary).getOrg(ORG));
    const [p, a, b] = await states([sparePrimary, secondaryA, secondaryB]);
    expect(a.digest).to.equal(p.digest);
    expect(b.digest).to.equal(p.digest);
  });

  it("create refuses to take over what another owner made, unless adopt; a retried create proceeds", async () => {
    const current = client(sparePrimary);
    await current.putUser(ORG, "dave", { password: PASSWORDS.dave, displayName: "made by hand" });
    spec.users.dave = { username: "dave", password: PASSWORDS.dave };
    const refused = await failureOf(() => testStack.stack.up());
    expect(refused).to.match(/user dave already exists .* not created by this resource .* set adopt: true/);
    expect((await current.getUser(ORG, "dave")).displayName).to.equal("made by hand");

    spec.users.dave = { ...spec.users.dave, adopt: true };
    expect((await testStack.stack.up()).summary.result).to.equal("succeeded");
    expect((await current.getUser(ORG, "dave")).managedBy).to.equal("pulumi:resources/e2e/dave");

    // A create whose first attempt reached the primary but was never recorded in state.
    await current.putUser(ORG, "erin", { password: PASSWORDS.erin, managedBy: "pulumi:resources/e2e/erin" });
    spec.users.erin = { username: "erin", password: PASSWORDS.erin };
    expect((await testStack.stack.up()).summary.result).to.equal("succeeded");
  });

  it("refresh drops what was deleted on the primary behind Pulumi's back; up recreates it", async () => {
    await client(sparePrimary).deleteUser(ORG, "erin");
    const refresh = await testStack.stack.refresh();
    expect(refresh.summary.resourceChanges?.delete).to.equal(1);
    const up = await testStack.stack.up();
    expect(up.summary.resourceChanges?.create).to.equal(1);
    expect((await client(secondaryA).getUser(ORG, "erin")).username).to.equal("erin");
  });

  it("a password changed on the primary behind Pulumi's back is drift; up sets the program's again", async () => {
    await client(sparePrimary).putUser(ORG, "bob", { password: "changed-by-hand-1", email: "bob@example.com" });
    expect(await failureOf(() => testStack.stack.refresh({ expectNoChanges: true }))).to.match(
      /no changes were expected/,
    );
    await testStack.stack.up();
    const bob = await client(secondaryB).getUser(ORG, "bob");
    expect(verifyPassword(PASSWORDS.bob, bob.passwordHash)).to.equal(true);
    expect((await testStack.stack.refresh({ expectNoChanges: true })).summary.result).to.equal("succeeded");
  });

  it("9. no password or token appears in state, agent databases or logs (scanned while the org exists)", async () => {
    const secrets = [...Object.values(PASSWORDS), TOKEN];
    const haystacks: [string, string][] = [
      ["exported state", JSON.stringify(await testStack.exportState())],
      ["stack config", readAll(path.join(testStack.root, "work"))],
      ["backend", readAll(path.join(testStack.root, "state"))],
      ["sync log", syncLines()],
    ];
    for (const agent of [primary, secondaryA, secondaryB, sparePrimary]) {
      haystacks.push([`${agent.name} log`, agent.log()]);
      const db = new Database(path.join(agent.dataDir, "agent.db"), { readonly: true });
      const dump = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .all()
        .map((row) => JSON.stringify(db.prepare(`SELECT * FROM "${(row as { name: string }).name}"`).all()))
        .join("\n");
      db.close();
      haystacks.push([`${agent.name} database`, dump]);
    }
    for (const [where, text] of haystacks) {
      expect(text.length, where).to.be.greaterThan(0);
      for (const secret of secrets) expect(text.includes(secret), `${where} contains a secret`).to.equal(false);
    }
  });
  it("8. destroy leaves no agent holding the org", async () => {
    const result = await testStack.stack.destroy();
    expect(result.summary.result).to.equal("succeeded");
    for (const agent of [primary, secondaryA, secondaryB, sparePrimary]) {
      await expectMissing(() => client(agent).getOrg(ORG));
    }
  });
});

async function failureOf(run: () => Promise<unknown>): Promise<string> {
  try {
    await run();
  } catch (error) {
    return String(error);
  }
  throw new Error("expected the operation to fail");
}

async function expectMissing(read: () => Promise<unknown>): Promise<void> {
  const failure = await failureOf(read);
  expect(failure).to.match(/HTTP 404/);
}

/** Every file under a folder, concatenated (for secret scans). */
function readAll(dir: string): string {
  if (!fs.existsSync(dir)) return "";
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => fs.readFileSync(path.join(entry.parentPath, entry.name), "utf8"))
    .join("\n");
}
