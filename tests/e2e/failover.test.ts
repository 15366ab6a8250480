/**
 * Issue 11, "done when": a failover with the real CLI, as an operator runs it — a project folder
 * whose program takes `primary` and `secondaries` from stack config, three agents on loopback
 * (127.0.52.1 – 127.0.52.3). The primary is SIGKILLed; `primary` is changed and `pulumi up` serves
 * the org from the promoted copy with every user and service. The old primary restarted is
 * reported stale by `pulumi refresh` and `lbhosting status`, its replication is refused, and the
 * next `pulumi up` (the program now listing it as a secondary) demotes it into a copy.
 */
import { expect } from "chai";
import { AgentClient } from "../../provider/client";
import { type AgentProcess, startAgentProcess } from "../support/agent-process";
import { runCli } from "../support/cli-run";
import { type CliProject, createCliProject } from "../support/pulumi-cli";
import { requirePulumi } from "../support/pulumi";

const TOKEN = "failover-e2e-token-0123456789abcd";
const ORG = "acme";
const USERS = ["ann", "ben", "cat", "dan"];
const SERVICES = ["files", "www"];

const PROGRAM = `
const pulumi = require("@pulumi/pulumi");
const { LoadBalancedOrganization, OrgUser, WebService } = require("pulumi-lbhosting");
const config = new pulumi.Config();
const org = new LoadBalancedOrganization("org", {
  name: "${ORG}",
  primary: config.require("primary"),
  secondaries: config.requireObject("secondaries"),
  loadBalanced: true,
});
new WebService("www", { organization: org, name: "www", kind: "website", domains: ["www.acme.test"], documentRoot: "www" });
new WebService("files", { organization: org, name: "files", kind: "ftp", rootPath: "files" });
for (const username of ${JSON.stringify(USERS)}) {
  new OrgUser(username, { organization: org, username, password: config.requireSecret("password"), access: ["files"] });
}
exports.primary = org.primary;
exports.epoch = org.epoch;
exports.inSync = org.inSync;
`;

interface Resource {
  type: string;
  outputs?: Record<string, unknown>;
}

