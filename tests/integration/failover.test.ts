/**
 * The organization provider changing `primary`, against real agents on loopback (127.0.51.1 – 4;
 * .4 is a load-balancer agent that only writes its HAProxy file): a failover after the primary is
 * SIGKILLed — the copy promoted in place, the other copy following it, the load balancer's route
 * without the old primary, the old primary reported stale once back and the org removed from it —
 * a copy behind another one refused naming the generations unless allowDataLoss, and a move while
 * the old primary is up.
 */
import { expect } from "chai";
import type * as pulumi from "@pulumi/pulumi";
import { AgentClient } from "../../provider/client";
import { organizationProvider, type OrganizationOutputs } from "../../provider/organization";
import { syncOrg } from "../../provider/sync";
import { userProvider } from "../../provider/user";
import type { OrganizationInputs, OrgUserInputs } from "../../sdk/inputs";
import { type AgentProcess, startAgentProcess } from "../support/agent-process";

const TOKEN = "failover-test-token-0123456789ab";
const HOSTS = ["127.0.51.1", "127.0.51.2", "127.0.51.3"];

describe("organization provider: failover, fencing and move (real agents)", function () {
  this.timeout(180_000);
  let nodes: AgentProcess[] = [];
  let balancer: AgentProcess;
  const client = (agent: AgentProcess) => new AgentClient(agent.url, TOKEN, { timeoutMs: 5000, retries: 0 });
  const urls = () => nodes.map((node) => node.url);

  before(async () => {
    // Each node reports an FTP address and passive range, so the load balancer routes it.
    nodes = await Promise.all(
      HOSTS.map((host, index) =>
        startAgentProcess({
          host,
          token: TOKEN,
          name: `node-${index + 1}`,
          extraArgs: [
            "--ftp-listen",
            `${host}:2121`,
            "--ftp-passive-ports",
            `${31000 + index * 10}:${31009 + index * 10}`,
          ],
        }),
      ),
    );
    balancer = await startAgentProcess({ host: "127.0.51.4", token: TOKEN, name: "lb" });
    const config = { get: (key: string) => ({ "lbhosting:token": TOKEN, "lbhosting:timeoutMs": "3000" })[key] };
    await organizationProvider.configure!({ config } as unknown as pulumi.dynamic.ConfigureRequest);
  });

  after(async () => {
    for (const agent of [...nodes, balancer]) {
      await agent?.stop();
      agent?.cleanup();
    }
  });

  const create = async (inputs: OrganizationInputs) =>
    (await organizationProvider.create(inputs)).outs as OrganizationOutputs;
  const update = async (olds: OrganizationOutputs, news: OrganizationInputs) =>
    (await organizationProvider.update!(news.name, olds, news)).outs as OrganizationOutputs;
  const routeNames = async (org: string) =>
    (await client(balancer).getRoute(org)).backends.map((backend) => backend.name).sort();
  const user = (org: OrganizationInputs, username: string): OrgUserInputs => ({
    organization: { name: org.name, primary: org.primary },
    username,
    password: `${username}-password`,
  });

  it("fails over to the copy when the primary is killed, then fences the old primary once it is back", async () => {
    const [a, b, c] = urls();
    const inputs: OrganizationInputs = {
      name: "alpha",
      primary: a,
      secondaries: [b, c],
      loadBalanced: true,
      loadBalancer: balancer.url,
      loadBalancerFtp: "127.0.51.4:2121",
    };
    let outs = await create(inputs);
    for (const username of ["ann", "ben"]) await userProvider.create(user(inputs, username));
    expect(await routeNames("alpha")).to.deep.equal(["node-1", "node-2", "node-3"]);
    const before = await client(nodes[0]).snapshot("alpha");

    await nodes[0].stop("SIGKILL");
    const failover = { ...inputs, primary: b, secondaries: [c] };
    outs = await update(outs, failover);
    expect(outs).to.deep.include({ primary: b, epoch: 1, inSync: true });
    expect(outs.fencing).to.have.length(1);
    expect(outs.fencing[0]).to.include({ endpoint: a, state: "unreachable" });
    expect(outs.syncStatus.map((entry) => [entry.endpoint, entry.state])).to.deep.equal([[c, "in-sync"]]);
    const promoted = await client(nodes[1]).snapshot("alpha");
    expect(promoted.users.map((u) => [u.username, u.passwordHash])).to.deep.equal(
      before.users.map((u) => [u.username, u.passwordHash]),
    );
    expect(await client(nodes[1]).getOrg("alpha")).to.include({ role: "primary", epoch: 1 });
    expect(await client(nodes[2]).getOrg("alpha")).to.include({ primary: b, epoch: 1, digest: promoted.digest });
    expect(await routeNames("alpha"), "the load balancer no longer sends to the old primary").to.deep.equal([
      "node-2",
      "node-3",
    ]);
    // Users re-point: an update on the new primary changes nothing there, and syncs.
    await userProvider.update!("alpha/ann", user(inputs, "ann"), user(failover, "ann"));

    // The old primary comes back still believing it is the primary, at epoch 0.
    await nodes[0].restart();
    expect(await client(nodes[0]).getOrg("alpha")).to.include({ role: "primary", epoch: 0 });
    const refreshed = await organizationProvider.read!("alpha", outs);
    const props = refreshed.props as OrganizationOutputs;
    expect(props.fencing).to.deep.equal([
      { endpoint: a, state: "stale-primary", epoch: 0, generation: before.generation },
    ]);
    expect((await organizationProvider.diff!("alpha", props, failover)).changes).to.equal(true);
    const stale = await syncOrg(client(nodes[0]), "alpha", (endpoint) => new AgentClient(endpoint, TOKEN));
    expect(stale.inSync).to.equal(false);
    for (const entry of stale.secondaries) expect(entry.error).to.include("stale_epoch");

    // The next up removes the org from the old primary (the program does not list it).
    outs = await update(props, failover);
    expect(outs.fencing).to.deep.equal([]);
    expect(
      await client(nodes[0])
        .getOrg("alpha")
        .catch((error: Error) => error.message),
    ).to.match(/HTTP 404/);
    expect((await organizationProvider.diff!("alpha", outs, failover)).changes).to.equal(false);
  });

  it("refuses a copy behind another reachable copy, naming the generations; allowDataLoss promotes it", async () => {
    const [a, b, c] = urls();
    const inputs: OrganizationInputs = { name: "beta", primary: a, secondaries: [b, c], loadBalanced: true };
    const outs = await create(inputs);
    // b misses a write that c gets.
    await nodes[1].stop("SIGKILL");
    const partial = await userProvider.create(user(inputs, "cid")).catch((error: Error) => error.message);
    expect(partial).to.include(`${b} is unreachable`);
    await nodes[1].restart();
    await nodes[0].stop("SIGKILL");
    const [copyB, copyC] = await Promise.all([client(nodes[1]).getOrg("beta"), client(nodes[2]).getOrg("beta")]);
    expect(copyC.generation).to.equal(copyB.generation + 1);

    const failover = { ...inputs, primary: b, secondaries: [c] };
    const refused = await update(outs, failover).catch((error: Error) => error.message);
    expect(refused).to.include(`organization beta: cannot make ${b} its primary`);
    expect(refused).to.include(`the copy on ${b} is at generation ${copyB.generation} (epoch 0)`);
    expect(refused).to.include(`behind the copy on ${c} at generation ${copyC.generation} (epoch 0)`);
    expect(refused).to.include(`set primary to ${c}, or set allowDataLoss: true`);
    expect(await client(nodes[1]).getOrg("beta"), "nothing changed").to.deep.equal(copyB);

    const forced = await update(outs, { ...failover, allowDataLoss: true });
    expect(forced).to.deep.include({ primary: b, epoch: 1, inSync: true });
    const [newPrimary, follower] = await Promise.all([
      client(nodes[1]).getOrg("beta"),
      client(nodes[2]).getOrg("beta"),
    ]);
    expect(newPrimary).to.include({ role: "primary", epoch: 1 });
    expect(follower).to.include({ primary: b, epoch: 1, digest: newPrimary.digest });
    await nodes[0].restart();
  });

  it("moves the org while the old primary is up: same generation and hashes, epoch raised, gone from the old", async () => {
    const [a, b, c] = urls();
    const inputs: OrganizationInputs = { name: "gamma", primary: a, secondaries: [b], loadBalanced: true };
    const outs = await create(inputs);
    await userProvider.create(user(inputs, "dee"));
    const before = await client(nodes[0]).snapshot("gamma");
    const moved = await update(outs, { ...inputs, primary: c });
    expect(moved).to.deep.include({ primary: c, epoch: 1, inSync: true, fencing: [] });
    const after = await client(nodes[2]).snapshot("gamma");
    expect(after.users).to.deep.equal(before.users);
    expect(after).to.include({ generation: before.generation, digest: before.digest });
    expect(
      await client(nodes[0])
        .getOrg("gamma")
        .catch((error: Error) => error.message),
    ).to.match(/HTTP 404/);
    expect(await client(nodes[1]).getOrg("gamma")).to.include({ primary: c, epoch: 1, digest: after.digest });
  });
});
