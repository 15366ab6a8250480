/**
 * The agent as a process (127.0.1.14 – 127.0.1.17): start-up checks, clean stops, persistence
 * across restarts and crashes, re-rendering on start, concurrent writes, and HTTPS.
 */
import { expect } from "chai";
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { SITES_FILE } from "../../agent/src/render/nginx/sites";
import { orgStatusSchema } from "../../wire";
import { agentClient, call } from "../support/agent-http";
import { CLI, startAgentProcess } from "../support/agent-process";
import { orgAccounts } from "../support/puredb";
import { pdbOf } from "../support/pureftpd";

const HASH = execFileSync("openssl", ["passwd", "-6", "-salt", "concurrency", "same-password-for-all"], {
  encoding: "utf8",
}).trim();

/** Run the CLI expecting it to refuse to start; returns exit code and stderr. */
function refuse(args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null; stderr: string } {
  const data = fs.mkdtempSync(path.join(os.tmpdir(), "lbh-refuse-"));
  try {
    const baseEnv = { ...process.env, ...env };
    if (!("LBHOSTING_AGENT_TOKEN" in env)) delete baseEnv.LBHOSTING_AGENT_TOKEN;
    const result = spawnSync(process.execPath, [CLI, "agent", "--listen", "127.0.1.14:0", "--data", data, ...args], {
      env: baseEnv,
      encoding: "utf8",
      timeout: 10_000,
    });
    return { status: result.status, stderr: result.stderr };
  } finally {
    fs.rmSync(data, { recursive: true, force: true });
  }
}

