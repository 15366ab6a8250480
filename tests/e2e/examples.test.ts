/**
 * Every example is a runnable Pulumi program: each goes through up and destroy with the real CLI
 * against real agents on loopback, and promote-demote is flipped both ways.
 */
import * as path from "node:path";
import { expect } from "chai";
import type { PulumiFn } from "@pulumi/pulumi/automation";
import { AgentClient } from "../../provider/client";
import { startAgentProcess, type AgentProcess } from "../support/agent-process";
import { createTestStack, REPO_ROOT, requirePulumi, type TestStack } from "../support/pulumi";

const TOKEN = "examples-agent-token-0123456789ab";

const loadExample = (name: string): PulumiFn => require(path.join(REPO_ROOT, "dist", "examples", name, "index.js"));

describe("e2e: the examples", function () {
  let bin: string;
  let agents: AgentProcess[] = [];
  const stacks: TestStack[] = [];
  const client = (agent: AgentProcess) => new AgentClient(agent.url, TOKEN, { retries: 0 });

  before(async function () {
    bin = requirePulumi(this);
    agents = await Promise.all(
      ["127.0.6.1", "127.0.6.2", "127.0.6.3"].map((host) => startAgentProcess({ host, token: TOKEN })),
    );
  });

  after(async () => {
    for (const stack of stacks) stack.cleanup();
    for (const agent of agents) {
      await agent.stop();
      agent.cleanup();
    }
  });

  async function exampleStack(name: string, config: Record<string, { value: string; secret?: boolean }>) {
    const stack = await createTestStack(bin, {
      projectName: name,
      program: loadExample(name),
      config: { "lbhosting:token": { value: TOKEN, secret: true }, ...config },
    });
    stacks.push(stack);
    return stack;
  }

  const topology = () => ({
    primary: { value: agents[0].url },
    secondaries: { value: JSON.stringify([agents[1].url, agents[2].url]) },
  });

  it("quickstart: up puts the same org on primary and secondaries, destroy removes it", async () => {
    const { stack } = await exampleStack("quickstart", {
      ...topology(),
      alicePassword: { value: "alice-example-pw", secret: true },
      bobPassword: { value: "bob-example-pw", secret: true },
    });
    const up = await stack.up();
    expect(up.outputs.inSync.value).to.equal(true);
    expect(up.outputs.siteUrls.value).to.deep.equal(["http://www.acme.test/"]);
    const digests = await Promise.all(agents.map(async (agent) => (await client(agent).getOrg("acme")).digest));
    expect(new Set(digests).size).to.equal(1);
    await stack.destroy();
    await Promise.all(agents.map((agent) => expectGone(client(agent), "acme")));
  });

  it("promote-demote: the loadBalanced config value adds and removes the copies", async () => {
    const { stack } = await exampleStack("promote-demote", { ...topology(), loadBalanced: { value: "false" } });
    await stack.up();
    await Promise.all([agents[1], agents[2]].map((agent) => expectGone(client(agent), "shop")));

    await stack.setConfig("loadBalanced", { value: "true" });
    const promoted = await stack.up();
    expect(promoted.outputs.inSync.value).to.equal(true);
    expect((await client(agents[1]).getOrg("shop")).role).to.equal("secondary");

    await stack.setConfig("loadBalanced", { value: "false" });
    await stack.up();
    await Promise.all([agents[1], agents[2]].map((agent) => expectGone(client(agent), "shop")));
    expect((await client(agents[0]).listServices("shop")).map((service) => service.name)).to.deep.equal(["www"]);
    await stack.destroy();
    await expectGone(client(agents[0]), "shop");
  });

  it("ci-drift: up, the drift check passes, a hand edit fails it, up heals it, destroy", async () => {
    const { stack } = await exampleStack("ci-drift", {
      ...topology(),
      deployPassword: { value: "deploy-example-pw", secret: true },
    });
    expect((await stack.up()).outputs.inSync.value).to.equal(true);
    await stack.refresh({ expectNoChanges: true });
    await client(agents[2]).deleteService("blog", "ftp", true);
    let failed = false;
    await stack.refresh({ expectNoChanges: true }).catch(() => (failed = true));
    expect(failed, "the drift check fails after a hand edit").to.equal(true);
    expect((await stack.up()).outputs.inSync.value).to.equal(true);
    await stack.refresh({ expectNoChanges: true });
    await stack.destroy();
    await Promise.all(agents.map((agent) => expectGone(client(agent), "blog")));
  });
});

async function expectGone(client: AgentClient, org: string): Promise<void> {
  const failure = await client.getOrg(org).then(
    () => "present",
    (error: unknown) => String(error),
  );
  expect(failure).to.match(/HTTP 404/);
}
