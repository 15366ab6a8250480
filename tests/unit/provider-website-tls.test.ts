/**
 * A website's certificate in the provider: `check` names the failing field without echoing the
 * material, tolerates it unknown in a preview, and `diff` compares it as the agent stores it and
 * says when it changes (Pulumi shows no diff of a secret input).
 */
import { expect } from "chai";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { serviceProvider } from "../../provider/service";
import { UNKNOWN_VALUE } from "../../sdk/inputs";
import { type IssuedCertificate, makeCa } from "../support/certificates";

describe("provider: website certificates", function () {
  this.timeout(30_000);
  const organization = { name: "acme", primary: "http://127.0.0.1:8080" };
  const domains = ["www.acme.test"];
  let dir: string;
  let site: IssuedCertificate;
  let other: IssuedCertificate;
  const website = (tls: unknown, extra: Record<string, unknown> = {}) => ({
    organization,
    name: "www",
    kind: "website",
    domains,
    documentRoot: "www",
    managedBy: "pulumi:proj/dev/www",
    tls,
    ...extra,
  });

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "lbh-provider-tls-"));
    const ca = makeCa(dir, "provider");
    site = ca.issue("site", { names: domains });
    other = ca.issue("other", { names: domains });
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** What `diff` printed (the CLI shows a dynamic provider's stdout), and its answer. */
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

  it("check names the field of a key that does not match, quoting none of it", async () => {
    const result = await serviceProvider.check!({}, website({ certificate: site.chain, privateKey: other.privateKey }));
    expect(result.failures?.map((failure) => failure.property)).to.deep.equal(["tls.privateKey"]);
    const said = JSON.stringify(result.failures);
    expect(said).not.to.include(other.privateKey.split("\n")[1]).and.not.to.include("BEGIN");
    expect(
      (await serviceProvider.check!({}, website({ certificate: site.certificate, privateKey: site.privateKey })))
        .failures,
    ).to.deep.equal([]);
  });

  it("check tolerates a certificate not known yet in a preview, and refuses HSTS without one", async () => {
    expect((await serviceProvider.check!({}, website(UNKNOWN_VALUE))).failures).to.deep.equal([]);
    expect(
      (await serviceProvider.check!({}, website({ certificate: UNKNOWN_VALUE, privateKey: UNKNOWN_VALUE }))).failures,
    ).to.deep.equal([]);
    const hsts = await serviceProvider.check!({}, website(undefined, { hsts: true }));
    expect(hsts.failures?.map((failure) => failure.property)).to.deep.equal(["hsts"]);
  });

  it("diff compares the certificate as stored (line ends, defaults) and says when it changes, never what", async () => {
    const tls = { certificate: site.chain, privateKey: site.privateKey };
    const crlf = { certificate: site.chain.replace(/\n/g, "\r\n"), privateKey: site.privateKey };
    expect(await diffing(website(tls), website(crlf, { httpsRedirect: true, hsts: false }))).to.deep.equal({
      changes: false,
      printed: [],
    });
    const renewed = await diffing(website(tls), website({ certificate: other.chain, privateKey: other.privateKey }));
    expect(renewed).to.deep.equal({ changes: true, printed: ["WebService www: certificate changes"] });
    expect(await diffing(website(tls), website(tls, { hsts: true }))).to.deep.equal({ changes: true, printed: [] });
    expect((await diffing(website(undefined), website(tls))).changes).to.equal(true);
  });
});
