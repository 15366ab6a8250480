/**
 * A website whose domain another org routes on the same load balancer (127.0.37.1 web-a serving
 * org bravo, 127.0.37.2 web-b serving org aaa, each with a real nginx; 127.0.37.3 a load-balancer
 * agent that writes its HAProxy file): the load balancer refuses the route (409 domain_taken), and
 * the provider undoes the write on the nodes, so after the failed operation no node serves the
 * domain for the wrong org — a create removed, an update's previous domains written back.
 */
import * as fs from "node:fs";
import type * as pulumi from "@pulumi/pulumi";
import { expect } from "chai";
import { AgentClient } from "../../provider/client";
import { organizationProvider } from "../../provider/organization";
import { serviceProvider } from "../../provider/service";
import type { OrganizationInputs, WebServiceInputs } from "../../sdk/inputs";
import { call } from "../support/agent-http";
import { type AgentProcess, startAgentProcess } from "../support/agent-process";
import { startHostingNode, type HostingNode } from "../support/hosting-node";
import { nginxBinaryOrSkip } from "../support/nginx";
import { nasFolder } from "../support/nas";

const TOKEN = "route-refused-test-token-0123456789ab";

describe("a website the load balancer refuses to route is undone on the nodes (provider, real agents)", function () {
  this.timeout(120_000);
  let nodes: HostingNode[] = [];
  let balancer: AgentProcess | undefined;
  let content: string;
  const client = (url: string) => new AgentClient(url, TOKEN, { timeoutMs: 5000, retries: 0 });

  before(async function () {
    const nginxBin = nginxBinaryOrSkip(this);
    content = nasFolder("route-refused", {
      "bravo/www/index.html": "<h1>bravo</h1>\n",
      "aaa/www/index.html": "<h1>aaa</h1>\n",
    });
    nodes = await Promise.all(
      [
        { host: "127.0.37.1", name: "web-a" },
        { host: "127.0.37.2", name: "web-b" },
      ].map(({ host, name }) => startHostingNode({ host, name, token: TOKEN, contentRoot: content, nginxBin })),
    );
    balancer = await startAgentProcess({ host: "127.0.37.3", token: TOKEN, name: "lb" });
    const config = { get: (key: string) => ({ "lbhosting:token": TOKEN, "lbhosting:timeoutMs": "5000" })[key] };
    await organizationProvider.configure!({ config } as unknown as pulumi.dynamic.ConfigureRequest);
  });

  after(async function () {
    for (const node of nodes) await node.stop();
    await balancer?.stop();
    balancer?.cleanup();
    if (content) fs.rmSync(content, { recursive: true, force: true });
  });

  const org = (name: string, node: HostingNode): OrganizationInputs =>
    ({ name, primary: node.url, loadBalancer: (balancer as AgentProcess).url }) as OrganizationInputs;
  const website = (organization: OrganizationInputs, name: string, domains: string[]): WebServiceInputs =>
    ({
      organization: { name: organization.name, primary: organization.primary, loadBalancer: organization.loadBalancer },
      name,
      kind: "website",
      domains,
      documentRoot: "www",
    }) as WebServiceInputs;
  /** What the node's nginx answers for `host`. */
  const served = async (node: HostingNode, host: string) =>
    (await call(node.nginx!.url, "GET", "/", { token: null, headers: { host } })).text;

  it("a create is removed and an update written back; the owner keeps the domain everywhere", async function () {
    const [webA, webB] = nodes;
    const bravo = org("bravo", webA);
    const aaa = org("aaa", webB);
    await organizationProvider.create(bravo);
    await organizationProvider.create(aaa);
    await serviceProvider.create(website(bravo, "www", ["www.bravo.test"]));
    await serviceProvider.create(website(aaa, "www", ["www.aaa.test"]));
    const lb = client((balancer as AgentProcess).url);
    const routes = async () =>
      Promise.all(["aaa", "bravo"].map(async (name) => [name, (await lb.getRoute(name)).domains]));
    const before = await routes();
    expect(before).to.deep.equal([
      ["aaa", ["www.aaa.test"]],
      ["bravo", ["www.bravo.test"]],
    ]);

    const created = await serviceProvider.create(website(aaa, "hijack", ["www.bravo.test"])).then(
      () => "created",
      (error: Error) => error.message,
    );
    expect(created).to.include("refused its route").and.include("domain_taken").and.include("was undone");
    expect((await client(webB.url).listServices("aaa")).map((service) => service.name)).to.deep.equal(["www"]);
    expect(await served(webB, "www.bravo.test")).to.not.include("aaa");

    const olds = website(aaa, "www", ["www.aaa.test"]);
    const updated = await serviceProvider.update!(
      "aaa/www",
      olds,
      website(aaa, "www", ["www.aaa.test", "www.bravo.test"]),
    ).then(
      () => "updated",
      (error: Error) => error.message,
    );
    expect(updated).to.include("refused its route").and.include("was undone");
    expect(await client(webB.url).getService("aaa", "www")).to.deep.include({ domains: ["www.aaa.test"] });
    expect(await served(webB, "www.bravo.test")).to.not.include("aaa");
    expect(await served(webB, "www.aaa.test")).to.equal("<h1>aaa</h1>\n");
    expect(await served(webA, "www.bravo.test")).to.equal("<h1>bravo</h1>\n");
    expect(await routes()).to.deep.equal(before);
  });
});
