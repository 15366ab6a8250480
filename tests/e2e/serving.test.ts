/**
 * Real serving end to end: the real Pulumi CLI, per node an agent plus a real nginx on its own
 * loopback address, a shared content folder (the NAS), a pure-ftpd per node advertising the load
 * balancer for passive mode, and a load balancer (an agent driving HAProxy) in front. Promotion,
 * demotion (with an FTP session open on the demoted node) and website changes are seen through the
 * load balancer; FTP logins are tried through it and on every node.
 */
import * as fs from "node:fs";
import { expect } from "chai";
import { AgentClient } from "../../provider/client";
import {
  LoadBalancedOrganization,
  OrgUser,
  WebService,
  type LoadBalancedOrganizationArgs,
  type OrgUserArgs,
  type WebServiceArgs,
} from "../../sdk";
import { nodeBehind, startBalancedNodes, type HostingNode } from "../support/hosting-node";
import { getSite, type SiteResponse } from "../support/http-get";
import { FtpSession } from "../support/ftp-client";
import { haproxyBinaryOrSkip } from "../support/haproxy";
import { nginxBinaryOrSkip } from "../support/nginx";
import { ftpTry, pureFtpdOrSkip } from "../support/pureftpd";
import { createTestStack, requirePulumi, type TestStack } from "../support/pulumi";
import { nasFolder } from "../support/nas";

const TOKEN = "serving-e2e-token-0123456789abcdef";
const WWW = "www.acme.test";
const BLOG = "blog.acme.test";
const PASSWORDS = { alice: "alice-ftp-password-1", aliceNew: "alice-ftp-password-2", bob: "bob-ftp-password-1" };

