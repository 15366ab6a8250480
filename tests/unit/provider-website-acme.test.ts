/**
 * A website with `tls.acme` in the provider: `check` validates the ACME settings, `diff` orders a
 * certificate when none is held, the domains changed or renewal is due (saying which, with the
 * days left), and reuses the held one otherwise; the outputs keep it in `acmeIssued`.
 */
import { expect } from "chai";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { reissueReason } from "../../provider/acme";
import { serviceProvider } from "../../provider/service";
import { type IssuedCertificate, makeCa, opensslDate } from "../support/certificates";

describe("provider: ACME websites", function () {
  this.timeout(30_000);
  const organization = { name: "acme", primary: "http://127.0.0.1:8080" };
  const domains = ["www.acme.test"];
  const directory = "https://127.0.85.3:14000/dir";
  let dir: string;
  let fresh: IssuedCertificate;
  let expiring: IssuedCertificate;
  const website = (acme: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
    organization,
    name: "www",
    kind: "website",
    domains,
    documentRoot: "www",
    managedBy: "pulumi:proj/dev/www",
    tls: { acme },
    ...extra,
  });
  const issued = (cert: IssuedCertificate) => ({
    accountKey: "account key",
    certificate: cert.chain,
    privateKey: cert.privateKey,
  });

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "lbh-provider-acme-"));
    const ca = makeCa(dir, "provider-acme");
    fresh = ca.issue("fresh", { names: domains, endDate: opensslDate(25) });
    expiring = ca.issue("expiring", { names: domains, endDate: opensslDate(10.5) });
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function diffing(olds: object, news: object): Promise<{ changes?: boolean; printed: string[] }> {
    const printed: string[] = [];
    const log = console.log;
    console.log = (line: string) => printed.push(line);
    try {
      const result = await serviceProvider.diff!("acme/www", olds, news);
      return { changes: result.changes, printed };
    } finally {
      console.log = log;
    }
  }

  it("check accepts ACME settings and names each bad one", async () => {
    const ok = await serviceProvider.check!({}, website({ email: "ops@acme.test", directory, renewBefore: 20 }));
    expect(ok.failures ?? []).to.deep.equal([]);
    for (const [acme, property] of [
      [{ email: "not an email" }, "tls.acme.email"],
      [{ email: "ops@acme.test", directory: "http://acme.test/dir" }, "tls.acme.directory"],
      [{ email: "ops@acme.test", renewBefore: 0 }, "tls.acme.renewBefore"],
      [{ email: "ops@acme.test", staging: true }, "tls.acme"],
    ] as const) {
      const result = await serviceProvider.check!({}, website(acme));
      expect(
        result.failures?.map((failure) => failure.property),
        JSON.stringify(acme),
      ).to.include(property);
    }
    const both = await serviceProvider.check!(
      {},
      website({ email: "ops@acme.test" }, { tls: { acme: { email: "ops@acme.test" }, certificate: fresh.chain } }),
    );
    expect(both.failures ?? []).not.to.deep.equal([]);
  });

  it("diff orders a certificate when none is held, and reuses one far from expiry", async () => {
    const news = website({ email: "ops@acme.test", directory, renewBefore: 20 });
    const first = await diffing(
      website({ email: "ops@acme.test", directory, renewBefore: 20 }, { tls: undefined }),
      news,
    );
    expect(first.changes).to.equal(true);
    expect(first.printed).to.deep.equal(["WebService www: certificate issued by ACME"]);

    const held = await diffing({ ...news, acmeIssued: issued(fresh) }, news);
    expect(held).to.deep.equal({ changes: false, printed: [] });
    // Another contact address is an update, but orders nothing.
    const email = await diffing(
      { ...news, acmeIssued: issued(fresh) },
      website({ email: "web@acme.test", directory, renewBefore: 20 }),
    );
    expect(email).to.deep.equal({ changes: true, printed: [] });
  });

  it("diff renews a certificate within renewBefore of its expiry, saying in how many days it expires", async () => {
    const news = website({ email: "ops@acme.test", directory, renewBefore: 20 });
    const due = await diffing({ ...news, acmeIssued: issued(expiring) }, news);
    expect(due).to.deep.equal({ changes: true, printed: ["WebService www: certificate renews: expires in 10 days"] });
    // The default is 30 days: the 25-day certificate is due too.
    const byDefault = website({ email: "ops@acme.test", directory });
    expect((await diffing({ ...byDefault, acmeIssued: issued(fresh) }, byDefault)).printed).to.deep.equal([
      "WebService www: certificate renews: expires in 24 days",
    ]);
  });

  it("diff orders again for a new domain, a new directory, or a key a refresh dropped", async () => {
    const news = website({ email: "ops@acme.test", directory, renewBefore: 20 });
    const olds = { ...news, acmeIssued: issued(fresh) };
    const domain = await diffing(olds, { ...news, domains: [...domains, "acme.test"] });
    expect(domain.printed).to.deep.equal(["WebService www: certificate reissued: the domains changed"]);
    const moved = await diffing(olds, website({ email: "ops@acme.test", directory: `${directory}2`, renewBefore: 20 }));
    expect(moved.printed).to.deep.equal(["WebService www: certificate issued by ACME"]);
    const dropped = await diffing({ ...olds, acmeIssued: { ...issued(fresh), privateKey: "" } }, news);
    expect(dropped).to.deep.equal({ changes: true, printed: ["WebService www: certificate issued by ACME"] });
    expect(reissueReason(issued(fresh), domains, 20)).to.equal(undefined);
  });
});
