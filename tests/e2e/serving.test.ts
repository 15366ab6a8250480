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
import { type TestCa, makeCa } from "../support/certificates";
import { getSecureSite } from "../support/http-get";
import { certificateSummary } from "../../wire";

const TOKEN = "serving-e2e-token-0123456789abcdef";
const WWW = "www.acme.test";
const BLOG = "blog.acme.test";
const SECURE = "secure.acme.test";
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

  it("5. a website with an uploaded certificate: HTTPS through the load balancer from both nodes, the key never in plain state, a new certificate on every node, drift caught by refresh", async () => {
    const ca: TestCa = makeCa(content, "serving");
    const first = ca.issue("secure-1", { names: [SECURE] });
    const secure = (cert: { chain: string; privateKey: string }) => ({
      name: "secure",
      kind: "website" as const,
      domains: [SECURE],
      documentRoot: "www",
      tls: { certificate: cert.chain, privateKey: cert.privateKey },
      hsts: true,
    });
    const https = () => getSecureSite(balancer.httpsListen, SECURE, ca.certificate);
    /** 20 HTTPS requests through the load balancer: the nodes that answered and the certificates they showed. */
    const served = async () => {
      const answers = [];
      for (let i = 0; i < 20; i++) answers.push(await https());
      expect(answers.map((answer) => answer.status)).to.deep.equal(Array(20).fill(200));
      return {
        nodes: new Set(answers.map((answer) => answer.servedBy)),
        fingerprints: new Set(answers.map((answer) => answer.fingerprint)),
      };
    };
    /** Until both nodes' HTTPS checks pass (bounded): HAProxy takes a new backend's servers in after 2 checks. */
    const bothNodes = async () => {
      for (let i = 0; i < 50; i++) {
        const seen = new Set<string | undefined>();
        for (let j = 0; j < 6; j++) seen.add((await https().catch(() => undefined))?.servedBy);
        if (seen.has("primary") && seen.has("secondary")) return;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    };
    services = { ...services, secure: secure(first) };
    const up = await testStack.stack.up();
    expect(up.outputs.inSync.value).to.equal(true);
    await bothNodes();
    const fingerprint = certificateSummary(first.certificate).fingerprint;
    expect(await served()).to.deep.equal({
      nodes: new Set(["primary", "secondary"]),
      fingerprints: new Set([fingerprint]),
    });
    const plain = await viaBalancer(SECURE);
    expect(plain.status, "plain HTTP is redirected").to.equal(301);
    const state = JSON.stringify(await testStack.exportState());
    expect(state, "the key is a secret in state").not.to.include(first.privateKey.split("\n")[1]);
    await testStack.stack.refresh({ expectNoChanges: true });

    // A new certificate: the preview says so without showing it, and every node serves it after up.
    const second = ca.issue("secure-2", { names: [SECURE] });
    services = { ...services, secure: secure(second) };
    const lines: string[] = [];
    await testStack.stack.preview({ onOutput: (text) => lines.push(text) });
    expect(lines.join("")).to.include("WebService secure: certificate changes");
    expect(lines.join("")).not.to.include(second.privateKey.split("\n")[1]);
    await testStack.stack.up();
    const renewed = certificateSummary(second.certificate).fingerprint;
    expect((await served()).fingerprints).to.deep.equal(new Set([renewed]));

    // A certificate put on the primary by hand is drift: refresh says so, and the next up puts the program's back.
    const forged = ca.issue("forged", { names: [SECURE] });
    await new AgentClient(primary.url, TOKEN).putService("acme", "secure", {
      kind: "website",
      domains: [SECURE],
      documentRoot: "www",
      tls: { certificate: forged.chain, privateKey: forged.privateKey },
      hsts: true,
    });
    const drift = await testStack.stack.refresh({ expectNoChanges: true }).then(
      () => "no drift",
      (error: Error) => error.message,
    );
    expect(drift).not.to.equal("no drift");
    await testStack.stack.up();
    expect((await served()).fingerprints).to.deep.equal(new Set([renewed]));
  });

  it("destroy removes the route and the sites", async () => {
    await testStack.stack.destroy();
    for (const response of [await viaBalancer(WWW), await direct(primary, WWW), await direct(secondary, WWW)]) {
      expect(response.status).to.equal(404);
    }
  });
});
