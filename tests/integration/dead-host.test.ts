/**
 * A silent primary: an agent in a network namespace made here (lbh-i26-dead, veth lbhi26r/lbhi26h,
 * 169.254.226.0/30 on that pair only) whose packets an iptables DROP rule swallows. A refresh of
 * many users through the provider's one client factory waits for one timeout, not one per user;
 * `lbhosting status --timeout-ms` says the connection timed out after that many ms; a host that
 * comes back is used again after the back-off. Needs root, iproute2 and iptables (under CI=true
 * they must be there).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type * as pulumi from "@pulumi/pulumi";
import { expect } from "chai";
import { AgentClient, AgentUnreachableError } from "../../provider/client";
import { credentials } from "../../provider/context";
import { Credentials } from "../../provider/credentials";
import { EndpointHealth } from "../../provider/endpoint-health";
import { userProvider } from "../../provider/user";
import { startAgentProcess, type AgentProcess } from "../support/agent-process";
import { runCli } from "../support/cli-run";
import { sleep } from "../support/faults";
import { createNamespaceHost, type NamespaceHost } from "../support/netns";

const TOKEN = "dead-host-test-token-0123456789ab";
const ORG = "silent";
const USERS = 50;
/** As many reads at once as `pulumi refresh` runs by default. */
const PARALLEL = 10;
const TIMEOUT_MS = 2000;
const PLAIN = `no connection within ${TIMEOUT_MS} ms`;

const configOf = (values: Record<string, string>) => ({ get: (key: string) => values[key] });

/** Runs `tasks` `parallel` at a time; each one's error message, or "ok". */
async function inParallel(tasks: (() => Promise<unknown>)[], parallel: number): Promise<string[]> {
  const outcomes: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const index = next++;
      outcomes[index] = await tasks[index]().then(
        () => "ok",
        (error: Error) => error.message,
      );
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return outcomes;
}

