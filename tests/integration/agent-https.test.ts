/**
 * HTTPS websites on real nginx: a primary (agent 127.0.82.1, nginx 127.0.82.2) serves two orgs'
 * uploaded certificates by SNI; a secondary (agent 127.0.82.3, nginx 127.0.82.4) gets the same
 * certificate by sync, is drifted when a certificate is forced on it, and the next sync puts the
 * primary's back. Keys never appear in answers; bad material is refused and changes nothing.
 */
import { expect } from "chai";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { SITES_FILE } from "../../agent/src/render/nginx/sites";
import { SITE_CHECK_PATH } from "../../agent/src/render/site-check";
import { AgentClient } from "../../provider/client";
import { syncOrg } from "../../provider/sync";
import { certificateSummary } from "../../wire";
import { type AgentProcess, startAgentProcess } from "../support/agent-process";
import { type IssuedCertificate, type TestCa, makeCa } from "../support/certificates";
import { type NginxProcess, nginxBinaryOrSkip, startNginx } from "../support/nginx";
import { freePort } from "../support/ports";
import { type SecureSiteResponse, getSecureSite } from "../support/http-get";

const TOKEN = "agent-https-test-token-0123456789ab";
const ACME = ["www.acme.test", "acme.test"];
const GLOBEX = ["www.globex.test"];

