/**
 * HTTPS agents signed by a private CA (made here with openssl, as README's "HTTPS agents" says):
 * the agent client, the provider's credentials (stack config `lbhosting:caCertificate`) and the
 * `lbhosting` commands (`--ca-file`) trust it only when given it, name the TLS error when not,
 * and never need NODE_EXTRA_CA_CERTS.
 */
import { expect } from "chai";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { AgentClient, AgentUnreachableError } from "../../provider/client";
import { Credentials } from "../../provider/credentials";
import { type AgentProcess, startAgentProcess } from "../support/agent-process";
import { runCli } from "../support/cli-run";

const HOST = "127.0.1.60";

/** A CA, and a certificate it signs for `ip` (as subjectAltName): the files' paths. */
function privateCa(dir: string, name: string, ip?: string): { ca: string; cert: string; key: string } {
  const file = (suffix: string) => path.join(dir, `${name}.${suffix}`);
  const openssl = (...args: string[]) => execFileSync("openssl", args, { stdio: "ignore" });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  openssl(
    "req",
    "-x509",
    ...ec,
    "-days",
    "2",
    "-subj",
    `/CN=${name} CA`,
    "-keyout",
    file("ca.key"),
    "-out",
    file("ca.pem"),
  );
  if (ip !== undefined) {
    openssl("req", ...ec, "-subj", `/CN=${ip}`, "-keyout", file("key.pem"), "-out", file("csr"));
    fs.writeFileSync(file("ext"), `subjectAltName=IP:${ip}\n`);
    openssl(
      ...["x509", "-req", "-in", file("csr"), "-CA", file("ca.pem"), "-CAkey", file("ca.key"), "-CAcreateserial"],
      ...["-days", "2", "-extfile", file("ext"), "-out", file("cert.pem")],
    );
  }
  return { ca: file("ca.pem"), cert: file("cert.pem"), key: file("key.pem") };
}

describe("HTTPS agents signed by a private CA (integration)", function () {
  this.timeout(60_000);
  let dir: string;
  let agent: AgentProcess;
  let ours: ReturnType<typeof privateCa>;
  let other: ReturnType<typeof privateCa>;

  before(async function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "lbh-tls-trust-"));
    ours = privateCa(dir, "ours", HOST);
    other = privateCa(dir, "other");
    agent = await startAgentProcess({ host: HOST, tls: { certFile: ours.cert, keyFile: ours.key } });
    expect(agent.url).to.match(/^https:/);
    const client = new AgentClient(agent.url, agent.token, { ca: [fs.readFileSync(ours.ca, "utf8")] });
    await client.putOrg("acme", { displayName: "Acme" });
  });

  after(async function () {
    await agent?.stop();
    agent?.cleanup();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const unreachable = async (call: Promise<unknown>): Promise<AgentUnreachableError> => {
    try {
      await call;
    } catch (error) {
      if (error instanceof AgentUnreachableError) return error;
      throw error;
    }
    throw new Error("the call succeeded");
  };

  it("the client trusts the agent with its CA, and names the TLS error without it or with another CA", async function () {
    const withCa = (ca?: string) =>
      new AgentClient(agent.url, agent.token, { retries: 0, ...(ca && { ca: [fs.readFileSync(ca, "utf8")] }) });
    expect((await withCa(ours.ca).getOrg("acme")).name).to.equal("acme");
    for (const client of [withCa(), withCa(other.ca)]) {
      const error = await unreachable(client.getOrg("acme"));
      expect(error.message).to.include(agent.url).and.include("not signed by a trusted CA");
      expect(error.message).to.include("lbhosting:caCertificate");
    }
  });

  it("the provider trusts the CA of stack config lbhosting:caCertificate, and refuses one that is not PEM", async function () {
    const credentials = new Credentials(() => undefined);
    const config = (values: Record<string, string>) => ({ get: (key: string) => values[key] });
    const ca = fs.readFileSync(ours.ca, "utf8");
    credentials.configure(config({ "lbhosting:token": agent.token, "lbhosting:caCertificate": ca }));
    expect((await credentials.clientFor(agent.url).getOrg("acme")).name).to.equal("acme");

    credentials.configure(config({ "lbhosting:token": agent.token }));
    expect((await unreachable(credentials.clientFor(agent.url).getOrg("acme"))).reason).to.include(
      "not signed by a trusted CA",
    );
    const key = fs.readFileSync(ours.key, "utf8");
    expect(() => credentials.configure(config({ "lbhosting:caCertificate": key })))
      .to.throw("lbhosting:caCertificate holds no PEM certificate")
      .with.property("message")
      .that.does.not.include("PRIVATE KEY");
  });

  it("`lbhosting status --ca-file` trusts the CA; without it the command names the TLS error", async function () {
    const status = (...extra: string[]) =>
      runCli(["status", "--org", "acme", "--primary", agent.url, "--json", ...extra], { LBHOSTING_TOKEN: agent.token });
    const trusted = await status("--ca-file", ours.ca);
    expect(trusted.code, trusted.stderr).to.equal(0);
    expect(JSON.parse(trusted.stdout)).to.include({ org: "acme", inSync: true });

    const untrusted = await status();
    expect(untrusted.code).to.equal(2);
    expect(untrusted.stderr).to.include("not signed by a trusted CA");
    const notPem = await status("--ca-file", ours.key);
    expect(notPem.code).to.equal(2);
    expect(notPem.stderr).to.include("holds no PEM certificate").and.not.include("PRIVATE KEY");
  });
});
