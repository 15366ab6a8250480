/**
 * ACME end to end with the real Pulumi CLI and Pebble: a load-balanced org (two nodes with nginx,
 * a load balancer driving HAProxy) and a website with `tls.acme`. Pebble validates HTTP-01 through
 * HAProxy (its DNS resolves every name to the load balancer), the certificate chains to Pebble's
 * root over HTTPS through the load balancer from both nodes; a forced renewal replaces it on every
 * node with no failed request; refresh --expect-no-changes fails while renewal is due.
 * Nodes 127.0.85.21-23, Pebble 127.0.85.24.
 */
import * as fs from "node:fs";
import { expect } from "chai";
import {
  LoadBalancedOrganization,
  WebService,
  type LoadBalancedOrganizationArgs,
  type WebServiceArgs,
} from "../../sdk";
import { AgentClient } from "../../provider/client";
import { startBalancedNodes, type HostingNode } from "../support/hosting-node";
import { getSecureSite } from "../support/http-get";
import { haproxyBinaryOrSkip } from "../support/haproxy";
import { nasFolder } from "../support/nas";
import { nginxBinaryOrSkip } from "../support/nginx";
import { type Pebble, pebbleOrSkip, startPebble } from "../support/pebble";
import { createTestStack, requirePulumi, type TestStack } from "../support/pulumi";
import { pureFtpdOrSkip } from "../support/pureftpd";

const TOKEN = "acme-e2e-token-0123456789abcdef0123";
const WWW = "www.acme.test";

