/**
 * Every example is a Pulumi project folder that a user copies: each runs here as its README says,
 * with the real CLI in a temporary copy of its folder and the PACKED library installed by npm
 * (`pulumi stack init`, `pulumi config set [--secret]`, `pulumi up --yes`, `pulumi preview
 * --expect-no-changes`, `pulumi refresh --expect-no-changes`, `pulumi destroy --yes`), against
 * real agents on loopback (bare-servers has its own suite: tests/e2e/hosting-node.test.ts).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { expect } from "chai";
import { AgentClient } from "../../provider/client";
import { startAgentProcess, type AgentProcess } from "../support/agent-process";
import { startHostingNode, type HostingNode } from "../support/hosting-node";
import { type AgentCa, makeAgentCa } from "../support/agent-tls";
import { haproxyBinaryOrSkip } from "../support/haproxy";
import { nginxBinaryOrSkip } from "../support/nginx";
import { createProjectFolder, exampleDir, type ProjectFolder } from "../support/project";
import { requirePulumi } from "../support/pulumi";
import { nasFolder } from "../support/nas";

const TOKEN = "examples-agent-token-0123456789ab";

async function expectGone(client: AgentClient, org: string): Promise<void> {
  const failure = await client.getOrg(org).then(
    () => "present",
    (error: unknown) => String(error),
  );
  expect(failure).to.match(/HTTP 404/);
}

/** Sets stack config as the README does: one `pulumi config set` per key. */
async function configure(project: ProjectFolder, values: Record<string, string>, secrets: Record<string, string>) {
  for (const [key, value] of Object.entries(values)) await project.configSet(key, value);
  for (const [key, value] of Object.entries(secrets)) await project.configSet(key, value, { secret: true });
}