describe("HTTPS websites on real nginx (integration)", function () {
  this.timeout(120_000);
  let work: string;
  let ca: TestCa;
  let acmeCert: IssuedCertificate;
  let globexCert: IssuedCertificate;
  const nodes: Array<{ nginx: NginxProcess; agent: AgentProcess; client: AgentClient; https: string }> = [];
  const clientFor = (endpoint: string) =>
    nodes.find((node) => node.client.endpoint === endpoint)?.client ?? new AgentClient(endpoint, TOKEN);

  /** GET `/` over HTTPS from a node's nginx, asking for `servername` in the handshake. */
  const fetchHttps = (node: number, servername: string, host = servername): Promise<SecureSiteResponse> =>
    getSecureSite(nodes[node].https, servername, ca.certificate, { host });
  const fetchHttp = (node: number, host: string, at = "/"): Promise<{ status: number; location?: string }> =>
    new Promise((resolve, reject) => {
      const request = http.get(`${nodes[node].nginx.url}${at}`, { headers: { host }, timeout: 5000 }, (response) => {
        response.resume();
        resolve({ status: response.statusCode ?? 0, location: response.headers.location });
      });
      request.on("timeout", () => request.destroy(new Error("timed out")));
      request.on("error", reject);
    });
  const website = (domains: string[], cert: IssuedCertificate, extra: Record<string, unknown> = {}) => ({
    kind: "website" as const,
    domains,
    documentRoot: "www",
    tls: { certificate: cert.chain, privateKey: cert.privateKey },
    ...extra,
  });

  before(async function () {
    const bin = nginxBinaryOrSkip(this);
    work = fs.mkdtempSync(path.join(os.tmpdir(), "lbh-https-test-"));
    fs.chmodSync(work, 0o755);
    ca = makeCa(work, "https");
    acmeCert = ca.issue("acme", { names: ACME });
    globexCert = ca.issue("globex", { names: GLOBEX });
    const contentRoot = path.join(work, "content");
    for (const org of ["acme", "globex"]) {
      fs.mkdirSync(path.join(contentRoot, org, "www"), { recursive: true });
      fs.writeFileSync(path.join(contentRoot, org, "www", "index.html"), `<h1>${org}</h1>\n`);
    }
    for (const [agentHost, nginxHost] of [
      ["127.0.82.1", "127.0.82.2"],
      ["127.0.82.3", "127.0.82.4"],
    ]) {
      const confDir = path.join(work, `sites-${agentHost}`);
      fs.mkdirSync(confDir);
      const nginx = await startNginx({ bin, host: nginxHost, includeDirs: [confDir] });
      const httpsListen = `${nginxHost}:${await freePort(nginxHost)}`;
      const agent = await startAgentProcess({
        host: agentHost,
        token: TOKEN,
        contentRoot,
        nginxConfDir: confDir,
        httpListen: nginx.listen,
        nginx: { bin, mainConf: nginx.mainConf, prefix: nginx.prefix },
        extraArgs: ["--https-listen", httpsListen],
      });
      nodes.push({ nginx, agent, client: new AgentClient(agent.url, TOKEN, { retries: 0 }), https: httpsListen });
    }
  });

  after(async () => {
    for (const { agent, nginx } of nodes) {
      await agent.stop();
      agent.cleanup();
      await nginx.stop();
    }
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it("serves each org's certificate by SNI, with its content, redirect and HSTS as asked", async () => {
    const [primary] = nodes;
    await primary.client.putOrg("acme", { loadBalanced: true, secondaries: [nodes[1].client.endpoint] });
    await primary.client.putOrg("globex", {});
    const acme = await primary.client.putService("acme", "www", website(ACME, acmeCert, { hsts: true }));
    await primary.client.putService("globex", "www", website(GLOBEX, globexCert, { httpsRedirect: false }));

    const shown = acme.record;
    expect(shown.kind === "website" && shown.tls).to.deep.equal({
      ...certificateSummary(acmeCert.certificate),
      httpsRedirect: true,
      hsts: true,
    });
    const listed = JSON.stringify(await primary.client.listServices("acme"));
    expect(listed).not.to.include("PRIVATE KEY").and.not.to.include("BEGIN CERTIFICATE");

    for (const [host, cert, org] of [
      ["www.acme.test", acmeCert, "acme"],
      ["acme.test", acmeCert, "acme"],
      ["www.globex.test", globexCert, "globex"],
    ] as const) {
      const served = await fetchHttps(0, host);
      expect(served.status, primary.nginx.errorLog()).to.equal(200);
      expect(served.body).to.equal(`<h1>${org}</h1>\n`);
      expect(served.fingerprint).to.equal(certificateSummary(cert.certificate).fingerprint);
    }
    expect((await fetchHttps(0, "www.acme.test")).headers["strict-transport-security"]).to.equal("max-age=31536000");
    expect((await fetchHttps(0, "www.globex.test")).headers["strict-transport-security"]).to.equal(undefined);

    // Plain HTTP: redirected when asked, except the load balancer's check; globex kept HTTP.
    expect(await fetchHttp(0, "www.acme.test", "/a?b=1")).to.deep.equal({
      status: 301,
      location: "https://www.acme.test/a?b=1",
    });
    expect((await fetchHttp(0, "www.acme.test", SITE_CHECK_PATH)).status).to.equal(200);
    expect((await fetchHttp(0, "www.globex.test")).status).to.equal(200);

    // A connection made for one org cannot ask for the other's site; a name with no site gets no certificate.
    expect((await fetchHttps(0, "www.acme.test", "www.globex.test")).status).to.equal(421);
    const unknown = await fetchHttps(0, "other.test").then(
      () => "served",
      (error: Error) => error.message,
    );
    expect(unknown).not.to.equal("served");
  });

  it("serves a certificate only for its own site's domains, even one that also names another org's", async () => {
    const [primary] = nodes;
    const greedy = ca.issue("greedy", { names: [...ACME, ...GLOBEX] });
    await primary.client.putService("acme", "www", website(ACME, greedy, { hsts: true }));
    expect((await fetchHttps(0, "www.acme.test")).fingerprint).to.equal(
      certificateSummary(greedy.certificate).fingerprint,
    );
    const other = await fetchHttps(0, "www.globex.test");
    expect([other.fingerprint, other.body]).to.deep.equal([
      certificateSummary(globexCert.certificate).fingerprint,
      "<h1>globex</h1>\n",
    ]);
    await primary.client.putService("acme", "www", website(ACME, acmeCert, { hsts: true }));
  });

  it("keeps the sites file, which holds the keys, readable by its owner only", () => {
    const confDir = path.join(work, "sites-127.0.82.1");
    expect(fs.statSync(path.join(confDir, SITES_FILE)).mode & 0o777).to.equal(0o600);
  });

  it("refuses bad material with 400 on the field, quoting none of it, and changes nothing", async () => {
    const [primary] = nodes;
    const before = await primary.client.getOrg("acme");
    const wrongKey = website(ACME, acmeCert);
    wrongKey.tls.privateKey = globexCert.privateKey;
    const uncovered = website(["shop.acme.test"], acmeCert);
    for (const [what, body, field] of [
      ["another certificate's key", wrongKey, "tls.privateKey"],
      ["a certificate not covering the domain", uncovered, "tls.certificate"],
    ] as const) {
      const refused = await primary.client.putService("acme", "www", body).then(
        () => undefined,
        (error: { status?: number; message: string }) => error,
      );
      expect(refused?.status, what).to.equal(400);
      expect(refused?.message, what).to.include(`${field}: `);
      expect(refused?.message, what).not.to.include(globexCert.privateKey.split("\n")[1]);
    }
    const after = await primary.client.getOrg("acme");
    expect([after.generation, after.digest]).to.deep.equal([before.generation, before.digest]);
    expect((await fetchHttps(0, "www.acme.test")).fingerprint).to.equal(
      certificateSummary(acmeCert.certificate).fingerprint,
    );
  });

  it("syncs the certificate to the secondary, which serves the same one; a forced other certificate is drifted, then overwritten", async () => {
    const [primary, secondary] = nodes;
    const synced = await syncOrg(primary.client, "acme", clientFor);
    expect(synced.inSync, JSON.stringify(synced)).to.equal(true);
    const fingerprint = certificateSummary(acmeCert.certificate).fingerprint;
    const served = await fetchHttps(1, "www.acme.test");
    expect([served.status, served.fingerprint, served.body]).to.deep.equal([200, fingerprint, "<h1>acme</h1>\n"]);

    // A forced local edit of the certificate on the secondary: its copy is drifted...
    const forged = ca.issue("forged", { names: ACME });
    await secondary.client.putService("acme", "www", website(ACME, forged, { hsts: true }), true);
    expect((await fetchHttps(1, "www.acme.test")).fingerprint).to.equal(
      certificateSummary(forged.certificate).fingerprint,
    );
    expect((await secondary.client.getOrg("acme")).drifted).to.equal(true);
    // ...and the next sync puts the primary's back.
    const healed = await syncOrg(primary.client, "acme", clientFor);
    expect(healed.inSync, JSON.stringify(healed)).to.equal(true);
    expect((await fetchHttps(1, "www.acme.test")).fingerprint).to.equal(fingerprint);
  });
});
