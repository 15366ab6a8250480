/**
 * A website's TLS certificate and key (wire/tls.ts, wire/requests.ts): the checks a new one must
 * pass, each failing on the field it is about without quoting the material, and what answers show.
 */
import { expect } from "chai";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { certificateSummary, serviceBodySchema, serviceView, tlsProblems, websiteTlsRecordSchema } from "../../wire";
import { type IssuedCertificate, type TestCa, makeCa, opensslDate } from "../support/certificates";

describe("website TLS material", function () {
  this.timeout(30_000);
  let dir: string;
  let ca: TestCa;
  let site: IssuedCertificate;
  let other: IssuedCertificate;
  const domains = ["www.acme.test", "acme.test"];

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "lbh-tls-unit-"));
    ca = makeCa(dir, "unit");
    site = ca.issue("site", { names: domains });
    other = ca.issue("other", { names: domains });
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const body = (tls: Record<string, unknown> | undefined, extra: Record<string, unknown> = {}) => ({
    kind: "website",
    domains,
    documentRoot: "www",
    ...(tls && { tls }),
    ...extra,
  });
  /** The issues of a website body, as `path: message` lines. */
  const issues = (value: unknown): string[] => {
    const result = serviceBodySchema.safeParse(value);
    return result.success ? [] : result.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`);
  };

  it("accepts a certificate with its chain and key, stored with \\n line ends and defaults applied", () => {
    const crlf = { certificate: site.chain.replace(/\n/g, "\r\n"), privateKey: `\n${site.privateKey}` };
    const parsed = serviceBodySchema.parse(body(crlf));
    expect(parsed.kind === "website" && parsed.tls).to.deep.equal({
      certificate: site.chain,
      privateKey: site.privateKey,
    });
    expect(issues(body({ certificate: site.certificate, privateKey: site.privateKey }))).to.deep.equal([]);
  });

  it("refuses each bad certificate on its field, quoting none of the material", () => {
    const notPem = { certificate: "hello", privateKey: site.privateKey };
    const injected = {
      certificate: site.certificate.replace("-----END", '";}\n-----END'),
      privateKey: site.privateKey,
    };
    const expired = ca.issue("expired", { names: domains, startDate: opensslDate(-10), endDate: opensslDate(-1) });
    const narrow = ca.issue("narrow", { names: ["www.acme.test"] });
    const cases: Array<[string, unknown, RegExp]> = [
      ["malformed PEM", body(notPem), /^tls\.certificate: must be PEM/],
      ["nginx syntax in the PEM", body(injected), /^tls\.certificate: must be PEM/],
      ["a key not in PEM", body({ ...site, privateKey: "secret-key-text" }), /^tls\.privateKey: must be PEM/],
      [
        "a certificate where the key goes",
        body({ ...site, privateKey: site.certificate }),
        /^tls\.privateKey: must hold only/,
      ],
      [
        "another certificate's key",
        body({ certificate: site.certificate, privateKey: other.privateKey }),
        /^tls\.privateKey: does not match/,
      ],
      [
        "an expired certificate",
        body({ certificate: expired.certificate, privateKey: expired.privateKey }),
        /^tls\.certificate: expired on/,
      ],
      [
        "a certificate missing a domain",
        body({ certificate: narrow.certificate, privateKey: narrow.privateKey }),
        /^tls\.certificate: does not cover acme\.test/,
      ],
      [
        "a chain in the wrong order",
        body({ certificate: ca.certificate + site.certificate, privateKey: site.privateKey }),
        /^tls\.(certificate|privateKey): /,
      ],
      ["a redirect without tls", body(undefined, { httpsRedirect: true }), /^httpsRedirect: needs tls$/],
      ["HSTS without tls", body(undefined, { hsts: true }), /^hsts: needs tls$/],
    ];
    for (const [what, value, expected] of cases) {
      const found = issues(value);
      expect(found, what).to.have.length.greaterThan(0);
      expect(
        found.some((line) => expected.test(line)),
        `${what}: ${found.join(" | ")}`,
      ).to.equal(true);
      const keyBody = site.privateKey.split("\n")[1];
      for (const line of found) expect(line, what).not.to.include(keyBody).and.not.to.include("secret-key-text");
    }
  });

  it("names a chain whose issuer comes first, and a certificate that expired by the given time", () => {
    const reversed = tlsProblems(site.certificate + other.certificate, site.privateKey, domains, new Date());
    expect(reversed.map((p) => p.message).join()).to.match(
      /chain out of order: certificate 2 did not issue certificate 1/,
    );
    const later = new Date(Date.now() + 60 * 86_400_000);
    expect(
      tlsProblems(site.chain, site.privateKey, domains, later)
        .map((p) => p.message)
        .join(),
    ).to.match(/^expired on/);
    expect(tlsProblems(site.chain, site.privateKey, domains, new Date())).to.deep.equal([]);
  });

  it("shows a certificate's fingerprint, names and expiry in answers, never the PEM or the key", () => {
    const record = {
      name: "www",
      kind: "website" as const,
      enabled: true,
      domains,
      documentRoot: "www",
      tls: websiteTlsRecordSchema.parse({
        certificate: site.chain,
        privateKey: site.privateKey,
        httpsRedirect: true,
        hsts: false,
      }),
      managedBy: "",
    };
    const shown = serviceView(record);
    const summary = certificateSummary(site.chain);
    expect(summary.names).to.deep.equal(domains);
    expect(summary.fingerprint).to.match(/^[0-9a-f]{64}$/);
    expect(new Date(summary.notAfter).getTime()).to.be.greaterThan(Date.now());
    expect(shown).to.deep.equal({ ...record, tls: { ...summary, httpsRedirect: true, hsts: false } });
    expect(JSON.stringify(shown)).not.to.include("BEGIN");
  });
});