describe("a silent primary (network namespace, iptables DROP)", function () {
  this.timeout(120_000);
  let host: NamespaceHost | undefined;
  let agent: AgentProcess | undefined;
  let dropped = false;
  let scratch: string | undefined;
  const usernames = Array.from({ length: USERS }, (_, index) => `user${index}`);

  const setDropped = (drop: boolean) => {
    if (drop === dropped || !host) return;
    if (drop) host.drop();
    else host.undrop();
    dropped = drop;
  };

  before(async function () {
    this.timeout(60_000);
    host = createNamespaceHost(this, {
      name: "lbh-i26-dead",
      rootLink: "lbhi26r",
      hostLink: "lbhi26h",
      rootAddress: "169.254.226.1",
      hostAddress: "169.254.226.2",
    });
    agent = await startAgentProcess({ host: host.address, token: TOKEN, runUnder: host.exec });
    const setup = new AgentClient(agent.url, TOKEN, { timeoutMs: 10_000 });
    await setup.putOrg(ORG, {});
    for (const username of usernames) await setup.putUser(ORG, username, { password: `${username}-password-1` });
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), "lbh-dead-host-"));
  });

  after(async function () {
    this.timeout(30_000);
    if (host && dropped) host.undrop();
    if (agent) {
      await agent.stop();
      agent.cleanup();
    }
    host?.remove();
    if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
    delete process.env.LBHOSTING_SYNC_LOG;
    credentials.configure(configOf({}));
  });

  it("a refresh of every user through the provider's client factory waits for one timeout, not one per user", async function () {
    const primary = (agent as AgentProcess).url;
    const syncLog = path.join(scratch as string, "sync.log");
    process.env.LBHOSTING_SYNC_LOG = syncLog;
    credentials.configure(configOf({ "lbhosting:token": TOKEN, "lbhosting:timeoutMs": String(TIMEOUT_MS) }));
    const read = userProvider.read as NonNullable<pulumi.dynamic.ResourceProvider["read"]>;
    const refresh = (username: string) => () =>
      read(`${ORG}/${username}`, { organization: { name: ORG, primary }, username, password: "unused" });

    setDropped(true);
    const started = Date.now();
    const outcomes = await inParallel(usernames.map(refresh), PARALLEL);
    const elapsed = Date.now() - started;
    const waited = outcomes.filter((message) => message === `${primary} is unreachable: ${PLAIN}`);
    const remembered = outcomes.filter((message) =>
      message.startsWith(`${primary} is unreachable: ${PLAIN}, first at `),
    );
    console.log(
      `      ${USERS} reads, ${PARALLEL} at a time: ${elapsed} ms; ${waited.length} waited for the timeout, ` +
        `${remembered.length} failed at once; ${host?.dropped()} packets dropped`,
    );
    expect(waited.length + remembered.length, outcomes.join("\n")).to.equal(USERS);
    // Only the reads already waiting when the first timeout ran out waited for it.
    expect(waited.length).to.be.within(1, PARALLEL);
    expect(new Set(remembered).size, "one message for one cause").to.equal(1);
    const silentLines = fs
      .readFileSync(syncLog, "utf8")
      .split("\n")
      .filter((line) => line.includes("is unreachable"));
    expect(silentLines, "one summary line for the silent host").to.have.length(1);
    expect(silentLines[0]).to.include(`${primary} is unreachable: ${PLAIN}, first at `);
  });

  it("uses a host that comes back, after the back-off, one probe at a time", async function () {
    const primary = (agent as AgentProcess).url;
    let now = Date.parse("2026-12-07T12:00:00Z");
    const health = new EndpointHealth({ now: () => now, probeBackoffMs: 15_000 });
    const own = new Credentials(() => TOKEN, health);
    own.configure(configOf({ "lbhosting:timeoutMs": String(TIMEOUT_MS) }));
    const client = own.clientFor(primary);

    setDropped(true);
    const first = await client.getOrg(ORG).catch((error: Error) => error);
    expect(first).to.be.instanceOf(AgentUnreachableError).with.property("reason", PLAIN);
    setDropped(false);
    // Back, but not asked before the back-off: the calls still fail at once.
    const early = await client.getOrg(ORG).catch((error: Error) => error);
    expect((early as Error).message).to.include(`${PLAIN}, first at 2026-12-07T12:00:00Z`);

    now += 15_000;
    expect((await client.getOrg(ORG)).name).to.equal(ORG);
    expect(await client.listUsers(ORG)).to.have.length(USERS);
  });

  it("says what each attempt met when the host falls silent under a kept-alive connection", async function () {
    const primary = (agent as AgentProcess).url;
    const client = new AgentClient(primary, TOKEN, { timeoutMs: TIMEOUT_MS, health: new EndpointHealth() });
    setDropped(false);
    expect((await client.getOrg(ORG)).name).to.equal(ORG);
    // Once the connection is back in the pool (a moment after the answer), and within its
    // keep-alive time (4 s), the next request goes out on it.
    await sleep(300);
    setDropped(true);
    const error = await client.getOrg(ORG).catch((failure: Error) => failure);
    expect(error)
      .to.be.instanceOf(AgentUnreachableError)
      .with.property("reason", `no answer within ${TIMEOUT_MS} ms, then ${PLAIN}`);
  });

  it("lbhosting status --timeout-ms says the connection timed out, after that long", async function () {
    const primary = (agent as AgentProcess).url;
    const tokenFile = path.join(scratch as string, "token");
    fs.writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
    setDropped(true);
    const started = Date.now();
    const result = await runCli(
      ["status", "--org", ORG, "--primary", primary, "--token-file", tokenFile, "--timeout-ms", String(TIMEOUT_MS)],
      {},
      60_000,
    );
    console.log(`      lbhosting status with the primary dropped: ${Date.now() - started} ms, exit ${result.code}`);
    expect(result.code).to.equal(2);
    expect(result.stderr).to.include(`the primary ${primary} is unreachable (${PLAIN})`);
    setDropped(false);
  });
});