describe("e2e: failover to a secondary, fencing and demotion of the old primary", function () {
  let agents: AgentProcess[] = [];
  let project: CliProject;
  const client = (agent: AgentProcess) => new AgentClient(agent.url, TOKEN, { timeoutMs: 5000, retries: 0 });
  const cli = (args: string[]) => runCli(args, { LBHOSTING_TOKEN: TOKEN });
  const up = () => project.ok(["up", "--yes", "--skip-preview", "--non-interactive"]);
  const setNodes = async (primary: AgentProcess, secondaries: AgentProcess[]) => {
    await project.ok(["config", "set", "primary", primary.url]);
    await project.ok(["config", "set", "secondaries", JSON.stringify(secondaries.map((agent) => agent.url))]);
  };
  const resources = async () => ((await project.exportState()) as unknown as { resources: Resource[] }).resources;
  const orgOutputs = async () => (await resources()).find((r) => r.type.endsWith(":LoadBalancedOrganization"))?.outputs;

  before(async function () {
    const bin = requirePulumi(this);
    agents = await Promise.all(
      ["127.0.52.1", "127.0.52.2", "127.0.52.3"].map((host, index) =>
        startAgentProcess({ host, token: TOKEN, name: ["web1", "web2", "web3"][index] }),
      ),
    );
    project = await createCliProject(bin, { projectName: "failover", program: PROGRAM });
    await project.ok(["config", "set", "--secret", "lbhosting:token"], { input: TOKEN });
    await project.ok(["config", "set", "--secret", "password"], { input: "a-user-password" });
  });

  after(async function () {
    project?.cleanup();
    for (const agent of agents) {
      await agent.stop();
      agent.cleanup();
    }
  });

  it("promotes the copy when the primary is lost, then fences and demotes the old primary", async function () {
    const [web1, web2, web3] = agents;
    await setNodes(web1, [web2, web3]);
    await up();
    const before = await client(web1).snapshot(ORG);
    expect(before.users.map((user) => user.username)).to.deep.equal(USERS);

    // The primary is lost: SIGKILL, and the program names the copy on web2 as the primary. It
    // keeps the dead one listed among the secondaries: it becomes a copy once it is back.
    await web1.stop("SIGKILL");
    await setNodes(web2, [web3, web1]);
    const failover = await up();
    expect(failover.stdout).to.include(`failover ${ORG}: ${web1.url} → ${web2.url}, its copy promoted`);
    expect(failover.stdout).to.include(`the former primary ${web1.url} is unreachable`);
    const served = await client(web2).snapshot(ORG);
    expect(await client(web2).getOrg(ORG)).to.include({ role: "primary", epoch: 1 });
    expect(served.users.map((user) => [user.username, user.passwordHash])).to.deep.equal(
      before.users.map((user) => [user.username, user.passwordHash]),
    );
    expect(served.services.map((service) => service.name)).to.deep.equal(SERVICES);
    expect(await client(web3).getOrg(ORG)).to.include({ primary: web2.url, epoch: 1, digest: served.digest });
    // Users and services re-pointed within the same up: each one's state names the new primary.
    const members = (await resources()).filter((r) => /:(OrgUser|WebService)$/.test(r.type));
    expect(members).to.have.length(USERS.length + SERVICES.length);
    for (const member of members) expect(member.outputs?.organization).to.deep.include({ primary: web2.url });
    const failedOver = await orgOutputs();
    expect(failedOver).to.deep.include({ primary: web2.url, epoch: 1, inSync: false });
    expect(failedOver?.fencing).to.deep.equal([
      { endpoint: web1.url, state: "unreachable", error: (failedOver?.fencing as { error: string }[])[0].error },
    ]);
    // The dead node stays out of the org's record until it answers: web3 is its one secondary now.
    expect((await cli(["status", "--org", ORG, "--primary", web2.url, "--secondary", web3.url])).code).to.equal(0);

    // The old primary comes back, still believing it is the primary at epoch 0.
    await web1.restart();
    expect(await client(web1).getOrg(ORG)).to.include({ role: "primary", epoch: 0 });
    const refresh = await project.ok(["refresh", "--yes", "--skip-preview", "--non-interactive"]);
    expect(refresh.stdout).to.include(`organization ${ORG}: ${web1.url} is a stale primary (epoch 0`);
    const refreshed = await orgOutputs();
    expect(refreshed?.fencing).to.deep.equal([
      { endpoint: web1.url, state: "stale-primary", epoch: 0, generation: before.generation },
    ]);
    const pending = await project.run(["preview", "--expect-no-changes", "--non-interactive"]);
    expect(pending.code, "the stale primary is work left for the next up").to.not.equal(0);
    // The operator names the org's other nodes: the commands contact no one else.
    const fromOldPrimary = (command: string) =>
      cli([command, "--org", ORG, "--primary", web1.url, "--secondary", web2.url, "--secondary", web3.url]);
    const status = await fromOldPrimary("status");
    expect(status.code).to.equal(1);
    expect(status.stdout).to.include(`${web1.url} is a stale primary of ${ORG} (epoch 0)`);
    // Fenced: its replication (an operator's `lbhosting sync` from it) reaches no copy.
    const sync = await fromOldPrimary("sync");
    expect(sync.code).to.equal(1);
    expect(sync.stdout + sync.stderr).to.include("stale_epoch");
    expect((await client(web3).getOrg(ORG)).digest).to.equal(served.digest);

    // The next up (the old primary still listed as a secondary) demotes it into a copy.
    const demoting = await up();
    // What the up says of the old primary is how it stood when last checked: this up fences it.
    expect(demoting.stdout).to.include(`${web1.url} is not fenced yet (a stale primary when last checked)`);
    expect(demoting.stdout).to.not.include("the next 'pulumi up' demotes it");
    const demoted = await client(web1).getOrg(ORG);
    expect(demoted).to.include({ role: "secondary", primary: web2.url, epoch: 1 });
    expect(demoted.digest).to.equal((await client(web2).getOrg(ORG)).digest);
    expect((await client(web1).listUsers(ORG)).map((user) => user.username)).to.deep.equal(USERS);
    expect(await orgOutputs()).to.deep.include({ fencing: [], inSync: true });
    const demotedStatus = [
      "status",
      "--org",
      ORG,
      "--primary",
      web2.url,
      "--secondary",
      web1.url,
      "--secondary",
      web3.url,
    ];
    expect((await cli(demotedStatus)).code).to.equal(0);
    await project.ok(["preview", "--expect-no-changes", "--non-interactive"]);
    await project.ok(["destroy", "--yes", "--skip-preview", "--non-interactive"]);
  });
});
