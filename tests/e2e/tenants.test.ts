/**
 * Issue 22 with the real CLI and the examples/tenants projects: an administrator's stack issues
 * two organizations' OrgAccess tokens; two tenant stacks on the same nodes (nginx on each, HAProxy
 * in front) each manage their org with only their own tokens. Tenant A taking B's domain fails and
 * leaves nothing serving A's page for it; A's token gets 403 on B; destroying A leaves B in sync.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { expect } from "chai";
import { AgentClient, AgentError } from "../../provider/client";
import { startBalancedNodes, type HostingNode } from "../support/hosting-node";
import { getSite } from "../support/http-get";
import { haproxyBinaryOrSkip } from "../support/haproxy";
import { nasFolder } from "../support/nas";
import { nginxBinaryOrSkip } from "../support/nginx";
import { createProjectFolder, exampleDir, type ProjectFolder } from "../support/project";
import { pureFtpdOrSkip } from "../support/pureftpd";
import { requirePulumi } from "../support/pulumi";

const ADMIN_TOKEN = "tenants-e2e-admin-token-0123456789abcdef";
const PAGES = { acme: "Acme's own page\n", bravo: "Bravo's own page\n" };
const DOMAINS = { acme: "www.acme.test", bravo: "www.bravo.test" };

type Org = keyof typeof PAGES;

describe("e2e: tenants, each managing its organization with its own tokens only", function () {
  let nodes: HostingNode[] = [];
  let web1: HostingNode;
  let web2: HostingNode;
  let lb: HostingNode;
  let content: string;
  let admin: ProjectFolder;
  let adminUp: string;
  const tenants = {} as Record<Org, ProjectFolder>;
  const tokens = {} as Record<Org, Record<string, string>>;
  const adminClient = (node: HostingNode) => new AgentClient(node.url, ADMIN_TOKEN, { retries: 0 });
  const tokenClient = (org: Org, node: HostingNode) => new AgentClient(node.url, tokens[org][node.url], { retries: 0 });
  const viaBalancer = (host: string) => getSite(`${lb.haproxy!.url}/`, host);
  const direct = (node: HostingNode, host: string) => getSite(`${node.nginx!.url}/`, host);

  /** What every path to a domain serves: through the load balancer and on each node. */
  async function servedFor(host: string): Promise<string[]> {
    const responses = [await viaBalancer(host), await direct(web1, host), await direct(web2, host)];
    return responses.map((response) => `${response.status} ${response.status === 200 ? response.body : ""}`);
  }

  async function tenantStack(org: Org, bin: string): Promise<ProjectFolder> {
    const project = await createProjectFolder(bin, { source: path.join(exampleDir("tenants"), "tenant"), stack: org });
    await project.configSet("lbhosting:tokens", JSON.stringify(tokens[org]), { secret: true });
    await project.configSet("organization", org);
    await project.configSet("primary", web1.url);
    await project.configSet("secondaries", JSON.stringify([web2.url]));
    await project.configSet("loadBalancer", lb.url);
    await project.configSet("domains", JSON.stringify([DOMAINS[org]]));
    await project.configSet("adminPassword", `${org}-admin-password-1`, { secret: true });
    return project;
  }

  before(async function () {
    const bin = requirePulumi(this);
    const nginxBin = nginxBinaryOrSkip(this);
    const haproxyBin = haproxyBinaryOrSkip(this);
    const ftp = pureFtpdOrSkip(this);
    content = nasFolder("tenants", { "acme/www/index.html": PAGES.acme, "bravo/www/index.html": PAGES.bravo });
    const started = await startBalancedNodes({
      hosts: ["127.0.72.1", "127.0.72.2", "127.0.72.3"],
      names: ["web1", "web2", "lb1"],
      token: ADMIN_TOKEN,
      contentRoot: content,
      nginxBin,
      haproxyBin,
      ftp,
    });
    ({ primary: web1, secondary: web2, balancer: lb } = started);
    nodes = [web1, web2, lb];

    admin = await createProjectFolder(bin, { source: path.join(exampleDir("tenants"), "admin"), stack: "prod" });
    await admin.configSet("lbhosting:token", ADMIN_TOKEN, { secret: true });
    await admin.configSet("nodes", JSON.stringify([web1.url, web2.url]));
    await admin.configSet("loadBalancer", lb.url);
    await admin.configSet("organizations", JSON.stringify(["acme", "bravo"]));
    const up = await admin.up();
    adminUp = up.stdout + up.stderr;
    const issued = (await admin.outputs({ showSecrets: true })).tokens as Record<Org, Record<string, string>>;
    Object.assign(tokens, issued);
    for (const org of ["acme", "bravo"] as const) tenants[org] = await tenantStack(org, bin);
  });

  after(async () => {
    for (const project of [...Object.values(tenants), admin]) project?.cleanup();
    for (const node of nodes) await node.stop();
    if (content) fs.rmSync(content, { recursive: true, force: true });
  });

  it("the administrator's stack issues a token per org on every node and keeps the secrets secret", async () => {
    for (const org of ["acme", "bravo"] as const) {
      expect(Object.keys(tokens[org]).sort()).to.deep.equal([web1.url, web2.url, lb.url].sort());
      for (const node of nodes) {
        const listed = await adminClient(node).listOrgTokens(org);
        expect(listed.map((token) => token.label)).to.deep.equal([`tenant ${org}`]);
      }
    }
    const state = JSON.stringify(await admin.exportState());
    for (const token of [...Object.values(tokens.acme), ...Object.values(tokens.bravo)]) {
      expect(state).to.not.include(token);
      expect(adminUp).to.not.include(token);
    }
    expect((await admin.outputs()).tokens).to.equal("[secret]");
  });

  it("each tenant's up, with its own tokens only, serves its site through the load balancer and on both nodes", async () => {
    for (const org of ["acme", "bravo"] as const) {
      await tenants[org].up();
      expect((await tenants[org].outputs()).inSync).to.equal(true);
      expect(await servedFor(DOMAINS[org])).to.deep.equal(Array(3).fill(`200 ${PAGES[org]}`));
    }
    await tenants.acme.preview({ expectNoChanges: true });
    await tenants.acme.refresh({ expectNoChanges: true });
  });

  it("tenant A's up taking B's domain fails, and nothing serves A's page for it", async () => {
    await tenants.acme.configSet("domains", JSON.stringify([DOMAINS.acme, DOMAINS.bravo]));
    const failed = await tenants.acme.up().then(
      () => "succeeded",
      (error: Error) => error.message,
    );
    expect(failed).to.include("domain_taken");
    expect(failed).to.include(DOMAINS.bravo);
    expect(failed).to.not.include("bravo's"); // the refusal names the domain, never the other org
    expect(await servedFor(DOMAINS.bravo)).to.deep.equal(Array(3).fill(`200 ${PAGES.bravo}`));
    expect(await servedFor(DOMAINS.acme)).to.deep.equal(Array(3).fill(`200 ${PAGES.acme}`));
    await tenants.acme.configSet("domains", JSON.stringify([DOMAINS.acme]));
    await tenants.acme.up();
    await tenants.acme.preview({ expectNoChanges: true });
  });

  it("tenant A's token gets 403 on B's users, services, snapshot and load-balancer route", async () => {
    const refusals = [
      () => tokenClient("acme", web1).listUsers("bravo"),
      () => tokenClient("acme", web2).listServices("bravo"),
      () => tokenClient("acme", web1).snapshot("bravo"),
      () => tokenClient("acme", web1).deleteUser("bravo", "admin"),
      () => tokenClient("acme", lb).getRoute("bravo"),
      () => tokenClient("acme", lb).deleteRoute("bravo"),
      () => tokenClient("acme", web1).issueOrgToken("acme", "more"),
    ];
    for (const attempt of refusals) {
      const error = await attempt().then(
        () => undefined,
        (failure: unknown) => failure,
      );
      expect(error).to.be.instanceOf(AgentError);
      expect((error as AgentError).status).to.equal(403);
    }
    expect((await adminClient(web1).listUsers("bravo")).map((user) => user.username)).to.deep.equal(["admin"]);
    expect((await adminClient(lb).getRoute("bravo")).domains).to.deep.equal([DOMAINS.bravo]);
  });

  it("destroying tenant A removes acme and leaves bravo untouched and in sync", async () => {
    const before = await adminClient(web1).getOrg("bravo");
    await tenants.acme.destroy();
    for (const node of [web1, web2]) {
      const gone = await adminClient(node)
        .getOrg("acme")
        .then(() => "present", String);
      expect(gone).to.match(/HTTP 404/);
    }
    expect((await adminClient(web1).getOrg("bravo")).digest).to.equal(before.digest);
    expect((await adminClient(web2).getOrg("bravo")).digest).to.equal(before.digest);
    expect(await servedFor(DOMAINS.bravo)).to.deep.equal(Array(3).fill(`200 ${PAGES.bravo}`));
    await tenants.bravo.refresh({ expectNoChanges: true });
    expect((await tenants.bravo.outputs()).inSync).to.equal(true);
  });

  it("a token revoked behind the administrator's stack leaves its outputs on refresh, and the next up issues a new one", async () => {
    const [revoked] = await adminClient(web2).listOrgTokens("acme");
    await adminClient(web2).revokeOrgToken("acme", revoked.id);
    await admin.refresh();
    // The resource's state (the stack's outputs move only with the next up).
    const state = (await admin.exportState()) as {
      resources: { type: string; urn: string; outputs?: { tokenIds?: object } }[];
    };
    const access = state.resources.find(
      (resource) => resource.type.endsWith(":OrgAccess") && resource.urn.endsWith("::acme"),
    );
    expect(Object.keys(access?.outputs?.tokenIds ?? {}).sort()).to.deep.equal([web1.url, lb.url].sort());
    const pending = await admin.preview({ expectNoChanges: true }).then(
      () => "no changes",
      (error: Error) => error.message,
    );
    expect(pending).to.not.equal("no changes");
    await admin.up();
    const reissued = (await admin.outputs({ showSecrets: true })).tokens as Record<Org, Record<string, string>>;
    expect(reissued.acme[web2.url]).to.be.a("string").and.not.equal(tokens.acme[web2.url]);
    expect(reissued.acme[web1.url]).to.equal(tokens.acme[web1.url]);
    expect(await adminClient(web2).listOrgTokens("acme")).to.have.length(1);
    await admin.preview({ expectNoChanges: true });
  });

  it("destroying the administrator's OrgAccess revokes the tokens: the tenant's next refresh gets 401", async () => {
    await admin.destroy();
    for (const node of nodes) expect(await adminClient(node).listOrgTokens("bravo")).to.deep.equal([]);
    const refused = await tokenClient("bravo", web1)
      .getOrg("bravo")
      .then(
        () => undefined,
        (failure: unknown) => failure,
      );
    expect((refused as AgentError).status).to.equal(401);
    // The org stays (the administrator removes it with the admin token).
    expect((await adminClient(web1).getOrg("bravo")).name).to.equal("bravo");
  });
});