describe("e2e: the examples, run by the CLI in their project folders", function () {
  let bin: string;
  const projects: ProjectFolder[] = [];

  before(function () {
    bin = requirePulumi(this);
  });

  after(() => {
    for (const project of projects) project.cleanup();
  });

  async function example(name: string, env?: Record<string, string>): Promise<ProjectFolder> {
    const project = await createProjectFolder(bin, { source: exampleDir(name), env });
    projects.push(project);
    return project;
  }

  describe("quickstart, on HTTPS agents, served by nginx behind a load balancer (HAProxy)", function () {
    let nodes: HostingNode[] = [];
    let content: string;
    let agentsCa: AgentCa;
    let certificates: string;
    const client = (node: HostingNode) => new AgentClient(node.url, TOKEN, { retries: 0, ca: [agentsCa.certificate] });

    before(async function () {
      const nginxBin = nginxBinaryOrSkip(this);
      const haproxyBin = haproxyBinaryOrSkip(this);
      content = nasFolder("quickstart", { "acme/www/index.html": "<h1>Acme Corp</h1>\n" });
      // The agents' private CA, made as README's "HTTPS agents" says; the stack trusts it by config.
      certificates = fs.mkdtempSync(path.join(os.tmpdir(), "lbh-quickstart-agents-ca-"));
      agentsCa = makeAgentCa(certificates, "quickstart");
      const node = (host: string, name: string, serving: { nginxBin: string } | { haproxyBin: string }) =>
        startHostingNode({
          host,
          name,
          token: TOKEN,
          contentRoot: content,
          ...serving,
          agentTls: agentsCa.issue(name, host),
        });
      nodes = await Promise.all([
        node("127.0.11.1", "web1", { nginxBin }),
        node("127.0.11.2", "web2", { nginxBin }),
        node("127.0.11.3", "lb1", { haproxyBin }),
      ]);
    });

    after(async () => {
      for (const node of nodes) await node.stop();
      for (const dir of [content, certificates]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    it("up serves the site through the load balancer (checked by its local.Command), preview and refresh show no changes, destroy removes the org", async () => {
      const [web1, web2, lb1] = nodes;
      const project = await example("quickstart");
      await configure(
        project,
        {
          primary: web1.url,
          secondaries: JSON.stringify([web2.url]),
          loadBalancer: lb1.url,
          siteCheckUrl: `${lb1.haproxy!.url}/`,
          "lbhosting:caCertificate": agentsCa.certificate,
        },
        { alicePassword: "alice-example-pw", bobPassword: "bob-example-pw", "lbhosting:token": TOKEN },
      );
      await project.up();
      const outputs = await project.outputs();
      expect([web1, web2, lb1].map((node) => new URL(node.url).protocol)).to.deep.equal(["https:", "https:", "https:"]);
      expect(outputs.inSync).to.equal(true);
      expect(outputs.siteUrls).to.deep.equal(["http://www.acme.test/"]);
      expect(outputs.siteCheck).to.include("Acme Corp");
      const heads = await Promise.all([web1, web2].map((node) => client(node).getOrg("acme")));
      expect(heads[0].digest).to.equal(heads[1].digest);
      // The outputs come from the SyncCheck after the users and services: the org as it ended the up.
      expect({ generation: outputs.generation, digest: outputs.digest }).to.deep.equal({
        generation: heads[0].generation,
        digest: heads[0].digest,
      });
      // ... and its provider in state is the installed package's shim, not a serialized closure.
      const state = JSON.stringify(await project.exportState());
      expect(state).to.include('require(\\"pulumi-lbhosting/shims/sync-check\\")');

      await project.preview({ expectNoChanges: true });
      await project.refresh({ expectNoChanges: true });

      // The check fails the up when the site does not answer with the expected content.
      await project.configSet("siteText", "Not the Acme page");
      const failed = await project.up().then(
        () => "succeeded",
        (error: Error) => error.message,
      );
      expect(failed).to.match(/site-check/);
      expect(failed).to.not.equal("succeeded");

      await project.destroy();
      await Promise.all([web1, web2].map((node) => expectGone(client(node), "acme")));
      expect(
        await client(lb1)
          .getRoute("acme")
          .then(() => "routed", String),
      ).to.match(/HTTP 404/);
    });
  });

  describe("promote-demote and ci-drift, on config-only agents", function () {
    let agents: AgentProcess[] = [];
    const client = (agent: AgentProcess) => new AgentClient(agent.url, TOKEN, { retries: 0 });

    before(async () => {
      agents = await Promise.all(
        ["127.0.11.11", "127.0.11.12", "127.0.11.13"].map((host) => startAgentProcess({ host, token: TOKEN })),
      );
    });

    after(async () => {
      for (const agent of agents) {
        await agent.stop();
        agent.cleanup();
      }
    });

    const topology = () => ({
      primary: agents[0].url,
      secondaries: JSON.stringify([agents[1].url, agents[2].url]),
    });

    it("promote-demote: the loadBalanced config value adds and removes the copies", async () => {
      const project = await example("promote-demote");
      await configure(project, { ...topology(), loadBalanced: "false" }, { "lbhosting:token": TOKEN });
      await project.up();
      await Promise.all([agents[1], agents[2]].map((agent) => expectGone(client(agent), "shop")));

      await project.configSet("loadBalanced", "true");
      await project.up();
      expect((await project.outputs()).inSync).to.equal(true);
      expect((await client(agents[1]).getOrg("shop")).role).to.equal("secondary");
      await project.preview({ expectNoChanges: true });

      await project.configSet("loadBalanced", "false");
      await project.up();
      await Promise.all([agents[1], agents[2]].map((agent) => expectGone(client(agent), "shop")));
      expect((await client(agents[0]).listServices("shop")).map((service) => service.name)).to.deep.equal(["www"]);
      await project.refresh({ expectNoChanges: true });
      await project.destroy();
      await expectGone(client(agents[0]), "shop");
    });

    it("ci-drift: up, the drift check passes, a hand edit fails it, up heals it, destroy", async () => {
      // As in the README's CI job, the agents' token comes from the environment.
      const project = await example("ci-drift", { LBHOSTING_TOKEN: TOKEN });
      await configure(project, topology(), { deployPassword: "deploy-example-pw" });

      await project.up();
      expect((await project.outputs()).inSync).to.equal(true);
      await project.preview({ expectNoChanges: true });
      await project.refresh({ expectNoChanges: true });
      await client(agents[2]).deleteService("blog", "ftp", true);
      const drift = await project.refresh({ expectNoChanges: true }).then(
        () => "passed",
        (error: Error) => error.message,
      );
      expect(drift, "the drift check fails after a hand edit").to.match(/no changes were expected/);
      await project.up();
      expect((await project.outputs()).inSync).to.equal(true);
      await project.refresh({ expectNoChanges: true });
      await project.destroy();
      await Promise.all(agents.map((agent) => expectGone(client(agent), "blog")));
    });
  });
});