describe("e2e: ACME certificates from Pebble, through the load balancer, renewed by the stack", function () {
  let primary: HostingNode;
  let secondary: HostingNode;
  let balancer: HostingNode;
  let pebble: Pebble;
  let content: string;
  let root: string;
  let testStack: TestStack;
  let org: LoadBalancedOrganizationArgs;
  let www: Omit<WebServiceArgs, "organization">;
  let others: Array<Omit<WebServiceArgs, "organization">> = [];

  const https = () => getSecureSite(balancer.httpsListen!, WWW, root);
  /** 20 HTTPS requests through the load balancer: the nodes that answered and the certificates they showed. */
  const served = async () => {
    const answers = [];
    for (let i = 0; i < 20; i++) answers.push(await https());
    expect(answers.map((answer) => answer.status)).to.deep.equal(Array(20).fill(200));
    expect(new Set(answers.map((answer) => answer.body))).to.deep.equal(new Set(["Acme over ACME\n"]));
    return {
      nodes: new Set(answers.map((answer) => answer.servedBy)),
      fingerprints: new Set(answers.map((answer) => answer.fingerprint)),
    };
  };
  /** Until both nodes answer HTTPS through the load balancer (bounded): HAProxy takes a new backend's servers in after 2 checks. */
  const bothNodes = async () => {
    for (let i = 0; i < 50; i++) {
      const seen = new Set<string | undefined>();
      for (let j = 0; j < 6; j++) seen.add((await https().catch(() => undefined))?.servedBy);
      if (seen.has("primary") && seen.has("secondary")) return;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  };
  const up = async () => {
    const lines: string[] = [];
    const result = await testStack.stack.up({ onOutput: (text) => lines.push(text) });
    return { result, output: lines.join("") };
  };
  /** "no changes", or what refresh --expect-no-changes printed and failed with. */
  const refreshDrift = () => {
    const lines: string[] = [];
    return testStack.stack.refresh({ expectNoChanges: true, onOutput: (text) => lines.push(text) }).then(
      () => "no changes",
      (error: Error) => `${lines.join("")}\n${error.message}`,
    );
  };

  before(async function () {
    const bin = requirePulumi(this);
    const nginxBin = nginxBinaryOrSkip(this);
    const haproxyBin = haproxyBinaryOrSkip(this);
    const ftp = pureFtpdOrSkip(this);
    const pebbleBinaries = pebbleOrSkip(this);
    content = nasFolder("acme", { "acme/www/index.html": "Acme over ACME\n" });
    ({ primary, secondary, balancer } = await startBalancedNodes({
      hosts: ["127.0.85.21", "127.0.85.22", "127.0.85.23"],
      names: ["primary", "secondary", "balancer"],
      token: TOKEN,
      contentRoot: content,
      nginxBin,
      haproxyBin,
      ftp,
    }));
    pebble = await startPebble(pebbleBinaries, {
      host: "127.0.85.24",
      resolveTo: "127.0.85.23",
      httpPort: Number(new URL(balancer.haproxy!.url).port),
      dir: content,
    });
    root = await pebble.root();
    org = {
      name: "acme",
      primary: primary.url,
      secondaries: [secondary.url],
      loadBalanced: true,
      loadBalancer: balancer.url,
    };
    www = {
      name: "www",
      kind: "website",
      domains: [WWW],
      documentRoot: "www",
      tls: { acme: { email: "ops@acme.test", directory: pebble.directory } },
    };
    testStack = await createTestStack(bin, {
      projectName: "acme",
      config: {
        "lbhosting:token": { value: TOKEN, secret: true },
        "lbhosting:acmeCaCertificate": { value: pebble.apiCa },
      },
      program: async () => {
        const resource = new LoadBalancedOrganization("org", org);
        const site = new WebService("www", { organization: resource, ...www });
        for (const other of others) new WebService(other.name as string, { organization: resource, ...other });
        return { inSync: resource.inSync, certificate: site.certificate };
      },
    });
  });

  after(async () => {
    await testStack?.stack.destroy().catch(() => undefined);
    await pebble?.stop();
    for (const node of [balancer, secondary, primary]) await node?.stop();
    testStack?.cleanup();
    if (content) fs.rmSync(content, { recursive: true, force: true });
  });

  let first: string;

  it("1. up orders the certificate through the load balancer; HTTPS answers from both nodes with it", async () => {
    const started = Date.now();
    const { result, output } = await up();
    const issuance = output.match(/WebService www: certificate issued by \S+ for www\.acme\.test in ([\d.]+) s/);
    expect(issuance, output).to.not.equal(null);
    console.log(`      ACME issuance in pulumi up: ${issuance![1]} s (whole up: ${Date.now() - started} ms)`);
    expect(result.outputs.inSync.value).to.equal(true);
    first = (result.outputs.certificate.value as { fingerprint: string }).fingerprint;
    await bothNodes();
    expect(await served()).to.deep.equal({ nodes: new Set(["primary", "secondary"]), fingerprints: new Set([first]) });
    const state = JSON.stringify(await testStack.exportState());
    expect(state).not.to.include("PRIVATE KEY");
    expect(await refreshDrift()).to.equal("no changes");
    // A second up reuses the certificate.
    expect((await up()).output).not.to.include("certificate issued");
  });

  it("2. a forced renewal shows in preview, replaces the certificate on every node, no request failing meanwhile", async () => {
    www = { ...www, tls: { acme: { email: "ops@acme.test", directory: pebble.directory, renewBefore: 3650 } } };
    const lines: string[] = [];
    await testStack.stack.preview({ onOutput: (text) => lines.push(text) });
    expect(lines.join("")).to.match(/WebService www: certificate renews: expires in \d+ days/);

    let stop = false;
    let sent = 0;
    const failures: string[] = [];
    const loop = async () => {
      const deadline = Date.now() + 180_000;
      while (!stop && sent < 100_000 && Date.now() < deadline) {
        sent++;
        const answer = await https().catch((error: Error) => ({ status: 0, body: error.message }));
        if (answer.status !== 200) failures.push(`${answer.status} ${answer.body.slice(0, 80)}`);
      }
    };
    const loops = [loop(), loop()];
    let renewal;
    try {
      renewal = await up();
    } finally {
      stop = true;
      await Promise.all(loops);
    }
    console.log(`      renewal: ${sent} HTTPS requests during the up, ${failures.length} failed`);
    expect(failures).to.deep.equal([]);
    expect(sent).to.be.greaterThan(0);
    expect(renewal.output).to.include("certificate renews: expires in");
    const renewed = (renewal.result.outputs.certificate.value as { fingerprint: string }).fingerprint;
    expect(renewed).not.to.equal(first);
    expect(await served()).to.deep.equal({
      nodes: new Set(["primary", "secondary"]),
      fingerprints: new Set([renewed]),
    });
  });

  it("3. refresh --expect-no-changes fails while renewal is due, and passes once it is not", async () => {
    expect(await refreshDrift()).to.include("certificate renews: expires in");
    www = { ...www, tls: { acme: { email: "ops@acme.test", directory: pebble.directory } } };
    expect((await up()).output).not.to.include("certificate issued");
    expect(await refreshDrift()).to.equal("no changes");
  });

  it("4. an order for a domain that does not point at the load balancer fails naming it, and leaves it neither on the nodes nor routed", async () => {
    const SHOP = "shop.acme.test";
    await pebble.resolve(SHOP, "127.0.85.30");
    others = [{ ...www, name: "shop", domains: [SHOP] }];
    const failed = await up().then(
      () => "succeeded",
      (error: Error) => error.message,
    );
    expect(failed).to.include(SHOP).and.to.include("ACME");
    const client = new AgentClient(primary.url, TOKEN);
    expect((await client.listServices("acme")).map((service) => service.name)).to.deep.equal(["www"]);
    expect((await new AgentClient(balancer.url, TOKEN).getRoute("acme")).domains).to.deep.equal([WWW]);
    others = [];
    await up();
  });
});
