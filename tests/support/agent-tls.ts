/**
 * A private CA and agent certificates for hosts given by IP address, made with the openssl command
 * line as README's "HTTPS agents" says (no @pulumi/tls here: its provider plugin cannot be fetched
 * offline), so what HostingNode installs is what an operator would give it.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

export interface AgentCertificate {
  /** PEM, and the files holding them. */
  certificate: string;
  privateKey: string;
  certificateFile: string;
  privateKeyFile: string;
}

export interface AgentCa {
  /** The CA's certificate (PEM): what the stack trusts as lbhosting:caCertificate. */
  certificate: string;
  /** A certificate naming `ip` (subjectAltName IP), signed by this CA; `name` names its files. */
  issue(name: string, ip: string): AgentCertificate;
}

const openssl = (args: string[]) => execFileSync("openssl", args, { stdio: ["ignore", "ignore", "pipe"] });
const EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];

export function makeAgentCa(dir: string, name: string): AgentCa {
  const file = (suffix: string) => path.join(dir, `${name}-${suffix}`);
  fs.mkdirSync(dir, { recursive: true });
  openssl(
    ["req", "-x509", ...EC_KEY, "-days", "2", "-subj", `/CN=${name} agents CA`, "-keyout", file("ca.key")].concat([
      "-out",
      file("ca.pem"),
    ]),
  );
  return {
    certificate: fs.readFileSync(file("ca.pem"), "utf8"),
    issue(leaf, ip) {
      const out = (suffix: string) => file(`${leaf}.${suffix}`);
      openssl(["req", ...EC_KEY, "-subj", `/CN=${leaf}`, "-keyout", out("key"), "-out", out("csr")]);
      fs.writeFileSync(out("ext"), `subjectAltName=IP:${ip}\n`);
      openssl(
        ["x509", "-req", "-in", out("csr"), "-CA", file("ca.pem"), "-CAkey", file("ca.key"), "-CAcreateserial"].concat([
          "-days",
          "2",
          "-extfile",
          out("ext"),
          "-out",
          out("pem"),
        ]),
      );
      return {
        certificate: fs.readFileSync(out("pem"), "utf8"),
        privateKey: fs.readFileSync(out("key"), "utf8"),
        certificateFile: out("pem"),
        privateKeyFile: out("key"),
      };
    },
  };
}
