import { expect } from "chai";
import { planSync } from "../../provider/plan";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { type ServiceRecord, type Snapshot, type UserRecord, certificateSummary } from "../../wire";
import { type IssuedCertificate, makeCa } from "../support/certificates";

const HASH_A = `$6$saltsalt$${"a".repeat(86)}`;
const HASH_B = `$6$saltsalt$${"b".repeat(86)}`;

const user = (username: string, overrides: Partial<UserRecord> = {}): UserRecord => ({
  username,
  passwordHash: HASH_A,
  displayName: "",
  email: "",
  enabled: true,
  access: [],
  managedBy: "",
  ...overrides,
});

const website = (name: string, domains: string[]): ServiceRecord => ({
  name,
  kind: "website",
  enabled: true,
  domains,
  documentRoot: "public",
  managedBy: "",
});

const snapshot = (overrides: Partial<Snapshot> = {}): Snapshot => ({
  generation: 5,
  epoch: 0,
  digest: "d".repeat(64),
  org: {
    name: "acme",
    displayName: "Acme",
    loadBalanced: true,
    secondaries: ["http://127.0.0.2:1"],
    managedBy: "",
  },
  users: [user("alice"), user("bob")],
  services: [website("www", ["www.acme.test"])],
  ...overrides,
});

describe("planSync: what a sync would change on a secondary", () => {
  it("finds nothing when the copy equals the primary (generation and digest do not count)", () => {
    expect(planSync(snapshot(), snapshot({ generation: 4, digest: "e".repeat(64) }))).to.deep.equal([]);
  });

  it("adds everything to a secondary without a copy", () => {
    expect(planSync(snapshot(), undefined)).to.deep.equal([
      { kind: "org", action: "add", name: "acme", fields: [] },
      { kind: "user", action: "add", name: "alice", fields: [] },
      { kind: "user", action: "add", name: "bob", fields: [] },
      { kind: "service", action: "add", name: "www", fields: [] },
    ]);
  });

  it("lists added, changed and removed users and services, sorted by name, fields by name", () => {
    const primary = snapshot({
      users: [user("alice", { displayName: "Alice", access: ["files"] }), user("dave")],
      services: [website("blog", ["blog.acme.test"]), website("www", ["www.acme.test"])],
    });
    const copy = snapshot({
      users: [user("alice"), user("bob")],
      services: [website("www", ["www.acme.test", "acme.test"])],
    });
    expect(planSync(primary, copy)).to.deep.equal([
      { kind: "user", action: "change", name: "alice", fields: ["access: [] → [files]", 'displayName: "" → "Alice"'] },
      { kind: "user", action: "remove", name: "bob", fields: [] },
      { kind: "user", action: "add", name: "dave", fields: [] },
      { kind: "service", action: "add", name: "blog", fields: [] },
      {
        kind: "service",
        action: "change",
        name: "www",
        fields: ["domains: [www.acme.test, acme.test] → [www.acme.test]"],
      },
    ]);
  });

  it("shows a changed password as 'password changed', never the hash", () => {
    const changes = planSync(
      snapshot({ users: [user("alice", { passwordHash: HASH_B })] }),
      snapshot({ users: [user("alice")] }),
    );
    expect(changes).to.deep.equal([{ kind: "user", action: "change", name: "alice", fields: ["password changed"] }]);
    expect(JSON.stringify(changes)).not.to.include("$6$");
  });

  it("shows a changed certificate by its fingerprint and expiry, never its PEM or key", function () {
    this.timeout(20_000);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lbh-plan-tls-"));
    try {
      const ca = makeCa(dir, "plan");
      const [a, b] = ["a", "b"].map((name) => ca.issue(name, { names: ["www.acme.test"] }));
      const secure = (cert: IssuedCertificate): ServiceRecord => ({
        name: "www",
        kind: "website",
        enabled: true,
        domains: ["www.acme.test"],
        documentRoot: "public",
        managedBy: "",
        tls: { certificate: cert.certificate, privateKey: cert.privateKey, httpsRedirect: true, hsts: false },
      });
      const changes = planSync(snapshot({ services: [secure(b)] }), snapshot({ services: [secure(a)] }));
      const [field] = changes[0].fields;
      const print = (cert: IssuedCertificate) => certificateSummary(cert.certificate).fingerprint.slice(0, 16);
      expect(field).to.match(
        new RegExp(`^tls: certificate sha256:${print(a)}… until .* → certificate sha256:${print(b)}…`),
      );
      expect(JSON.stringify(changes)).not.to.include("BEGIN");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("compares org settings and a service whose kind changed field by field", () => {
    const primary = snapshot({
      org: { ...snapshot().org, displayName: "Acme Corp", loadBalanced: true },
      services: [{ name: "www", kind: "ftp", enabled: true, rootPath: "ftp", writable: false, managedBy: "" }],
    });
    const copy = snapshot({ org: { ...snapshot().org, secondaries: [] } });
    expect(planSync(primary, copy)).to.deep.equal([
      {
        kind: "org",
        action: "change",
        name: "acme",
        fields: ['displayName: "Acme" → "Acme Corp"', "secondaries: [] → [http://127.0.0.2:1]"],
      },
      {
        kind: "service",
        action: "change",
        name: "www",
        fields: [
          'documentRoot: "public" → (none)',
          "domains: [www.acme.test] → (none)",
          'kind: "website" → "ftp"',
          'rootPath: (none) → "ftp"',
          "writable: (none) → false",
        ],
      },
    ]);
  });
});
