/**
 * The org digest: canonical (order of keys and records does not matter), sensitive to every
 * replicated field, and the same whether computed from records or by the SQLite store.
 */
import { expect } from "chai";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { canonicalJson, contentDigest } from "../../agent/digest";
import { Store } from "../../agent/store";
import type { OrgRecord, ServiceRecord, UserRecord } from "../../sdk/schemas";

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

describe("agent digest", function () {
  it("writes canonical JSON: keys sorted at every level, arrays in order, undefined dropped", function () {
    expect(canonicalJson({ b: 1, a: { d: [3, 1], c: undefined, b: "x" } })).to.equal('{"a":{"b":"x","d":[3,1]},"b":1}');
    expect(() => canonicalJson({ a: Number.NaN })).to.throw();
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
        store.saveOrg({
          record: org,
          role: "primary",
          primary: null,
          generation: 1,
          epoch: 0,
          digest: "",
          logFloor: 0,
          syncedDigest: null,
          lastSyncedAt: null,
        });
        for (const user of users) store.putUser("acme", user);
        for (const service of services) store.putService("acme", service);
      });
      expect(store.computeDigest("acme")).to.equal(contentDigest(org, users, services));
    } finally {
      store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
