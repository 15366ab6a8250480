/**
 * A full disk under an agent (127.0.35.1 primary, 127.0.35.2 secondary, each with its data folder
 * on a small tmpfs the test mounts): a write it cannot make is 507 insufficient_storage naming
 * the node, changes nothing and leaves SQLite intact; a sync to a full secondary says so (no
 * "once it is reachable": it was reachable); once space is freed, both converge.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import Database from "better-sqlite3";
import { expect } from "chai";
import { AgentClient } from "../../provider/client";
import { SyncError, syncOrg } from "../../provider/sync";
import { type AgentProcess, startAgentProcess } from "../support/agent-process";
import { requireTool } from "../support/requirements";

const TOKEN = "disk-full-test-token-0123456789abcdef";
const ORG = "acme";

/** Fills the file system holding `dir` to the last byte with one file, and returns its path. */
function fill(dir: string): string {
  const filler = path.join(dir, "filler");
  const fd = fs.openSync(filler, "w");
  const chunk = Buffer.alloc(64 * 1024);
  try {
    for (let i = 0; i < 10_000; i++) fs.writeSync(fd, chunk); // bounded: at most 640 MiB
    throw new Error(`${dir} did not fill up`);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOSPC") throw error;
    // The last partial chunk: down to what is left in the last page.
    for (let size = chunk.length / 2; size >= 1; size /= 2) {
      try {
        fs.writeSync(fd, chunk.subarray(0, size));
      } catch {
        // no room for this size: try a smaller one
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return filler;
}

describe("a full disk under an agent (integration, tmpfs)", function () {
  this.timeout(120_000);
  const mounts: string[] = [];
  /** Filler files, removed after each test even when it failed. */
  const fillers: string[] = [];
  let primary: AgentProcess;
  let secondary: AgentProcess;
  const client = (agent: AgentProcess) => new AgentClient(agent.url, TOKEN, { timeoutMs: 10_000, retries: 0 });

  /** A new tmpfs of 16 MiB, mounted by the test. */
  function smallDisk(): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lbh-disk-full-"));
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", dir], { timeout: 10_000 });
    mounts.push(dir);
    return dir;
  }

  before(async function () {
    requireTool(this, "root (to mount a tmpfs)", () => (process.getuid?.() === 0 ? true : undefined), "run as root");
    [primary, secondary] = await Promise.all(
      [
        { host: "127.0.35.1", name: "web1" },
        { host: "127.0.35.2", name: "web2" },
      ].map(({ host, name }) =>
        startAgentProcess({ host, name, token: TOKEN, dataDir: path.join(smallDisk(), "data") }),
      ),
    );
    await client(primary).putOrg(ORG, { secondaries: [secondary.url], loadBalanced: true });
  });

  afterEach(() => {
    for (const filler of fillers.splice(0)) fs.rmSync(filler, { force: true });
  });

  after(async function () {
    for (const agent of [primary, secondary]) {
      await agent?.stop();
      agent?.cleanup();
    }
    for (const dir of mounts) {
      execFileSync("umount", [dir], { timeout: 10_000 });
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  const integrity = (agent: AgentProcess) => {
    const db = new Database(path.join(agent.dataDir, "agent.db"), { readonly: true, fileMustExist: true });
    try {
      return db.pragma("integrity_check", { simple: true });
    } finally {
      db.close();
    }
  };

  it("a write on a full primary is 507 naming the node, changes nothing, and works once there is room", async function () {
    const filler = fill(path.dirname(primary.dataDir));
    fillers.push(filler);
    const before = await client(primary).getOrg(ORG);
    const failure = await client(primary)
      .putUser(ORG, "alice", { passwordHash: `$6$saltsalt$${"a".repeat(86)}`, displayName: "Alice" })
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    expect(failure).to.include({ status: 507, code: "insufficient_storage" });
    expect((failure as Error).message).to.include("disk full on web1");
    expect((await client(primary).getOrg(ORG)).generation).to.equal(before.generation);
    expect(await client(primary).listUsers(ORG)).to.deep.equal([]);
    expect(integrity(primary)).to.equal("ok");

    fs.rmSync(filler, { force: true });
    await client(primary).putUser(ORG, "alice", { passwordHash: `$6$saltsalt$${"a".repeat(86)}` });
    expect((await client(primary).listUsers(ORG)).map((user) => user.username)).to.deep.equal(["alice"]);
  });

  it("a sync to a full secondary says the disk is full there, not that it is unreachable; the next sync converges", async function () {
    const clientFor = (endpoint: string) => new AgentClient(endpoint, TOKEN);
    expect((await syncOrg(client(primary), ORG, clientFor)).inSync).to.equal(true);
    const filler = fill(path.dirname(secondary.dataDir));
    fillers.push(filler);
    // Enough changes that importing them needs more room than SQLite's write-ahead log holds already.
    for (let i = 0; i < 500; i++) {
      const username = `user${String(i).padStart(3, "0")}`;
      await client(primary).putUser(ORG, username, {
        passwordHash: `$6$saltsalt$${"b".repeat(86)}`,
        displayName: `User ${i} `.repeat(12).trim(),
      });
    }
    const failed = await syncOrg(client(primary), ORG, clientFor);
    expect(failed.inSync).to.equal(false);
    const message = new SyncError(failed).message;
    expect(message).to.include("disk full on web2").and.include("HTTP 507 insufficient_storage");
    expect(message).to.include("once the cause above is fixed").and.not.include("reachable");
    expect(integrity(secondary)).to.equal("ok");

    fs.rmSync(filler, { force: true });
    const healed = await syncOrg(client(primary), ORG, clientFor);
    expect(healed.inSync).to.equal(true);
    expect((await client(secondary).getOrg(ORG)).digest).to.equal((await client(primary).getOrg(ORG)).digest);
  });
});