describe("e2e: serving through nginx on every node and a load balancer in front", function () {
  let primary: HostingNode;
  let secondary: HostingNode;
  let balancer: HostingNode;
  let content: string;
  let testStack: TestStack;
  let org: LoadBalancedOrganizationArgs;
  let services: Record<string, Omit<WebServiceArgs, "organization">>;
  let users: Record<string, Omit<OrgUserArgs, "organization">>;
  let ftpAddress: string;
  const sessions: FtpSession[] = [];

  const viaBalancer = (host: string) => getSite(`${balancer.haproxy!.url}/`, host);
  /** An FTP session through the load balancer, and the node behind it (from its passive port). */
  const ftpThroughBalancer = async (password = PASSWORDS.alice): Promise<{ session: FtpSession; node: string }> => {
    const [host, port] = ftpAddress.split(":");
    const session = await FtpSession.open({ host, port: Number(port), user: "alice@files.acme", password });
    sessions.push(session);
    await session.list();
    return { session, node: nodeBehind(session, [primary, secondary]) };
  };
  const direct = (node: HostingNode, host: string) => getSite(`${node.nginx!.url}/`, host);

  /** `count` sequential requests through the load balancer. */
  async function requests(host: string, count = 20): Promise<SiteResponse[]> {
    const responses: SiteResponse[] = [];
    for (let i = 0; i < count; i++) responses.push(await viaBalancer(host));
    return responses;
  }

  before(async function () {
    const bin = requirePulumi(this);
    const nginxBin = nginxBinaryOrSkip(this);
    const haproxyBin = haproxyBinaryOrSkip(this);
    const ftp = pureFtpdOrSkip(this);
    content = nasFolder("serving", {
      "acme/www/index.html": "Acme www from the NAS\n",
      "acme/blog/index.html": "Acme blog from the NAS\n",
      "acme/ftp-root/index.html": "Acme files\n",
    });
    ({ primary, secondary, balancer, ftpAddress } = await startBalancedNodes({
      hosts: ["127.0.9.1", "127.0.9.2", "127.0.9.3"],
      names: ["primary", "secondary", "balancer"],
      token: TOKEN,
      contentRoot: content,
      nginxBin,
      haproxyBin,
      ftp,
    }));
    org = {
      name: "acme",
      primary: primary.url,
      secondaries: [secondary.url],
      loadBalanced: true,
      loadBalancer: balancer.url,
      loadBalancerFtp: ftpAddress,
    };
    services = {
      www: { name: "www", kind: "website", domains: [WWW], documentRoot: "www" },
      files: { name: "files", kind: "ftp", rootPath: "ftp-root", writable: true },
    };
    users = {
      alice: { username: "alice", password: PASSWORDS.alice, access: ["files"] },
      bob: { username: "bob", password: PASSWORDS.bob },
    };
    testStack = await createTestStack(bin, {
      projectName: "serving",
      config: { "lbhosting:token": { value: TOKEN, secret: true } },
      program: async () => {
        const resource = new LoadBalancedOrganization("org", org);
        for (const [key, service] of Object.entries(services)) {
          new WebService(key, { organization: resource, ...service });
        }
        for (const [key, user] of Object.entries(users)) new OrgUser(key, { organization: resource, ...user });
        return { inSync: resource.inSync };
      },
    });
  });

  after(async () => {
    for (const session of sessions) session.destroy();
    for (const node of [balancer, secondary, primary]) await node?.stop();
    testStack?.cleanup();
    if (content) fs.rmSync(content, { recursive: true, force: true });
  });

  it("1. after up, requests through the load balancer are served by both nodes with the same bytes", async () => {
    const started = Date.now();
    let secondaryAnsweredAfter: number | undefined;
    const watch = (async () => {
      for (let i = 0; i < 600 && secondaryAnsweredAfter === undefined; i++) {
        const response = await direct(secondary, WWW).catch(() => undefined);
        if (response?.status === 200) secondaryAnsweredAfter = Date.now() - started;
        else await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    const up = await testStack.stack.up();
    await watch;
    expect(up.outputs.inSync.value).to.equal(true);
    console.log(`      pulumi up start → site answering on the secondary: ${secondaryAnsweredAfter} ms`);

    const responses = await requests(WWW);
    expect(responses.map((response) => response.status)).to.deep.equal(Array(20).fill(200));
    expect(new Set(responses.map((response) => response.servedBy))).to.deep.equal(new Set(["primary", "secondary"]));
    expect(new Set(responses.map((response) => response.body))).to.deep.equal(new Set(["Acme www from the NAS\n"]));
  });

  it("2. demotion drains the secondary with no failed request and lets its FTP session finish; promotion brings it back", async () => {
    // Two FTP sessions through the load balancer: least-busy puts one on each node.
    const opened = [await ftpThroughBalancer(), await ftpThroughBalancer()];
    expect(opened.map((entry) => entry.node).sort()).to.deep.equal(["primary", "secondary"]);
    const onSecondary = opened.find((entry) => entry.node === "secondary")!.session;
    await opened.find((entry) => entry.node === "primary")!.session.quit();

    let stop = false;
    const failures: string[] = [];
    let sent = 0;
    const loop = async () => {
      const deadline = Date.now() + 120_000;
      while (!stop && sent < 200_000 && Date.now() < deadline) {
        sent++;
        const response = await viaBalancer(WWW).catch((error: Error) => ({ status: 0, body: error.message }));
        if (response.status !== 200) failures.push(`${response.status} ${response.body.slice(0, 80)}`);
      }
    };
    const loops = [loop(), loop()];
    org = { ...org, loadBalanced: false };
    let upDone = false;
    const up = testStack.stack.up().finally(() => (upDone = true));
    try {
      // The load balancer drains the secondary: no new session goes there, the open one carries on.
      const deadline = Date.now() + 120_000;
      const lb = new AgentClient(balancer.url, TOKEN);
      const draining = async () =>
        (await lb.balancerStatus("acme")).nodes.find((node) => node.name === "secondary")?.ftp?.status === "DRAIN";
      while (!(await draining())) {
        if (upDone || Date.now() > deadline)
          throw new Error("the secondary was never drained while the session was open");
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(await onSecondary.retrieve("index.html")).to.equal("Acme files\n");
      await onSecondary.store("during-demotion.txt", "uploaded while the secondary drained\n");
      const newcomer = await ftpThroughBalancer();
      expect(newcomer.node, "a login while the secondary drains").to.equal("primary");
      await newcomer.session.quit();
      expect(upDone, "the demotion waits for the FTP session").to.equal(false);
      await onSecondary.quit();
      await up;
    } finally {
      stop = true;
      await Promise.all(loops);
      await up.catch(() => undefined);
    }
    console.log(
      `      demotion: ${sent} requests during the up, ${failures.length} failed; the FTP session on the secondary finished`,
    );
    expect(failures).to.deep.equal([]);
    expect(sent).to.be.greaterThan(0);
    expect(new Set((await requests(WWW)).map((response) => response.servedBy))).to.deep.equal(new Set(["primary"]));
    const after = [await ftpThroughBalancer(), await ftpThroughBalancer()];
    expect(after.map((entry) => entry.node)).to.deep.equal(["primary", "primary"]);
    expect(await after[0].session.retrieve("during-demotion.txt")).to.equal("uploaded while the secondary drained\n");
    await Promise.all(after.map((entry) => entry.session.quit()));

    org = { ...org, loadBalanced: true };
    await testStack.stack.up();
    expect(new Set((await requests(WWW)).map((response) => response.servedBy))).to.deep.equal(
      new Set(["primary", "secondary"]),
    );
  });

  it("3. FTP: users with access log in on both nodes; password changes and removals reach both", async () => {
    const login = (node: HostingNode, user: string, password: string) =>
      ftpTry({ url: node.ftp!.url, user: `${user}@files.acme`, password });
    for (const node of [primary, secondary]) {
      const alice = await login(node, "alice", PASSWORDS.alice);
      expect(alice.ok, `${node.name}: ${alice.stderr}`).to.equal(true);
      expect(alice.names).to.include("index.html");
      expect((await login(node, "bob", PASSWORDS.bob)).ok, `${node.name}: bob has no FTP access`).to.equal(false);
    }

    users = { ...users, alice: { ...users.alice, password: PASSWORDS.aliceNew } };
    await testStack.stack.up();
    for (const node of [primary, secondary]) {
      expect((await login(node, "alice", PASSWORDS.alice)).ok, `${node.name}: old password`).to.equal(false);
      expect((await login(node, "alice", PASSWORDS.aliceNew)).ok, `${node.name}: new password`).to.equal(true);
    }

    users = { bob: users.bob };
    await testStack.stack.up();
    for (const node of [primary, secondary]) {
      expect((await login(node, "alice", PASSWORDS.aliceNew)).ok, `${node.name}: removed user`).to.equal(false);
    }
  });

  it("4. a website added is served through the load balancer on both nodes; removed, it is gone from both", async () => {
    services = { ...services, blog: { name: "blog", kind: "website", domains: [BLOG], documentRoot: "blog" } };
    await testStack.stack.up();
    const added = await requests(BLOG);
    expect(added.map((response) => response.status)).to.deep.equal(Array(20).fill(200));
    expect(new Set(added.map((response) => response.servedBy))).to.deep.equal(new Set(["primary", "secondary"]));
    expect(added[0].body).to.equal("Acme blog from the NAS\n");

    services = Object.fromEntries(Object.entries(services).filter(([key]) => key !== "blog"));
    await testStack.stack.up();
    for (const response of [await viaBalancer(BLOG), await direct(primary, BLOG), await direct(secondary, BLOG)]) {
      expect(response.status).to.equal(404);
      expect(response.servedBy).to.equal(undefined);
    }
    expect((await viaBalancer(WWW)).status).to.equal(200);
  });

  it("destroy removes the route and the sites", async () => {
    await testStack.stack.destroy();
    for (const response of [await viaBalancer(WWW), await direct(primary, WWW), await direct(secondary, WWW)]) {
      expect(response.status).to.equal(404);
    }
  });
});
