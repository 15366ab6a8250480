/**
 * Each org's Unix id: allocation (deterministic from the name, probing past ids other orgs hold,
 * within the range), the range and serving options the agent accepts, the id carried by
 * replication (a copy takes its primary's, or refuses it when another org holds it here), and ids
 * given on start to orgs of a database from before them.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { expect } from "chai";
import Database from "better-sqlite3";
import {
  DEFAULT_UNIX_ID_RANGE,
  allocateUnixId,
  assignMissingUnixIds,
  preferredUnixId,
} from "../../agent/src/domain/unix-ids";
import { optionProblem } from "../../agent/src/options";
import { webGroupId } from "../../agent/src/render/web-group";
import { Store } from "../../agent/src/store/store";
import { contentDigest } from "../../agent/src/store/digest";
import { orgSettingsSchema, parseUnixIdRange } from "../../wire";
import { type DomainNode, domainNode, failure, fakeHash } from "../support/agent-domain";

const A = "http://a.test:8080";
const WRITE = { force: false };

describe("agent: each org's Unix id", function () {
  describe("allocation", function () {
    const range = { start: 5000, end: 5009 };

    it("is the same for the same name on every node, inside the range", function () {
      const first = preferredUnixId("acme", DEFAULT_UNIX_ID_RANGE);
      expect(preferredUnixId("acme", DEFAULT_UNIX_ID_RANGE)).to.equal(first);
      expect(first).to.be.within(DEFAULT_UNIX_ID_RANGE.start, DEFAULT_UNIX_ID_RANGE.end);
      expect(preferredUnixId("bravo", DEFAULT_UNIX_ID_RANGE)).to.not.equal(first);
      for (const org of ["a", "b", "c", "acme", "bravo", "x".repeat(63)]) {
        expect(preferredUnixId(org, range)).to.be.within(range.start, range.end);
      }
      expect(allocateUnixId("acme", range, () => undefined)).to.equal(preferredUnixId("acme", range));
    });

    it("probes past ids other orgs hold, wrapping at the end, and keeps the org's own", function () {
      const first = preferredUnixId("acme", range);
      const held = new Map([[first, "bravo"]]);
      const next = first === range.end ? range.start : first + 1;
      expect(allocateUnixId("acme", range, (id) => held.get(id))).to.equal(next);
      held.set(next, "carol");
      const third = next === range.end ? range.start : next + 1;
      expect(allocateUnixId("acme", range, (id) => held.get(id))).to.equal(third);
      expect(allocateUnixId("acme", range, () => "acme")).to.equal(first);
    });

    it("refuses (507) when every id of the range is held", async function () {
      const error = await failure(async () => allocateUnixId("acme", range, () => "other"));
      expect(error.status).to.equal(507);
      expect(error.code).to.equal("org_ids_exhausted");
      expect(error.message).to.include("5000-5009").and.not.include("other");
    });
  });

  describe("options", function () {
    const base = {
      host: "127.0.0.1",
      port: 0,
      dataDir: "/tmp/x",
      name: "web-1",
      token: "0123456789abcdef0123456789abcdef",
    };
    const serving = { ...base, purePwBin: "/usr/bin/pure-pw", contentRoot: "/srv/nas", webGid: 33 };

    it("parses --org-id-range START-END: from 1000, END at or after START, below 2^31", function () {
      expect(parseUnixIdRange("200000-999999")).to.deep.equal({ start: 200000, end: 999999 });
      expect(parseUnixIdRange("1000-1000")).to.deep.equal({ start: 1000, end: 1000 });
      expect(parseUnixIdRange("999-5000")).to.match(/1000 or above/);
      expect(parseUnixIdRange("5000-4999")).to.match(/at or after its start/);
      expect(parseUnixIdRange("5000-2147483648")).to.match(/below 2\^31/);
      expect(parseUnixIdRange("5000-2147483647")).to.deep.equal({ start: 5000, end: 2147483647 });
      for (const bad of ["", "5000", "5000:6000", "-5000-6000", "a-b", "5000-6000 "]) {
        expect(parseUnixIdRange(bad), bad).to.match(/START-END/);
      }
      expect(optionProblem({ ...base, orgIdRange: { start: 10, end: 20000 } })).to.match(/--org-id-range .*1000/);
    });

    it("refuses a serving agent without a content root, a web group, or with ids the range would share", function () {
      expect(optionProblem(serving)).to.equal(undefined);
      expect(optionProblem({ ...serving, contentRoot: undefined })).to.match(/--content-root is required/);
      expect(optionProblem({ ...serving, purePwBin: undefined, nginx: { bin: "/usr/sbin/nginx" } })).to.equal(
        undefined,
      );
      expect(optionProblem({ ...serving, webGid: 0 })).to.match(/--web-gid/);
      expect(optionProblem({ ...serving, orgIdRange: { start: 60000, end: 70000 } })).to.match(
        /must not hold --ftp-readonly-uid 65534/,
      );
      expect(optionProblem({ ...serving, webGid: 300000 })).to.match(/must not hold --web-gid 300000/);
      // Not serving: nothing is owned, so none of it is needed.
      expect(optionProblem({ ...base, webGid: 0 })).to.equal(undefined);
    });

    it("finds the web group's gid in the group file", function () {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lbh-group-"));
      try {
        const file = path.join(dir, "group");
        fs.writeFileSync(file, "root:x:0:\nwww-database:x:7:\nwww-data:x:33:\n");
        expect(webGroupId(file)).to.equal(33);
        fs.writeFileSync(file, "root:x:0:\n");
        expect(webGroupId(file)).to.equal(undefined);
        expect(webGroupId(path.join(dir, "missing"))).to.equal(undefined);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe("in the org's record", function () {
    let a: DomainNode;
    let b: DomainNode;
    const range = { start: 5000, end: 5009 };

    beforeEach(async function () {
      a = domainNode({ unixIds: range });
      b = domainNode({ unixIds: range });
      await a.orgs.putOrg("acme", orgSettingsSchema.parse({}), WRITE);
      await a.putUser("acme", "alice", { passwordHash: fakeHash("alice"), access: ["files"] });
      await a.putService("acme", "files", { kind: "ftp", rootPath: "files" });
    });

    afterEach(function () {
      a.close();
      b.close();
    });

    const snapshot = () => ({ ...a.reads.snapshot("acme"), primary: A });

    it("is allocated on create, reported, replicated, and kept by later settings changes", async function () {
      const id = a.reads.orgStatus("acme").unixId;
      expect(id).to.equal(preferredUnixId("acme", range));
      expect(a.reads.snapshot("acme").org.unixId).to.equal(id);
      await a.orgs.putOrg("acme", orgSettingsSchema.parse({ displayName: "Acme" }), WRITE);
      expect(a.reads.orgStatus("acme").unixId).to.equal(id);
      expect(a.ftp.unixIds.get("acme")).to.equal(id);
      // A secondary whose own range is elsewhere still takes the primary's.
      const elsewhere = domainNode({ unixIds: { start: 7000, end: 7000 } });
      try {
        await elsewhere.orgs.putOrg("bravo", orgSettingsSchema.parse({}), WRITE);
        const status = await elsewhere.replication.importReplica("acme", snapshot());
        expect(status.unixId).to.equal(id);
        expect(elsewhere.ftp.unixIds.get("acme")).to.equal(id);
        expect(elsewhere.reads.orgStatus("bravo").unixId).to.equal(7000);
      } finally {
        elsewhere.close();
      }
      await a.orgs.putOrg("other", orgSettingsSchema.parse({}), WRITE);
      expect(a.reads.orgStatus("other").unixId).to.not.equal(id);
    });

    it("changes the digest, so a copy with another id is not in sync", function () {
      const { org, users, services } = a.reads.snapshot("acme");
      const other = (org.unixId ?? 0) === range.end ? range.start : (org.unixId ?? 0) + 1;
      expect(contentDigest({ ...org, unixId: other }, users, services)).to.not.equal(
        contentDigest(org, users, services),
      );
    });

    it("is refused (409 org_id_taken, naming the id, not the org) where another org holds it", async function () {
      const id = a.reads.orgStatus("acme").unixId as number;
      // This node allocates bravo from a range that holds only acme's id.
      const one = domainNode({ unixIds: { start: id, end: id } });
      try {
        await one.orgs.putOrg("bravo", orgSettingsSchema.parse({}), WRITE);
        expect(one.reads.orgStatus("bravo").unixId).to.equal(id);
        const error = await failure(one.replication.importReplica("acme", snapshot()));
        expect(error.status).to.equal(409);
        expect(error.code).to.equal("org_id_taken");
        expect(error.message).to.include(String(id)).and.not.include("bravo");
        expect(one.store.getOrg("acme")).to.equal(undefined);
      } finally {
        one.close();
      }
    });

    it("is allocated by the copy when an older primary's snapshot carries none, with the primary's digest", async function () {
      const old = snapshot();
      const record = { ...old.org };
      delete record.unixId;
      const digest = contentDigest(record, old.users, old.services);
      const status = await b.replication.importReplica("acme", { ...old, org: record, digest });
      expect(status.digest).to.equal(digest);
      expect(status.unixId).to.equal(preferredUnixId("acme", range));
    });
  });

  it("is given on start to orgs of a database from before ids; an in-sync copy stays in sync", function () {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lbh-unix-ids-"));
    try {
      const file = path.join(dir, "agent.db");
      const store = new Store(file);
      const record = { name: "acme", displayName: "", loadBalanced: false, secondaries: [], managedBy: "" };
      const digest = contentDigest(record, [], []);
      store.transaction(() =>
        store.saveOrg({
          record,
          role: "secondary",
          primary: A,
          generation: 3,
          digest,
          epoch: 0,
          logFloor: 3,
          syncedDigest: digest,
          lastSyncedAt: null,
        }),
      );
      store.close();
      // What a schema-3 agent left: no unix_id column.
      const db = new Database(file);
      db.exec("DROP INDEX orgs_unix_id; ALTER TABLE orgs DROP COLUMN unix_id; PRAGMA user_version = 3");
      db.close();
      const upgraded = new Store(file);
      try {
        expect(assignMissingUnixIds(upgraded, DEFAULT_UNIX_ID_RANGE)).to.deep.equal(["acme"]);
        const acme = upgraded.getOrg("acme");
        const id = preferredUnixId("acme", DEFAULT_UNIX_ID_RANGE);
        expect(acme?.unixId).to.equal(id);
        expect(acme?.record.unixId).to.equal(id);
        expect(acme?.digest).to.equal(contentDigest({ ...record, unixId: id }, [], []));
        expect(acme?.syncedDigest).to.equal(acme?.digest);
        expect(assignMissingUnixIds(upgraded, DEFAULT_UNIX_ID_RANGE)).to.deep.equal([]);
      } finally {
        upgraded.close();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
