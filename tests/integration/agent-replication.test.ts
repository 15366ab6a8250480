/**
 * Primary → secondary primitives between real agents: a primary (127.0.1.21), a secondary kept
 * in step by deltas (127.0.1.22) and one fed only full snapshots (127.0.1.23).
 */
import { expect } from "chai";
import fc from "fast-check";
import fs from "node:fs";
import path from "node:path";
import { SITES_FILE } from "../../agent/src/render/nginx/sites";
import { type ChangesResult, changesResultSchema, type OrgStatus, orgStatusSchema, snapshotSchema } from "../../wire";
import { type AgentClient, agentClient } from "../support/agent-http";
import { type AgentProcess, startAgentProcess } from "../support/agent-process";
import { orgAccounts } from "../support/puredb";

const HASHES = [
  "$6$saltone$Wf5qVlyTDGeCeHk8wqwsJ4lMZ9EdXM0Xaq8F8bqmiBXc5V9Dqw8cXNQQ3i4JV2FRBr6ck3d0aFYtPxVuF9ePF/",
  "$6$salttwo$JYLbK8yT1hR6IhSYSG1FVHx.ZuyNyIGuWvUm4pjaxZuybqSvgnqSmRBkQ9.1HQCxQGDeZyxbk7U2mbR5hOWVF.",
];

