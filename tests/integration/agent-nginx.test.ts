/**
 * Real nginx: an agent (127.0.1.24) renders sites that a real nginx (127.0.1.25) serves, and a
 * configuration nginx rejects never replaces the running one. With CI=true a missing nginx fails
 * this suite; elsewhere it is skipped with the reason.
 */
import { expect } from "chai";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { SITES_FILE } from "../../agent/src/render/nginx/sites";
import { SITE_CHECK_PATH } from "../../agent/src/render/site-check";
import { orgStatusSchema } from "../../wire";
import { type AgentClient, type HttpAnswer, agentClient, call } from "../support/agent-http";
import { type AgentProcess, startAgentProcess } from "../support/agent-process";
import { type NginxProcess, nginxBinaryOrSkip, startNginx } from "../support/nginx";

describe("agent with a real nginx (integration)", function () {
  let nginx: NginxProcess | undefined;
  let agent: AgentProcess | undefined;
  let api: AgentClient;
  let work: string;
  let confDir: string;
  let contentRoot: string;

  const siteFiles = () =>
    Object.fromEntries(
      fs.readdirSync(confDir).map((file) => [file, fs.readFileSync(path.join(confDir, file), "utf8")]),
    );
  /** The server_name lines of the agent's sites file: one per site. */
  const serverNames = () => fs.readFileSync(path.join(confDir, SITES_FILE), "utf8").match(/server_name [^;]*;/g) ?? [];

  /** GET / for `host` on nginx. */
  const fetchSite = (host: string): Promise<HttpAnswer> =>
    call((nginx as NginxProcess).url, "GET", "/", { token: null, headers: { host } });

  /** Run a change that makes the agent reload nginx, and wait until only new workers are left. */
  async function reloading<T>(change: () => Promise<T>): Promise<T> {
    const before = nginx!.workerPids();
    const result = await change();
    await nginx!.waitForReload(before);
    return result;
  }

  before(async function () {
    const bin = nginxBinaryOrSkip(this);
    work = fs.mkdtempSync(path.join(os.tmpdir(), "lbh-nginx-test-"));
    fs.chmodSync(work, 0o755);
    confDir = path.join(work, "sites");
    contentRoot = path.join(work, "content");
    fs.mkdirSync(path.join(contentRoot, "acme", "www"), { recursive: true });
    fs.writeFileSync(path.join(contentRoot, "acme", "www", "index.html"), "<h1>acme</h1>\n");
    fs.mkdirSync(confDir);
    nginx = await startNginx({ bin, host: "127.0.1.25", includeDirs: [confDir] });
    agent = await startAgentProcess({
      host: "127.0.1.24",
      name: "web-1",
      contentRoot,
      nginxConfDir: confDir,
      httpListen: nginx.listen,
      nginx: { bin, mainConf: nginx.mainConf, prefix: nginx.prefix },
    });
    api = agentClient(agent.url, agent.token);
  });

  after(async function () {
    await agent?.stop();
    agent?.cleanup();
    await nginx?.stop();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it("serves a website service with the agent's X-Served-By header", async function () {
    expect((await api.put("/v1/orgs/acme", { displayName: "Acme" })).status).to.equal(201);
    const put = await reloading(() =>
      api.put("/v1/orgs/acme/services/www", {
        kind: "website",
        domains: ["www.acme.test", "acme.test"],
        documentRoot: "www",
      }),
    );
    expect(put.status, put.text).to.equal(201);
    for (const host of ["www.acme.test", "acme.test"]) {
      const answer = await fetchSite(host);
      expect(answer.status, nginx?.errorLog()).to.equal(200);
      expect(answer.text).to.equal("<h1>acme</h1>\n");
      expect(answer.headers["x-served-by"]).to.equal("web-1");
    }
    // A name nginx has no site for goes to the fixture's default server.
    const other = await fetchSite("other.test");
    expect(other.status).to.equal(404);
    expect(other.headers["x-served-by"]).to.equal(undefined);
  });

  it("answers a website write once nginx serves it: a request right after each of 20 answers gets the new site", async function () {
    /** Previous workers that still accept connections (not yet "worker process is shutting down"), and whether a new one runs. */
    const reloadState = (previous: number[]) => {
      const current = nginx!.workerPids();
      const title = (pid: number) => {
        try {
          return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ").trim();
        } catch {
          return "";
        }
      };
      const accepting = previous.filter((pid) => current.includes(pid) && title(pid).endsWith("worker process"));
      return { accepting, started: current.some((pid) => !previous.includes(pid)) };
    };
    const served: string[] = [];
    const states: string[] = [];
    for (let i = 0; i < 20; i++) {
      const previous = nginx!.workerPids();
      const answer = await api.put(`/v1/orgs/acme/services/live${i}`, {
        kind: "website",
        domains: [`live${i}.acme.test`],
        documentRoot: "www",
      });
      expect(answer.status, answer.text).to.equal(201);
      states.push(JSON.stringify(reloadState(previous)));
      const site = await fetchSite(`live${i}.acme.test`); // a new connection, the moment the write answered
      served.push(`${site.status} ${String(site.headers["x-served-by"])}`);
    }
    expect(served).to.deep.equal(Array.from({ length: 20 }, () => "200 web-1"));
    // Live as nginx defines it: a new worker runs and no old one accepts (reload-live.ts).
    expect(states).to.deep.equal(Array.from({ length: 20 }, () => JSON.stringify({ accepting: [], started: true })));
    for (let i = 0; i < 20; i++) expect((await api.delete(`/v1/orgs/acme/services/live${i}`)).status).to.equal(200);
  });

  it("answers a website write without waiting for an old worker that finishes a slow download", async function () {
    // 256 MiB (sparse): far more than the socket buffers, so the worker sending it waits on the client.
    const big = path.join(contentRoot, "acme", "www", "big.bin");
    fs.writeFileSync(big, "");
    fs.truncateSync(big, 256 * 1024 * 1024);
    const workers = nginx!.workerPids();
    // A client that reads the first bytes, then stops reading: the worker keeps the request in flight.
    const download = http.get({
      host: nginx!.host,
      port: nginx!.port,
      path: "/big.bin",
      agent: false,
      headers: { host: "www.acme.test" },
    });
    try {
      const response = await new Promise<http.IncomingMessage>((resolve, reject) => {
        download.once("response", resolve).once("error", reject);
      });
      expect(response.statusCode).to.equal(200);
      await new Promise((resolve) => response.once("data", resolve));
      response.pause();

      const answer = await api.put("/v1/orgs/acme/services/fresh", {
        kind: "website",
        domains: ["fresh.acme.test"],
        documentRoot: "www",
      });
      expect(answer.status, answer.text).to.equal(201);
      // The old worker still sends the download (nginx waits 60 s on a client that reads nothing,
      // more than the agent's 30 s bound), yet the write answered, and not by giving up on the reload.
      expect(
        workers.filter((pid) => nginx!.workerPids().includes(pid)),
        "the old worker",
      ).to.have.length(1);
      expect(agent!.log()).not.to.include("answering anyway");
      // The old worker, still running, takes no new connection: it would answer 404 (its sites lack "fresh").
      const served: string[] = [];
      for (let i = 0; i < 20; i++) {
        const fresh = await fetchSite("fresh.acme.test");
        served.push(`${fresh.status} ${String(fresh.headers["x-served-by"])}`);
      }
      expect(served).to.deep.equal(Array.from({ length: 20 }, () => "200 web-1"));
      expect(
        workers.filter((pid) => nginx!.workerPids().includes(pid)),
        "the old worker, after",
      ).to.have.length(1);
    } finally {
      download.destroy();
      fs.rmSync(big, { force: true });
    }
    await nginx!.waitForReload(workers); // the old worker leaves once its client is gone
    expect((await api.delete("/v1/orgs/acme/services/fresh")).status).to.equal(200);
  });

  it("refuses another org's website for a domain an org serves here: 409 domain_taken, and nginx keeps serving the owner", async function () {
    expect((await api.put("/v1/orgs/aaa", { displayName: "Aaa" })).status).to.equal(201);
    fs.mkdirSync(path.join(contentRoot, "aaa", "www"), { recursive: true });
    fs.writeFileSync(path.join(contentRoot, "aaa", "www", "index.html"), "<h1>hijacked</h1>\n");
    const files = siteFiles();
    const answer = await api.put("/v1/orgs/aaa/services/www", {
      kind: "website",
      domains: ["www.acme.test"],
      documentRoot: "www",
    });
    expect(answer.status, answer.text).to.equal(409);
    expect(answer.json).to.have.nested.property("error.code", "domain_taken");
    expect(answer.text).to.include("www.acme.test").and.not.include("acme/").and.not.include('"acme"');
    expect(siteFiles()).to.deep.equal(files);
    const served = await fetchSite("www.acme.test");
    expect(served.text).to.equal("<h1>acme</h1>\n");
    expect((await api.delete("/v1/orgs/aaa")).status).to.equal(200);
  });

  it("serves no dotfile or dot-folder but /.well-known/ (a tenant's .env and .git stay private)", async function () {
    const www = path.join(contentRoot, "acme", "www");
    fs.writeFileSync(path.join(www, ".env"), "SECRET=1\n");
    fs.mkdirSync(path.join(www, ".git"), { recursive: true });
    fs.writeFileSync(path.join(www, ".git", "config"), "[core]\n");
    fs.mkdirSync(path.join(www, "sub", ".hidden"), { recursive: true });
    fs.writeFileSync(path.join(www, "sub", ".hidden", "x.txt"), "hidden\n");
    fs.mkdirSync(path.join(www, ".well-known"), { recursive: true });
    fs.writeFileSync(path.join(www, ".well-known", "security.txt"), "Contact: mailto:sec@acme.test\n");
    const get = (urlPath: string) =>
      call((nginx as NginxProcess).url, "GET", urlPath, { token: null, headers: { host: "www.acme.test" } });
    for (const hidden of ["/.env", "/.git/config", "/.git/", "/sub/.hidden/x.txt", "/%2eenv"]) {
      const answer = await get(hidden);
      expect(answer.status, hidden).to.equal(404);
      expect(answer.text, hidden).to.not.include("SECRET").and.not.include("[core]").and.not.include("hidden");
    }
    const wellKnown = await get("/.well-known/security.txt");
    expect(wellKnown.status).to.equal(200);
    expect(wellKnown.text).to.include("Contact:");
  });

  it("never activates a configuration nginx rejects: 422, the previous files, the running site", async function () {
    const before = siteFiles();
    const workers = nginx!.workerPids();
    const status = orgStatusSchema.parse((await api.get("/v1/orgs/acme")).json);
    // A valid domain (243 characters) that overflows nginx's default server_names_hash_bucket_size.
    const long = Array.from({ length: 4 }, () => "a".repeat(60)).join(".");
    const answer = await api.put("/v1/orgs/acme/services/long", {
      kind: "website",
      domains: [long],
      documentRoot: "www",
    });
    expect(answer.status, answer.text).to.equal(422);
    expect(answer.json).to.have.nested.property("error.code", "nginx_rejected");
    expect((answer.json as { error: { message: string } }).error.message).to.match(
      /could not build (map|server_names)_hash/,
    );

    expect(siteFiles()).to.deep.equal(before);
    expect(nginx!.workerPids(), "nginx was not reloaded").to.deep.equal(workers);
    expect((await api.get("/v1/orgs/acme/services/long")).status).to.equal(404);
    expect(orgStatusSchema.parse((await api.get("/v1/orgs/acme")).json)).to.deep.equal(status);
    const test = spawnSync(nginx!.bin, ["-t", "-q", "-p", nginx!.prefix, "-c", nginx!.mainConf], { encoding: "utf8" });
    expect(test.status, test.stderr).to.equal(0);
    const site = await fetchSite("www.acme.test");
    expect(site.status).to.equal(200);
    expect(site.headers["x-served-by"]).to.equal("web-1");
  });

  it("commits concurrent site writes together: the one nginx rejects fails alone, each other answers once served", async function () {
    const long = Array.from({ length: 4 }, () => "a".repeat(60)).join(".");
    const valid = ["one", "two", "three", "four"];
    const put = (name: string, domain: string) =>
      api.put(`/v1/orgs/acme/services/${name}`, { kind: "website", domains: [domain], documentRoot: "www" });
    const results = await Promise.all([
      ...valid.map(async (name) => {
        const answer = await put(name, `${name}.acme.test`);
        // Checked the moment the write answered: the site it made must already be served.
        const site = await fetchSite(`${name}.acme.test`);
        return { name, status: answer.status, served: site.status, by: String(site.headers["x-served-by"]) };
      }),
      put("long", long).then((answer) => ({ name: "long", status: answer.status, served: 0, by: answer.text })),
    ]);
    expect(results.slice(0, valid.length)).to.deep.equal(
      valid.map((name) => ({ name, status: 201, served: 200, by: "web-1" })),
    );
    expect(results[valid.length].status, results[valid.length].by).to.equal(422);
    expect((await api.get("/v1/orgs/acme/services/long")).status).to.equal(404);
    expect(serverNames().sort()).to.deep.equal(
      [...valid.map((name) => `server_name ${name}.acme.test;`), "server_name www.acme.test acme.test;"].sort(),
    );
    for (const name of valid) expect((await api.delete(`/v1/orgs/acme/services/${name}`)).status).to.equal(200);
    expect(serverNames()).to.deep.equal(["server_name www.acme.test acme.test;"]);
  });

  it("stops serving a disabled service and serves it again when enabled", async function () {
    const body = { kind: "website", domains: ["www.acme.test", "acme.test"], documentRoot: "www" };
    expect((await reloading(() => api.put("/v1/orgs/acme/services/www", { ...body, enabled: false }))).status).to.equal(
      200,
    );
    expect(serverNames()).to.deep.equal([]);
    const gone = await fetchSite("www.acme.test");
    expect(gone.status).to.equal(404);
    expect(gone.headers["x-served-by"]).to.equal(undefined);

    expect((await reloading(() => api.put("/v1/orgs/acme/services/www", body))).status).to.equal(200);
    const back = await fetchSite("www.acme.test");
    expect(back.status).to.equal(200);
    expect(back.headers["x-served-by"]).to.equal("web-1");
  });

  it("re-renders the same configuration after a restart and keeps serving", async function () {
    const before = siteFiles();
    await agent!.restart();
    expect(siteFiles()).to.deep.equal(before);
    const site = await fetchSite("acme.test");
    expect(site.status).to.equal(200);
    expect(site.headers["x-served-by"]).to.equal("web-1");
  });

  it("removes an org's sites when the org is deleted", async function () {
    expect((await reloading(() => api.delete("/v1/orgs/acme"))).status).to.equal(200);
    expect(serverNames()).to.deep.equal([]);
    expect((await fetchSite("acme.test")).status).to.equal(404);
    expect(fs.existsSync(path.join(contentRoot, "acme", "www", "index.html"))).to.equal(true);
  });

  it("writes a site's check file once its document root appears (content uploaded later), after a restart too", async function () {
    this.timeout(60_000);
    const check = (host: string) =>
      call((nginx as NginxProcess).url, "GET", SITE_CHECK_PATH, { token: null, headers: { host } });
    /** Polls the check for up to 12 s (the agent retries every 5 s). */
    const checkAppears = async (host: string) => {
      for (const deadline = Date.now() + 12_000; Date.now() < deadline;) {
        if ((await check(host)).status === 200) return true;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      return false;
    };
    expect((await api.put("/v1/orgs/late", {})).status).to.equal(201);
    const website = (name: string) => ({ kind: "website", domains: [`${name}.late.test`], documentRoot: name });
    expect((await api.put("/v1/orgs/late/services/before", website("before"))).status).to.equal(201);
    expect((await api.put("/v1/orgs/late/services/after", website("after"))).status).to.equal(201);
    expect((await check("before.late.test")).status).to.equal(404);

    fs.mkdirSync(path.join(contentRoot, "late", "before"));
    expect(await checkAppears("before.late.test"), "written while the agent runs").to.equal(true);

    await agent!.restart();
    fs.mkdirSync(path.join(contentRoot, "late", "after"));
    expect(await checkAppears("after.late.test"), "written after a restart").to.equal(true);
    expect((await check("before.late.test")).text).to.equal("lbhosting late before\n");
  });
});
