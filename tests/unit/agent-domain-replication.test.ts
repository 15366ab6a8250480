/**
 * Replication, promotion and fencing in-process: two nodes' domain rules on in-memory stores with
 * fake renderers, the "sync" being this test handing one node's snapshot or changes to the other.
 */
import { expect } from "chai";
import { type ReplicaChangesBody, orgSettingsSchema } from "../../wire";
import { type DomainNode, domainNode, failure, fakeHash } from "../support/agent-domain";

const A = "http://a.test:8080";
const WRITE = { force: false };
const SYNCED_AT = new Date("2026-01-02T03:04:05.000Z");

describe("agent domain: replication, promotion and fencing", function () {
  let a: DomainNode;
  let b: DomainNode;

  beforeEach(async function () {
    a = domainNode();
    b = domainNode({ now: () => SYNCED_AT });
    await a.orgs.putOrg(
      "acme",
      orgSettingsSchema.parse({ loadBalanced: true, secondaries: ["http://b.test:8080"] }),
      WRITE,
    );
    await a.putUser("acme", "alice", { passwordHash: fakeHash("alice"), access: ["files"] });
    await a.putService("acme", "files", { kind: "ftp", rootPath: "files" });
  });

  afterEach(function () {
    a.close();
    b.close();
  });

  const copy = () => b.replication.importReplica("acme", { ...a.reads.snapshot("acme"), primary: A });
  /** The changes of `a` since `since`, as a sync sends them. */
  const delta = (since: number, epoch = a.reads.orgStatus("acme").epoch): ReplicaChangesBody => {
    const { changes, digest } = a.reads.changesSince("acme", since);
    return { baseGeneration: since, changes, digest, primary: A, epoch };
  };

  describe("snapshots", function () {
    it("makes an in-sync secondary copy with the primary's content, digest and rendered accounts", async function () {
      const status = await copy();
      const primary = a.reads.orgStatus("acme");
      expect(status).to.deep.include({
        role: "secondary",
        primary: A,
        generation: primary.generation,
        digest: primary.digest,
        drifted: false,
        lastSyncedAt: SYNCED_AT.toISOString(),
      });
      expect(b.reads.snapshot("acme")).to.deep.equal(a.reads.snapshot("acme"));
      expect(b.ftp.accounts.get("acme")).to.deep.equal(new Map([["alice@files.acme", fakeHash("alice")]]));
      // The copy's log starts at the snapshot: a later delta is answered, an earlier one is not.
      expect((await failure(async () => b.reads.changesSince("acme", 0))).code).to.equal("log_unavailable");
    });

    it("refuses a snapshot whose content does not match its digest, or that names another org", async function () {
      const snapshot = { ...a.reads.snapshot("acme"), primary: A };
      const tampered = { ...snapshot, users: [{ ...snapshot.users[0], passwordHash: fakeHash("mallory") }] };
      expect((await failure(() => b.replication.importReplica("acme", tampered))).code).to.equal("digest_mismatch");
      expect((await failure(() => b.replication.importReplica("other", snapshot))).details[0].path).to.equal(
        "org.name",
      );
      expect(b.reads.listOrgs()).to.deep.equal([]);
    });

    it("never overwrites a primary at the same epoch", async function () {
      const refused = await failure(() =>
        a.replication.importReplica("acme", { ...a.reads.snapshot("acme"), primary: A }),
      );
      expect(refused).to.include({ status: 409, code: "primary_copy" });
    });
  });

  describe("deltas", function () {
    beforeEach(async function () {
      await copy();
    });

    it("applies the primary's changes, ending at its generation and digest", async function () {
      const base = a.reads.orgStatus("acme").generation;
      await a.putUser("acme", "bob", { passwordHash: fakeHash("bob"), access: ["files"] });
      await a.members.deleteUser("acme", "alice", WRITE);
      await a.orgs.putOrg(
        "acme",
        orgSettingsSchema.parse({ displayName: "Acme", loadBalanced: true, secondaries: ["http://b.test:8080"] }),
        WRITE,
      );
      const status = await b.replication.applyChanges("acme", delta(base));
      expect(status).to.include({
        generation: base + 3,
        digest: a.reads.orgStatus("acme").digest,
        displayName: "Acme",
      });
      expect(b.reads.snapshot("acme")).to.deep.equal(a.reads.snapshot("acme"));
      // The copy logs the changes too, so it can answer a delta once promoted.
      expect(b.reads.changesSince("acme", base)).to.deep.equal(a.reads.changesSince("acme", base));
      // User changes render only those users' FTP accounts.
      expect(b.ftp.rendered.slice(-2)).to.deep.equal(["acme/bob", "acme/alice"]);
    });

    it("refuses a delta for another base, another primary, a wrong digest or a drifted copy", async function () {
      const base = a.reads.orgStatus("acme").generation;
      await a.putUser("acme", "bob", { passwordHash: fakeHash("bob") });
      const body = delta(base);
      expect(
        (await failure(() => b.replication.applyChanges("acme", { ...delta(base + 1), changes: [] }))).code,
      ).to.equal("stale_base");
      expect(
        (await failure(() => b.replication.applyChanges("acme", { ...body, primary: "http://c.test:8080" }))).code,
      ).to.equal("other_primary");
      expect(
        (await failure(() => b.replication.applyChanges("acme", { ...body, digest: "0".repeat(64) }))).code,
      ).to.equal("digest_mismatch");
      const skipped = {
        ...body,
        changes: body.changes.map((change) => ({ ...change, generation: change.generation + 1 })),
      };
      expect((await failure(() => b.replication.applyChanges("acme", skipped))).status).to.equal(400);
      expect(b.reads.orgStatus("acme").generation).to.equal(base); // nothing applied

      await b.putUser("acme", "local", { passwordHash: fakeHash("local") }, { force: true });
      expect((await failure(() => b.replication.applyChanges("acme", body))).code).to.equal("drifted");
      // A snapshot repairs a drifted copy.
      expect(await copy()).to.include({ drifted: false, digest: a.reads.orgStatus("acme").digest });
    });

    it("is refused by a primary", async function () {
      const refused = await failure(() =>
        a.replication.applyChanges("acme", delta(a.reads.orgStatus("acme").generation)),
      );
      expect(refused.code).to.equal("primary_copy");
    });
  });

  describe("promotion and fencing", function () {
    beforeEach(async function () {
      await copy();
    });

    it("promotes a copy at a raised epoch, at its generation and digest, once", async function () {
      const seen = b.reads.orgStatus("acme");
      const promoted = await b.replication.promote("acme", {
        epoch: 1,
        generation: seen.generation,
        digest: seen.digest,
      });
      expect(promoted).to.deep.include({ role: "primary", epoch: 1, generation: seen.generation, digest: seen.digest });
      expect(promoted).to.not.have.property("primary");
      // Repeating it answers the same; a promotion that does not raise the epoch is refused.
      expect(
        await b.replication.promote("acme", { epoch: 1, generation: seen.generation, digest: seen.digest }),
      ).to.deep.equal(promoted);
      // A copy of the new primary (at epoch 1) is promoted only at a higher epoch.
      const c = domainNode();
      await c.replication.importReplica("acme", { ...b.reads.snapshot("acme"), primary: "http://b.test:8080" });
      const again = { epoch: 1, generation: seen.generation, digest: seen.digest };
      expect((await failure(c.replication.promote("acme", again))).code).to.equal("stale_epoch");
      expect(await c.replication.promote("acme", { ...again, epoch: 2 })).to.include({ role: "primary", epoch: 2 });
      c.close();
      // The new primary takes writes, at the next generation, with the epoch in its answers.
      const written = await b.putUser("acme", "carol", { passwordHash: fakeHash("carol") });
      expect(written).to.include({ generation: seen.generation + 1, epoch: 1 });
    });

    it("refuses to promote a copy that changed since the caller looked, or a primary", async function () {
      const seen = b.reads.orgStatus("acme");
      const changed = await failure(
        b.replication.promote("acme", { epoch: 1, generation: seen.generation - 1, digest: seen.digest }),
      );
      expect(changed.code).to.equal("copy_changed");
      expect(b.reads.orgStatus("acme").role).to.equal("secondary");
      expect(
        (await failure(a.replication.promote("acme", { epoch: 1, generation: seen.generation, digest: seen.digest })))
          .code,
      ).to.equal("primary_copy");
    });

    it("fences the former primary off: its snapshots and deltas are refused, a newer epoch's demote it", async function () {
      const seen = b.reads.orgStatus("acme");
      await b.replication.promote("acme", { epoch: 1, generation: seen.generation, digest: seen.digest });
      // The former primary (epoch 0) comes back and writes.
      await a.putUser("acme", "zed", { passwordHash: fakeHash("zed") });
      const fromFormer = { ...a.reads.snapshot("acme"), primary: A };
      const stale = await failure(() => b.replication.importReplica("acme", fromFormer));
      expect(stale).to.include({ status: 409, code: "stale_epoch" });
      expect((await failure(() => b.replication.applyChanges("acme", delta(seen.generation, 0)))).code).to.equal(
        "stale_epoch",
      );
      expect(b.reads.getUser("acme", "alice").username).to.equal("alice");
      expect(() => b.reads.getUser("acme", "zed")).to.throw(/does not exist/);

      // The new primary's snapshot demotes the former one into its copy.
      const demoted = await a.replication.importReplica("acme", {
        ...b.reads.snapshot("acme"),
        primary: "http://b.test:8080",
      });
      expect(demoted).to.include({
        role: "secondary",
        epoch: 1,
        primary: "http://b.test:8080",
        digest: b.reads.orgStatus("acme").digest,
      });
    });

    it("removes a copy, and with the current epoch a former primary's org, but never a current primary", async function () {
      const seen = b.reads.orgStatus("acme");
      await b.replication.promote("acme", { epoch: 1, generation: seen.generation, digest: seen.digest });
      expect((await failure(b.replication.deleteReplica("acme"))).code).to.equal("primary_copy");
      expect((await failure(b.replication.deleteReplica("acme", 1))).code).to.equal("primary_copy");
      expect((await failure(a.replication.deleteReplica("acme"))).code).to.equal("primary_copy");
      // A copy following a higher epoch than the caller's is kept.
      const c = domainNode();
      await c.replication.importReplica("acme", { ...b.reads.snapshot("acme"), primary: "http://b.test:8080" });
      expect((await failure(c.replication.deleteReplica("acme", 0))).code).to.equal("stale_epoch");
      await c.replication.deleteReplica("acme", 1);
      expect(c.reads.listOrgs()).to.deep.equal([]);
      expect(c.ftp.rendered).to.include("-acme");
      c.close();
      // The former primary, at epoch 0, loses the org to a removal at epoch 1.
      await a.replication.deleteReplica("acme", 1);
      expect(a.reads.listOrgs()).to.deep.equal([]);
    });

    it("re-parents a copy to the new primary with a delta from the higher epoch", async function () {
      const c = domainNode();
      await c.replication.importReplica("acme", { ...a.reads.snapshot("acme"), primary: A });
      const seen = b.reads.orgStatus("acme");
      await b.replication.promote("acme", { epoch: 1, generation: seen.generation, digest: seen.digest });
      await b.putUser("acme", "carol", { passwordHash: fakeHash("carol") });
      const { changes, digest } = b.reads.changesSince("acme", seen.generation);
      const status = await c.replication.applyChanges("acme", {
        baseGeneration: seen.generation,
        changes,
        digest,
        primary: "http://b.test:8080",
        epoch: 1,
      });
      expect(status).to.include({ role: "secondary", primary: "http://b.test:8080", epoch: 1, digest, drifted: false });
      c.close();
    });
  });
});
