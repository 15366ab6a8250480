/**
 * ACME HTTP-01 answers on real nginx (agent 127.0.85.1, nginx 127.0.85.2): the agent writes the
 * key authorization into the website's document root, nginx serves it over plain HTTP although the
 * site redirects to HTTPS, and DELETE removes it. A tenant's symlinks never make the agent write
 * (or remove) outside the document root; malformed tokens and key authorizations get 400.
 */
import { expect } from "chai";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { AgentClient, AgentError } from "../../provider/client";
import { type AgentProcess, startAgentProcess } from "../support/agent-process";
import { makeCa } from "../support/certificates";
import { type NginxProcess, nginxBinaryOrSkip, startNginx } from "../support/nginx";
import { freePort } from "../support/ports";

const TOKEN = "agent-acme-challenge-token-0123456789";
const DOMAIN = "www.acme.test";
const THUMBPRINT = "A".repeat(43);
const CHALLENGE = "tok3n_-0123456789abcdefghijk";

describe("ACME HTTP-01 answers written by the agent, served by nginx (integration)", function () {
  this.timeout(120_000);
  let work: string;
  let documentRoot: string;
  let nginx: NginxProcess;
  let agent: AgentProcess;
  let client: AgentClient;

  const get = (at: string): Promise<{ status: number; body: string; location?: string }> =>
    new Promise((resolve, reject) => {
      const request = http.get(`${nginx.url}${at}`, { headers: { host: DOMAIN }, timeout: 5000 }, (response) => {
        let body = "";
        response.setEncoding("utf8");
        response.on("data", (chunk: string) => (body += chunk));
        response.on("end", () =>
          resolve({ status: response.statusCode ?? 0, body, location: response.headers.location }),
        );
      });
      request.on("timeout", () => request.destroy(new Error("timed out")));
      request.on("error", reject);
    });
  const refusal = (call: Promise<unknown>): Promise<AgentError> =>
    call.then(
      () => expect.fail("the agent accepted it"),
      (error: unknown) => {
        expect(error).to.be.instanceOf(AgentError);
        return error as AgentError;
      },
    );

  before(async function () {
    const bin = nginxBinaryOrSkip(this);
    work = fs.mkdtempSync(path.join(os.tmpdir(), "lbh-acme-challenge-test-"));
    fs.chmodSync(work, 0o755);
    const ca = makeCa(work, "acme-challenge");
    const cert = ca.issue("acme", { names: [DOMAIN] });
    const contentRoot = path.join(work, "content");
    documentRoot = path.join(contentRoot, "acme", "www");
    fs.mkdirSync(documentRoot, { recursive: true });
    fs.writeFileSync(path.join(documentRoot, "index.html"), "<h1>acme</h1>\n");
    const confDir = path.join(work, "sites");
    fs.mkdirSync(confDir);
    nginx = await startNginx({ bin, host: "127.0.85.2", includeDirs: [confDir] });
    agent = await startAgentProcess({
      host: "127.0.85.1",
      token: TOKEN,
      contentRoot,
      nginxConfDir: confDir,
      httpListen: nginx.listen,
      nginx: { bin, mainConf: nginx.mainConf, prefix: nginx.prefix },
      extraArgs: ["--https-listen", `127.0.85.2:${await freePort("127.0.85.2")}`],
    });
    client = new AgentClient(agent.url, TOKEN, { retries: 0 });
    await client.putOrg("acme", {});
    await client.putService("acme", "www", {
      kind: "website",
      domains: [DOMAIN],
      documentRoot: "www",
      tls: { certificate: cert.chain, privateKey: cert.privateKey },
    });
  });

  after(async () => {
    await agent?.stop();
    agent?.cleanup();
    await nginx?.stop();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it("serves the key authorization over plain HTTP (no HTTPS redirect) until it is removed", async () => {
    expect((await get("/")).status).to.equal(301); // the site redirects to HTTPS...
    await client.putAcmeChallenge("acme", "www", CHALLENGE, `${CHALLENGE}.${THUMBPRINT}`);
    const served = await get(`/.well-known/acme-challenge/${CHALLENGE}`);
    expect(served).to.include({ status: 200, body: `${CHALLENGE}.${THUMBPRINT}` }); // ...but not the challenge
    await client.putAcmeChallenge("acme", "www", CHALLENGE, `${CHALLENGE}.${"B".repeat(43)}`);
    expect((await get(`/.well-known/acme-challenge/${CHALLENGE}`)).body).to.equal(`${CHALLENGE}.${"B".repeat(43)}`);

    await client.deleteAcmeChallenge("acme", "www", CHALLENGE);
    expect((await get(`/.well-known/acme-challenge/${CHALLENGE}`)).status).to.equal(404);
    await client.deleteAcmeChallenge("acme", "www", CHALLENGE); // removing twice is fine
  });

  it("refuses malformed tokens and key authorizations with 400, an unknown website with 404", async () => {
    for (const [token, keyAuthorization] of [
      ["short", `short.${THUMBPRINT}`],
      ["..%2F..%2F..%2Fetc%2Fpasswd-aaaaaaaaaaaaaa", `x.${THUMBPRINT}`],
      [CHALLENGE, `${CHALLENGE}.tooShort`],
      [CHALLENGE, `${CHALLENGE}.${THUMBPRINT}\nserver { }`],
      [CHALLENGE, `other_token_0123456789abcdef.${THUMBPRINT}`],
    ]) {
      const error = await refusal(client.putAcmeChallenge("acme", "www", decodeURIComponent(token), keyAuthorization));
      expect(error.status, `${token} ${JSON.stringify(keyAuthorization)}`).to.equal(400);
    }
    expect(
      (await refusal(client.putAcmeChallenge("acme", "blog", CHALLENGE, `${CHALLENGE}.${THUMBPRINT}`))).status,
    ).to.equal(404);
    expect(fs.readdirSync(path.join(documentRoot, ".well-known", "acme-challenge"))).to.deep.equal([]);
  });

  it("never writes or removes through a tenant's symlink", async () => {
    const outside = path.join(work, "outside");
    fs.mkdirSync(outside);
    fs.writeFileSync(path.join(outside, CHALLENGE), "not the agent's\n");
    const challenges = path.join(documentRoot, ".well-known", "acme-challenge");

    // The token's name is a symlink to a file elsewhere: the answer replaces the link, not its target.
    fs.symlinkSync(path.join(outside, CHALLENGE), path.join(challenges, CHALLENGE));
    const error = await refusal(client.deleteAcmeChallenge("acme", "www", CHALLENGE));
    expect(error.status).to.equal(422);
    await client.putAcmeChallenge("acme", "www", CHALLENGE, `${CHALLENGE}.${THUMBPRINT}`);
    expect(fs.lstatSync(path.join(challenges, CHALLENGE)).isFile()).to.equal(true);
    expect(fs.readFileSync(path.join(outside, CHALLENGE), "utf8")).to.equal("not the agent's\n");
    await client.deleteAcmeChallenge("acme", "www", CHALLENGE);

    // The challenge folder is a symlink to a folder elsewhere: refused, nothing written there.
    fs.rmSync(challenges, { recursive: true });
    fs.symlinkSync(outside, challenges);
    for (const call of [
      () => client.putAcmeChallenge("acme", "www", CHALLENGE, `${CHALLENGE}.${THUMBPRINT}`),
      () => client.deleteAcmeChallenge("acme", "www", CHALLENGE),
    ]) {
      const refused = await refusal(call());
      expect(refused.status).to.equal(422);
      expect(refused.message).to.include("acme-challenge");
    }
    expect(fs.readdirSync(outside)).to.deep.equal([CHALLENGE]);
    expect(fs.readFileSync(path.join(outside, CHALLENGE), "utf8")).to.equal("not the agent's\n");
  });
});
