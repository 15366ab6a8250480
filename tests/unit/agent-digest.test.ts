/**
 * The org digest: canonical (order of keys and records does not matter), sensitive to every
 * replicated field, and the same whether computed from records or by the SQLite store.
 */
import { expect } from "chai";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { canonicalJson, type OrgRecord, type ServiceRecord, type UserRecord } from "../../wire";
import { contentDigest } from "../../agent/src/store/digest";
import Database from "better-sqlite3";
import type { OrgState } from "../../agent/src/store/org-state";
import { Store } from "../../agent/src/store/store";

const HASH = "$6$salt$" + "b".repeat(86);
const org: OrgRecord = { name: "acme", displayName: "Acme", loadBalanced: false, secondaries: [], managedBy: "" };
const users: UserRecord[] = ["carol", "alice", "bob"].map((username) => ({
  username,
  passwordHash: HASH,
  displayName: username.toUpperCase(),
  email: "",
  enabled: true,
  access: ["www"],
  managedBy: "",
}));
const services: ServiceRecord[] = [
  { name: "www", kind: "website", enabled: true, domains: ["a.test"], documentRoot: "www", managedBy: "" },
  { name: "files", kind: "ftp", enabled: true, rootPath: ".", writable: false, managedBy: "" },
];

/** The org as a store holds it (a primary at generation 1 unless overridden). */
const state = (overrides: Partial<OrgState> = {}): OrgState => ({
  record: org,
  role: "primary",
  primary: null,
  generation: 1,
  epoch: 0,
  digest: "",
  logFloor: 0,
  syncedDigest: null,
  lastSyncedAt: null,
  ...overrides,
});

describe("agent digest", function () {
  it("writes canonical JSON: keys sorted at every level, arrays in order, undefined dropped", function () {
    expect(canonicalJson({ b: 1, a: { d: [3, 1], c: undefined, b: "x" } })).to.equal('{"a":{"b":"x","d":[3,1]},"b":1}');
    expect(() => canonicalJson({ a: Number.NaN })).to.throw();
  });

  it("keeps its format: agents of different versions and stored sums must agree", function () {
    // Pinned: a change here makes every stored copy look drifted to older or newer agents.
    expect(contentDigest(org, users, services)).to.equal(
      "7f7038a0f97c53767e4b7b9ebcbf66c902b504540bdd1799654d3e465c2b1eea",
    );
  });

  it("does not depend on record order or key order", function () {
    const reordered = users.map((user) => Object.fromEntries(Object.entries(user).reverse()) as UserRecord);
    expect(contentDigest(org, [...reordered].reverse(), [...services].reverse())).to.equal(
      contentDigest(org, users, services),
    );
  });

  it("changes with every replicated field, including the password hash", function () {
    const base = contentDigest(org, users, services);
    expect(contentDigest({ ...org, managedBy: "stack" }, users, services)).to.not.equal(base);
    const otherHash = users.map((user, i) => (i === 0 ? { ...user, passwordHash: "$6$salt$" + "c".repeat(86) } : user));
    expect(contentDigest(org, otherHash, services)).to.not.equal(base);
    expect(contentDigest(org, users.slice(1), services)).to.not.equal(base);
    expect(contentDigest(org, users, [{ ...services[1], writable: true } as ServiceRecord, services[0]])).to.not.equal(
      base,
    );
  });

  it("is what the SQLite store computes for the same content", function () {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lbh-digest-"));
    const store = new Store(path.join(dir, "agent.db"));
    try {
      store.transaction(() => {
        store.saveOrg(state());
        for (const user of users) store.putUser("acme", user);
        for (const service of services) store.putService("acme", service);
      });
      expect(store.computeDigest("acme")).to.equal(contentDigest(org, users, services));
    } finally {
      store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  describe("kept by the store with every write (set sums, schema 3)", function () {
    let dir: string;
    let file: string;
    beforeEach(function () {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), "lbh-digest-"));
      file = path.join(dir, "agent.db");
    });
    afterEach(function () {
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it("follows updates, deletes and rolled-back savepoints", function () {
      const store = new Store(file);
      try {
        store.transaction(() => {
          store.saveOrg(state());
          for (const user of users) store.putUser("acme", user);
          for (const service of services) store.putService("acme", service);
        });
        const changed = { ...users[1], displayName: "Changed" };
        store.transaction(() => {
          store.putUser("acme", changed);
          store.putUser("acme", changed); // the same record again: no change
          expect(store.deleteUser("acme", users[0].username)).to.equal(true);
          expect(store.deleteUser("acme", "nobody")).to.equal(false);
          expect(store.deleteService("acme", services[1].name)).to.equal(true);
          expect(() =>
            store.savepoint(() => {
              store.putUser("acme", { ...users[2], email: "rolled@back.test" });
              throw new Error("roll back");
            }),
          ).to.throw("roll back");
        });
        expect(store.computeDigest("acme")).to.equal(contentDigest(org, [changed, users[2]], [services[0]]));
        store.transaction(() => store.clearOrgContent("acme"));
        expect(store.computeDigest("acme")).to.equal(contentDigest(org, [], []));
      } finally {
        store.close();
      }
    });

    it("recomputes digests of a schema-2 database: an in-sync copy stays in sync, a drifted one stays drifted", function () {
      const store = new Store(file);
      store.transaction(() => {
        store.saveOrg(state({ role: "secondary", primary: "http://127.0.0.1:1" }));
        store.saveOrg(state({ record: { ...org, name: "drifted" }, role: "secondary", primary: "http://127.0.0.1:1" }));
        for (const name of ["acme", "drifted"]) for (const user of users) store.putUser(name, user);
      });
      store.close();
      // What a schema-2 agent left: format-1 digests, no sums.
      const db = new Database(file);
      db.exec("DROP TABLE content_sums");
      db.exec("UPDATE orgs SET digest = 'format-1', synced_digest = 'format-1' WHERE name = 'acme'");
      db.exec("UPDATE orgs SET digest = 'format-1-edited', synced_digest = 'format-1' WHERE name = 'drifted'");
      db.pragma("user_version = 2");
      db.close();

      const reopened = new Store(file);
      try {
        const acme = reopened.getOrg("acme");
        expect(acme?.digest).to.equal(contentDigest(org, users, []));
        expect(acme?.syncedDigest).to.equal(acme?.digest);
        const drifted = reopened.getOrg("drifted");
        expect(drifted?.digest).to.equal(contentDigest({ ...org, name: "drifted" }, users, []));
        expect(drifted?.syncedDigest).to.equal("format-1");
        // The sums were filled: the next write keeps the digest exact.
        reopened.transaction(() => reopened.deleteUser("acme", users[0].username));
        expect(reopened.computeDigest("acme")).to.equal(contentDigest(org, users.slice(1), []));
      } finally {
        reopened.close();
      }
    });
  });
});