describe("agent replication (integration)", function () {
  let primary: AgentProcess;
  let deltaCopy: AgentProcess;
  let snapshotCopy: AgentProcess;
  let a: AgentClient;
  let b: AgentClient;
  let c: AgentClient;

  before(async function () {
    [primary, deltaCopy, snapshotCopy] = await Promise.all([
      startAgentProcess({ host: "127.0.1.21", name: "primary" }),
      startAgentProcess({ host: "127.0.1.22", name: "secondary-delta" }),
      startAgentProcess({ host: "127.0.1.23", name: "secondary-snapshot" }),
    ]);
    a = agentClient(primary.url, primary.token);
    b = agentClient(deltaCopy.url, deltaCopy.token);
    c = agentClient(snapshotCopy.url, snapshotCopy.token);
  });

  after(async function () {
    for (const agent of [primary, deltaCopy, snapshotCopy]) {
      await agent?.stop();
      agent?.cleanup();
    }
  });

  const status = async (client: AgentClient, org: string): Promise<OrgStatus> => {
    const answer = await client.get(`/v1/orgs/${org}`);
    expect(answer.status, answer.text).to.equal(200);
    return orgStatusSchema.parse(answer.json);
  };

  /** Copy the primary's whole org onto `client`. */
  const pushSnapshot = async (client: AgentClient, org: string) => {
    const snapshot = snapshotSchema.parse((await a.get(`/v1/orgs/${org}/snapshot`)).json);
    const answer = await client.put(`/v1/orgs/${org}/replica`, { ...snapshot, primary: primary.url });
    expect(answer.status, answer.text).to.equal(200);
    return orgStatusSchema.parse(answer.json);
  };

  /** The delta `client` needs from the primary, as the primary's change log gives it. */
  const pendingChanges = async (client: AgentClient, org: string): Promise<[number, ChangesResult]> => {
    const base = (await status(client, org)).generation;
    const page = await a.get(`/v1/orgs/${org}/changes?since=${base}`);
    expect(page.status, page.text).to.equal(200);
    return [base, changesResultSchema.parse(page.json)];
  };

  const pushDelta = async (client: AgentClient, org: string) => {
    const [base, page] = await pendingChanges(client, org);
    const answer = await client.post(`/v1/orgs/${org}/replica/changes`, {
      baseGeneration: base,
      changes: page.changes,
      digest: page.digest,
    });
    expect(answer.status, answer.text).to.equal(200);
  };

  it("imports a snapshot as a secondary copy with the primary's generation and digest", async function () {
    await a.put("/v1/orgs/acme", { displayName: "Acme", loadBalanced: true, secondaries: [deltaCopy.url] });
    await a.put("/v1/orgs/acme/users/alice", { password: "alice-password", access: ["files"] });
    await a.put("/v1/orgs/acme/services/www", { kind: "website", domains: ["www.acme.test"], documentRoot: "www" });
    await a.put("/v1/orgs/acme/services/files", { kind: "ftp", rootPath: "upload", writable: true });
    const source = await status(a, "acme");

    const imported = await pushSnapshot(b, "acme");
    expect(imported).to.include({ role: "secondary", primary: primary.url, drifted: false });
    expect(imported.generation).to.equal(source.generation);
    expect(imported.digest).to.equal(source.digest);
    expect(Date.parse(imported.lastSyncedAt ?? "")).to.be.closeTo(Date.now(), 60_000);

    const [mine, theirs] = [(await a.get("/v1/orgs/acme/snapshot")).json, (await b.get("/v1/orgs/acme/snapshot")).json];
    expect(theirs).to.deep.equal(mine);
    // The copy serves the same site under its own name.
    const site = fs.readFileSync(path.join(deltaCopy.nginxConfDir, SITES_FILE), "utf8");
    expect(site).to.include('add_header X-Served-By "secondary-delta" always;');
    expect(orgAccounts(deltaCopy.dataDir, "acme")).to.include("alice@files.acme:");
  });

  it("applies deltas only on an exact, undrifted base; a snapshot heals a stale or drifted copy", async function () {
    await a.put("/v1/orgs/acme/users/bob", { passwordHash: HASHES[0] });
    await pushDelta(b, "acme");
    expect((await status(b, "acme")).digest).to.equal((await status(a, "acme")).digest);

    // Stale base: the copy is not where the delta starts.
    await a.put("/v1/orgs/acme/users/carol", { passwordHash: HASHES[1] });
    await a.put("/v1/orgs/acme/users/dave", { passwordHash: HASHES[1] });
    const [base, page] = await pendingChanges(b, "acme");
    const stale = await b.post("/v1/orgs/acme/replica/changes", {
      baseGeneration: base + 1,
      changes: page.changes.slice(1),
      digest: page.digest,
    });
    expect(stale.status).to.equal(409);
    expect(stale.json).to.have.nested.property("error.code", "stale_base");

    // A wrong expected digest rolls the whole delta back.
    const before = (await b.get("/v1/orgs/acme/snapshot")).json;
    const wrong = await b.post("/v1/orgs/acme/replica/changes", {
      baseGeneration: base,
      changes: page.changes,
      digest: "f".repeat(64),
    });
    expect(wrong.status).to.equal(409);
    expect(wrong.json).to.have.nested.property("error.code", "digest_mismatch");
    expect((await b.get("/v1/orgs/acme/snapshot")).json).to.deep.equal(before);

    // A forced local edit makes the copy drifted: deltas are refused until a snapshot.
    expect((await b.put("/v1/orgs/acme/users/mallory?force=true", { passwordHash: HASHES[0] })).status).to.equal(201);
    expect((await status(b, "acme")).drifted).to.equal(true);
    const drifted = await b.post("/v1/orgs/acme/replica/changes", {
      baseGeneration: base,
      changes: page.changes,
      digest: page.digest,
    });
    expect(drifted.status).to.equal(409);
    expect(drifted.json).to.have.nested.property("error.code", "drifted");

    const healed = await pushSnapshot(b, "acme");
    expect(healed.drifted).to.equal(false);
    expect(healed.digest).to.equal((await status(a, "acme")).digest);
    expect((await b.get("/v1/orgs/acme/users/mallory")).status).to.equal(404);
    // And deltas work again from there.
    await a.delete("/v1/orgs/acme/users/carol");
    await pushDelta(b, "acme");
    expect((await status(b, "acme")).digest).to.equal((await status(a, "acme")).digest);
  });

  it("refuses deltas for a missing copy or onto a primary", async function () {
    const page = changesResultSchema.parse((await a.get("/v1/orgs/acme/changes?since=1")).json);
    const body = { baseGeneration: 1, changes: page.changes, digest: page.digest };
    expect((await c.post("/v1/orgs/acme/replica/changes", body)).status).to.equal(404);
    const ontoPrimary = await a.post("/v1/orgs/acme/replica/changes", body);
    expect(ontoPrimary.status).to.equal(409);
    expect(ontoPrimary.json).to.have.nested.property("error.code", "primary_copy");
  });

  describe("property: replaying random operations as deltas equals a full snapshot", function () {
    const USERS = ["ann", "ben", "cy", "dee"];
    const SERVICES = ["www", "blog", "files"];
    type Op =
      | { op: "putUser"; name: string; hash: number; enabled: boolean; access: string[]; displayName: string }
      | { op: "putUserPassword"; name: string; password: string }
      | { op: "deleteUser"; name: string }
      | { op: "putWebsite"; name: string; domains: string[]; documentRoot: string; enabled: boolean }
      | { op: "putFtp"; name: string; rootPath: string; writable: boolean }
      | { op: "deleteService"; name: string }
      | { op: "putOrg"; displayName: string; loadBalanced: boolean }
      | { op: "sync" };
    const opArbitrary: fc.Arbitrary<Op> = fc.oneof(
      fc.record({
        op: fc.constant("putUser" as const),
        name: fc.constantFrom(...USERS),
        hash: fc.integer({ min: 0, max: 1 }),
        enabled: fc.boolean(),
        access: fc.subarray(SERVICES),
        displayName: fc.constantFrom("", "A", "B"),
      }),
      fc.record({
        op: fc.constant("putUserPassword" as const),
        name: fc.constantFrom(...USERS),
        password: fc.constantFrom("password-one", "password-two"),
      }),
      fc.record({ op: fc.constant("deleteUser" as const), name: fc.constantFrom(...USERS) }),
      fc.record({
        op: fc.constant("putWebsite" as const),
        name: fc.constantFrom(...SERVICES),
        domains: fc.subarray(["a.test", "b.test", "www.c.test"], { minLength: 1 }),
        documentRoot: fc.constantFrom(".", "www", "sites/blog"),
        enabled: fc.boolean(),
      }),
      fc.record({
        op: fc.constant("putFtp" as const),
        name: fc.constantFrom(...SERVICES),
        rootPath: fc.constantFrom(".", "upload"),
        writable: fc.boolean(),
      }),
      fc.record({ op: fc.constant("deleteService" as const), name: fc.constantFrom(...SERVICES) }),
      fc.record({
        op: fc.constant("putOrg" as const),
        displayName: fc.constantFrom("Org", "Renamed"),
        loadBalanced: fc.boolean(),
      }),
      fc.constant({ op: "sync" as const }),
    );

    let run = 0;

    /** Send one operation to the primary (a delete of something absent is a fine 404). */
    async function apply(org: string, step: Op): Promise<void> {
      const answer = async (pending: Promise<{ status: number; text: string }>) => {
        const { status, text } = await pending;
        expect([200, 201, 404], text).to.include(status);
      };
      const users = `/v1/orgs/${org}/users`;
      const services = `/v1/orgs/${org}/services`;
      switch (step.op) {
        case "putUser":
          return answer(
            a.put(`${users}/${step.name}`, {
              passwordHash: HASHES[step.hash],
              enabled: step.enabled,
              access: step.access,
              displayName: step.displayName,
            }),
          );
        case "putUserPassword":
          return answer(a.put(`${users}/${step.name}`, { password: step.password }));
        case "deleteUser":
          return answer(a.delete(`${users}/${step.name}`));
        case "putWebsite":
          return answer(
            a.put(`${services}/${step.name}`, {
              kind: "website",
              // Each run's org on the same nodes: a domain belongs to one org per node.
              domains: step.domains.map((domain) => `${org}.${domain}`),
              documentRoot: step.documentRoot,
              enabled: step.enabled,
            }),
          );
        case "putFtp":
          return answer(
            a.put(`${services}/${step.name}`, { kind: "ftp", rootPath: step.rootPath, writable: step.writable }),
          );
        case "deleteService":
          return answer(a.delete(`${services}/${step.name}`));
        case "putOrg":
          return answer(
            a.put(`/v1/orgs/${org}`, {
              displayName: step.displayName,
              loadBalanced: step.loadBalanced,
              secondaries: [deltaCopy.url],
            }),
          );
        case "sync":
          return pushDelta(b, org);
      }
    }

    it("holds for 25 seeded sequences of up to 40 operations", async function () {
      this.timeout(240_000);
      await fc.assert(
        fc.asyncProperty(fc.array(opArbitrary, { maxLength: 40 }), async (ops) => {
          const org = `prop-${++run}`;
          expect((await a.put(`/v1/orgs/${org}`, { displayName: "Org" })).status).to.equal(201);
          await pushSnapshot(b, org);
          for (const step of ops) await apply(org, step);
          await pushDelta(b, org);
          await pushSnapshot(c, org);
          const [pa, pb, pc] = [await status(a, org), await status(b, org), await status(c, org)];
          expect(pb.digest).to.equal(pa.digest);
          expect(pc.digest).to.equal(pa.digest);
          expect(pb.generation).to.equal(pa.generation);
          expect((await b.get(`/v1/orgs/${org}/snapshot`)).json).to.deep.equal(
            (await a.get(`/v1/orgs/${org}/snapshot`)).json,
          );
        }),
        { seed: 20261126, numRuns: 25, endOnFailure: true },
      );
    });
  });
});
