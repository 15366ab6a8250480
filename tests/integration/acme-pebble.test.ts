/**
 * Real ACME with Pebble: the provider's `create` of a website with `tls.acme` orders a certificate
 * from Pebble, which validates HTTP-01 against the node's real nginx (its DNS, challtestsrv,
 * resolves every name to the node), and the node then serves it over HTTPS, chaining to Pebble's
 * root. A second `update` reuses it; a domain that points elsewhere fails naming the domain and
 * leaves nothing on the node. Agent 127.0.85.11, nginx 127.0.85.12, Pebble 127.0.85.13.
 */
import { expect } from "chai";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { credentials } from "../../provider/context";
import { AgentClient } from "../../provider/client";
import { serviceProvider } from "../../provider/service";
import { certificateSummary } from "../../wire";
import { type AgentProcess, startAgentProcess } from "../support/agent-process";
import { makeCa } from "../support/certificates";
import { getSecureSite } from "../support/http-get";
import { type NginxProcess, nginxBinaryOrSkip, startNginx } from "../support/nginx";
import { type Pebble, pebbleOrSkip, startPebble } from "../support/pebble";
import { freePort } from "../support/ports";

const TOKEN = "acme-pebble-test-token-0123456789ab";
const WWW = "www.acme.test";

describe("ACME certificates from Pebble, HTTP-01 answered by the node's nginx (integration)", function () {
  this.timeout(120_000);
  let work: string;
  let nginx: NginxProcess;
  let agent: AgentProcess;
  let pebble: Pebble;
  let client: AgentClient;
  let httpsListen: string;
  /** The www website's outputs after the last create or update. */
  let latest: Record<string, unknown> & { certificate?: unknown };
  const organization = () => ({ name: "acme", primary: agent.url });
  const website = (name: string, domains: string[]) => ({
    organization: organization(),
    name,
    kind: "website" as const,
    domains,
    documentRoot: "www",
    managedBy: `pulumi:acme-pebble/test/${name}`,
    tls: { acme: { email: "ops@acme.test", directory: pebble.directory } },
  });

  before(async function () {
    const bin = nginxBinaryOrSkip(this);
    const binaries = pebbleOrSkip(this);
    work = fs.mkdtempSync(path.join(os.tmpdir(), "lbh-acme-pebble-test-"));
    fs.chmodSync(work, 0o755);
    const contentRoot = path.join(work, "content");
    fs.mkdirSync(path.join(contentRoot, "acme", "www"), { recursive: true });
    fs.writeFileSync(path.join(contentRoot, "acme", "www", "index.html"), "<h1>acme over ACME</h1>\n");
    const confDir = path.join(work, "sites");
    fs.mkdirSync(confDir);
    nginx = await startNginx({ bin, host: "127.0.85.12", includeDirs: [confDir] });
    httpsListen = `127.0.85.12:${await freePort("127.0.85.12")}`;
    agent = await startAgentProcess({
      host: "127.0.85.11",
      token: TOKEN,
      contentRoot,
      nginxConfDir: confDir,
      httpListen: nginx.listen,
      nginx: { bin, mainConf: nginx.mainConf, prefix: nginx.prefix },
      extraArgs: ["--https-listen", httpsListen],
    });
    pebble = await startPebble(binaries, {
      host: "127.0.85.13",
      resolveTo: "127.0.85.12",
      httpPort: Number(nginx.listen.split(":").pop()),
      dir: work,
    });
    credentials.configure({
      get: (key: string) =>
        ({ "lbhosting:token": TOKEN, "lbhosting:acmeCaCertificate": pebble.apiCa })[key] as string | undefined,
    });
    client = new AgentClient(agent.url, TOKEN, { retries: 0 });
    await client.putOrg("acme", {});
  });

  after(async () => {
    await pebble?.stop();
    await agent?.stop();
    agent?.cleanup();
    await nginx?.stop();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it("issues the certificate on create, serves it over HTTPS, and reuses it on the next update", async () => {
    const started = Date.now();
    const printed: string[] = [];
    const log = console.log;
    console.log = (line: string) => printed.push(line);
    let created;
    try {
      created = await serviceProvider.create!(website("www", [WWW]));
    } finally {
      console.log = log;
    }
    console.log(`      ACME issuance through the provider's create: ${Date.now() - started} ms`);
    expect(printed.join("\n")).to.match(
      /WebService www: certificate issued by https:\/\/127\.0\.85\.13:\d+\/dir for www\.acme\.test in [\d.]+ s/,
    );
    const issued = created.outs.acmeIssued as { certificate: string; privateKey: string; accountKey: string };
    expect(created.outs.certificate).to.deep.equal(certificateSummary(issued.certificate));
    expect(created.outs.certificate.names).to.deep.equal([WWW]);

    const root = await pebble.root();
    const served = await getSecureSite(httpsListen, WWW, root);
    expect(served.status).to.equal(200);
    expect(served.body).to.equal("<h1>acme over ACME</h1>\n");
    expect(served.fingerprint).to.equal(created.outs.certificate.fingerprint);
    // The challenge answers are gone once the order is done.
    expect(fs.readdirSync(path.join(work, "content", "acme", "www", ".well-known", "acme-challenge"))).to.deep.equal(
      [],
    );
    const shown = JSON.stringify(await client.getService("acme", "www"));
    expect(shown).not.to.include(issued.privateKey.split("\n")[1]);

    const again = await serviceProvider.update!("acme/www", created.outs, website("www", [WWW]));
    expect(again.outs.acmeIssued).to.deep.equal(issued);
    latest = again.outs;
  });

  it("refresh of a certificate replaced on the primary drops the held key (never copies one), and the next update orders again", async () => {
    const current = { outs: latest };
    const forged = makeCa(work, "forger").issue("forged", { names: [WWW] });
    await client.putService("acme", "www", {
      kind: "website",
      domains: [WWW],
      documentRoot: "www",
      tls: { certificate: forged.chain, privateKey: forged.privateKey },
    });
    const refreshed = (await serviceProvider.read!("acme/www", current.outs)).props as Record<string, unknown>;
    const issued = current.outs.acmeIssued as { accountKey: string; certificate: string };
    expect(refreshed.acmeIssued).to.deep.equal({ ...issued, privateKey: "" });
    expect(JSON.stringify(refreshed)).not.to.include(forged.privateKey.split("\n")[1]);
    const printed: string[] = [];
    const log = console.log;
    console.log = (line: string) => printed.push(line);
    try {
      expect((await serviceProvider.diff!("acme/www", refreshed, website("www", [WWW]))).changes).to.equal(true);
      const again = await serviceProvider.update!("acme/www", refreshed, website("www", [WWW]));
      const served = await getSecureSite(httpsListen, WWW, await pebble.root());
      expect(served.fingerprint).to.equal(again.outs.certificate.fingerprint);
      expect((again.outs.acmeIssued as { accountKey: string }).accountKey).to.equal(issued.accountKey);
    } finally {
      console.log = log;
    }
    expect(printed[0]).to.equal("WebService www: certificate issued by ACME");
  });

  it("a domain that does not point at the node fails naming it and the ACME problem, leaving nothing behind", async () => {
    await pebble.resolve("elsewhere.acme.test", "127.0.85.39");
    const failure = await serviceProvider.create!(website("elsewhere", ["elsewhere.acme.test"])).then(
      () => expect.fail("the create succeeded"),
      (error: Error) => error.message,
    );
    expect(failure).to.include("WebService elsewhere: ACME").and.include("for elsewhere.acme.test:");
    expect(failure).to.match(/connect|refused|Connection/i);
    expect(failure).not.to.include("PRIVATE KEY");
    expect((await client.listServices("acme")).map((service) => service.name)).to.deep.equal(["www"]);
  });
});