describe("agent process (integration)", function () {
  describe("start-up", function () {
    it("refuses to start without a token, saying how to give one", function () {
      const result = refuse(["--name", "a"]);
      expect(result.status).to.equal(2);
      expect(result.stderr).to.include("--token-file").and.include("LBHOSTING_AGENT_TOKEN");
    });

    it("refuses a short token, an unsafe name and a bad listen address", function () {
      const token = { LBHOSTING_AGENT_TOKEN: "0123456789abcdef0123456789abcdef-ok" };
      expect(refuse(["--name", "a"], { LBHOSTING_AGENT_TOKEN: "short" }).stderr).to.include("at least 32");
      const badName = refuse(["--name", 'x";root /'], token);
      expect(badName.status).to.equal(2);
      expect(badName.stderr).to.include("agent name");
      expect(refuse(["--name", "a", "--http-listen", "80;evil"], token).stderr).to.include("--http-listen");
      const result = spawnSync(process.execPath, [CLI, "agent", "--listen", "nohost", "--data", "/tmp/x"], {
        encoding: "utf8",
        timeout: 10_000,
      });
      expect(result.status).to.not.equal(0);
      expect(result.stderr).to.include("HOST:PORT");
    });

    // Start-up time is measured by `npm run bench:agent`, not asserted here (tests never assert on wall-clock time).
    it("starts, answers, and stops with exit code 0 on SIGTERM and SIGINT", async function () {
      const agent = await startAgentProcess({ host: "127.0.1.14" });
      try {
        expect((await call(agent.url, "GET", "/v1/health")).status).to.equal(200);
        expect(await agent.stop("SIGTERM")).to.deep.equal({ code: 0, signal: null });
        await agent.restart();
        expect(await agent.stop("SIGINT")).to.deep.equal({ code: 0, signal: null });
      } finally {
        await agent.stop("SIGKILL");
        agent.cleanup();
      }
    });
  });

  describe("persistence", function () {
    it("keeps everything across a clean restart and a crash, and re-renders configuration on start", async function () {
      const agent = await startAgentProcess({ host: "127.0.1.15" });
      try {
        const api = agentClient(agent.url, agent.token);
        await api.put("/v1/orgs/acme", {
          displayName: "Acme",
          secondaries: ["http://127.0.0.9:1"],
          loadBalanced: true,
        });
        await api.put("/v1/orgs/acme/users/alice", { password: "alice-password", access: ["files"] });
        await api.put("/v1/orgs/acme/services/www", {
          kind: "website",
          domains: ["www.acme.test"],
          documentRoot: "www",
        });
        await api.put("/v1/orgs/acme/services/files", { kind: "ftp", rootPath: "." });
        const before = (await api.get("/v1/orgs/acme/snapshot")).json;
        const site = path.join(agent.nginxConfDir, SITES_FILE);
        const rendered = fs.readFileSync(site, "utf8");

        await agent.restart();
        expect((await api.get("/v1/orgs/acme/snapshot")).json).to.deep.equal(before);

        // A write acknowledged just before a crash survives it.
        await api.put("/v1/orgs/acme/users/bob", { password: "bob-password" });
        const acknowledged = (await api.get("/v1/orgs/acme/snapshot")).json;
        expect(await agent.stop("SIGKILL")).to.deep.equal({ code: null, signal: "SIGKILL" });
        // Lose the rendered files, as if the crash hit between commit and render.
        fs.rmSync(site);
        fs.rmSync(pdbOf(agent.dataDir));
        // A site file of the one-file-per-site layout (agents before lbh-sites.conf) goes too.
        fs.writeFileSync(path.join(agent.nginxConfDir, "lbh.gone.www.conf"), "# an org that no longer exists\n");
        await agent.restart();
        expect((await api.get("/v1/orgs/acme/snapshot")).json).to.deep.equal(acknowledged);
        expect(fs.readFileSync(site, "utf8")).to.equal(rendered);
        expect(orgAccounts(agent.dataDir, "acme")).to.include("alice@files.acme:");
        expect(fs.existsSync(path.join(agent.nginxConfDir, "lbh.gone.www.conf"))).to.equal(false);
      } finally {
        await agent.stop();
        agent.cleanup();
      }
    });
  });

  describe("concurrency", function () {
    it("turns 50 concurrent writes into 50 consecutive generations with a deterministic digest", async function () {
      const [first, second] = await Promise.all([
        startAgentProcess({ host: "127.0.1.16" }),
        startAgentProcess({ host: "127.0.1.17" }),
      ]);
      try {
        const names = Array.from({ length: 50 }, (_, i) => `user${String(i).padStart(2, "0")}`);
        const body = (name: string) => ({ passwordHash: HASH, displayName: `User ${name}`, access: ["www"] });
        const one = agentClient(first.url, first.token);
        await one.put("/v1/orgs/acme", { displayName: "Acme" });
        const answers = await Promise.all(names.map((name) => one.put(`/v1/orgs/acme/users/${name}`, body(name))));
        // Each write's own log entry; the org's generation it reports may be later (writes that
        // arrive together commit together, and each reports the org after all of them).
        const changeOf = (answer: (typeof answers)[number]) =>
          JSON.parse(Buffer.from(String(answer.headers["x-lbhosting-change"]), "base64url").toString("utf8")) as {
            generation: number;
          };
        const generations = answers.map((answer) => changeOf(answer).generation).sort((a, b) => a - b);
        expect(generations).to.deep.equal(Array.from({ length: 50 }, (_, i) => i + 2));
        for (const answer of answers) {
          expect(Number(answer.headers["x-lbhosting-generation"])).to.be.at.least(changeOf(answer).generation);
        }
        const log = (await one.get("/v1/orgs/acme/changes?since=1")).json as { changes: Array<{ generation: number }> };
        expect(log.changes.map((change) => change.generation)).to.deep.equal(generations);
        const status = orgStatusSchema.parse((await one.get("/v1/orgs/acme")).json);
        expect(status.generation).to.equal(51);

        // The same writes one by one, in reverse order, on another agent: the same digest.
        const two = agentClient(second.url, second.token);
        await two.put("/v1/orgs/acme", { displayName: "Acme" });
        for (const name of [...names].reverse()) await two.put(`/v1/orgs/acme/users/${name}`, body(name));
        expect(orgStatusSchema.parse((await two.get("/v1/orgs/acme")).json).digest).to.equal(status.digest);
      } finally {
        await Promise.all([first.stop(), second.stop()]);
        first.cleanup();
        second.cleanup();
      }
    });
  });

  describe("HTTPS", function () {
    it("serves the API over TLS with --tls-cert / --tls-key", async function () {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lbh-tls-"));
      const [certFile, keyFile] = [path.join(dir, "cert.pem"), path.join(dir, "key.pem")];
      execFileSync(
        "openssl",
        [
          ...["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.1.14"],
          ...["-keyout", keyFile, "-out", certFile],
        ],
        { stdio: "ignore" },
      );
      const agent = await startAgentProcess({ host: "127.0.1.14", tls: { certFile, keyFile } });
      try {
        expect(agent.url).to.match(/^https:\/\/127\.0\.1\.14:\d+$/);
        expect((await call(agent.url, "GET", "/v1/health")).json).to.have.property("name", agent.name);
        expect((await call(agent.url, "GET", "/v1/orgs", { token: agent.token })).json).to.deep.equal({ orgs: [] });
      } finally {
        await agent.stop();
        agent.cleanup();
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
