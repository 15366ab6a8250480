/**
 * Test fixture: a private CA and the certificates it issues, made with the openssl command line
 * (as README's "HTTPS agents" says), so what the tests load is what an operator would upload.
 *
 *   const ca = makeCa(dir, "test");
 *   const site = ca.issue("site", { names: ["www.acme.test"] });   // { certificate, privateKey, chain }
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

/** A certificate as PEM: the site's own, its key, and `chain` (the certificate, then the CA). */
export interface IssuedCertificate {
  certificate: string;
  privateKey: string;
  chain: string;
}

export interface IssueOptions {
  /** The DNS names it covers (subjectAltName). */
  names: string[];
  /** Validity, as openssl's `YYYYMMDDHHMMSSZ`; default: from yesterday for 30 days. */
  startDate?: string;
  endDate?: string;
}

export interface TestCa {
  /** The CA's certificate (PEM). */
  certificate: string;
  certificateFile: string;
  issue(name: string, options: IssueOptions): IssuedCertificate;
}

const openssl = (args: string[]) => execFileSync("openssl", args, { stdio: ["ignore", "ignore", "pipe"] });
const EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];

/** openssl's date form for `days` from now. */
const opensslDate = (days: number): string =>
  `${new Date(Date.now() + days * 86_400_000)
    .toISOString()
    .replace(/[-:T]/g, "")
    .replace(/\.\d+Z$/, "")}Z`;

export function makeCa(dir: string, name: string): TestCa {
  const home = path.join(dir, `${name}-ca`);
  fs.mkdirSync(home, { recursive: true });
  const file = (suffix: string) => path.join(home, suffix);
  fs.writeFileSync(file("index.txt"), "");
  fs.writeFileSync(file("serial"), "1000\n");
  fs.writeFileSync(
    file("ca.cnf"),
    [
      "[ca]",
      "default_ca = lbh",
      "[lbh]",
      `database = ${file("index.txt")}`,
      `new_certs_dir = ${home}`,
      `serial = ${file("serial")}`,
      "default_md = sha256",
      "policy = any",
      "unique_subject = no",
      "[any]",
      "commonName = supplied",
      "",
    ].join("\n"),
  );
  openssl(
    ["req", "-x509", ...EC_KEY, "-days", "30", "-subj", `/CN=${name} test CA`].concat([
      "-keyout",
      file("ca.key"),
      "-out",
      file("ca.pem"),
    ]),
  );
  const certificate = fs.readFileSync(file("ca.pem"), "utf8");
  return {
    certificate,
    certificateFile: file("ca.pem"),
    issue(leaf, options) {
      const out = (suffix: string) => file(`${leaf}.${suffix}`);
      openssl(["req", ...EC_KEY, "-subj", `/CN=${options.names[0]}`, "-keyout", out("key"), "-out", out("csr")]);
      fs.writeFileSync(out("ext"), `subjectAltName=${options.names.map((n) => `DNS:${n}`).join(",")}\n`);
      openssl([
        ...["ca", "-batch", "-notext", "-config", file("ca.cnf"), "-cert", file("ca.pem"), "-keyfile", file("ca.key")],
        ...["-in", out("csr"), "-out", out("pem"), "-extfile", out("ext")],
        ...["-startdate", options.startDate ?? opensslDate(-1), "-enddate", options.endDate ?? opensslDate(30)],
      ]);
      const issued = fs.readFileSync(out("pem"), "utf8");
      return { certificate: issued, privateKey: fs.readFileSync(out("key"), "utf8"), chain: issued + certificate };
    },
  };
}
