/**
 * Agent benchmark (prints figures, asserts nothing): user upserts per second and p50/p99 latency
 * against one agent process on loopback, and the size of a one-user delta against a full snapshot
 * of an org with 1,000 users.
 *
 *   node dist/bench/agent.js [--duration SECONDS] [--concurrency N]
 *   (or BENCH_DURATION_S / BENCH_CONCURRENCY; default 30 s in total, concurrency 4)
 *
 * The time is split between upserts carrying a plaintext password (the agent hashes it: crypt
 * SHA-512, 5000 rounds) and upserts carrying a ready passwordHash (the agent's own overhead).
 * Then, in this process, the FTP round a user write waits for (accounts of 8 users rendered and
 * the node's PDB written) in orgs of 1,000 and 3,000 accounts.
 * To profile the agent: LBHOSTING_AGENT_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof".
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ContentRoot } from "../agent/src/render/content";
import { FtpFiles } from "../agent/src/render/ftp/accounts";
import type { UserRecord } from "../wire";
import { agentClient, type AgentClient } from "../tests/support/agent-http";
import { startAgentProcess } from "../tests/support/agent-process";
import { processCpu } from "./cpu";

const HASH = "$6$benchsalt$" + "x".repeat(86);
const MAX_OPERATIONS = 1_000_000;

function option(flag: string, env: string, fallback: number): number {
  const index = process.argv.indexOf(flag);
  const raw = index >= 0 ? process.argv[index + 1] : process.env[env];
  const value = raw === undefined ? fallback : Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${flag} / ${env} must be a positive number`);
  return value;
}

const percentile = (sorted: number[], p: number): number =>
  sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

interface PhaseResult {
  operations: number;
  seconds: number;
  perSecond: number;
  p50: number;
  p99: number;
  /** The agent's CPU milliseconds per upsert (its threads and the processes it waited for). */
  cpuMsPerUpsert: number;
}

/** Upsert distinct users with `workers` concurrent clients until `seconds` pass. */
async function upserts(
  agentPid: number,
  api: AgentClient,
  org: string,
  seconds: number,
  workers: number,
  body: (i: number) => object,
): Promise<PhaseResult> {
  const latencies: number[] = [];
  const cpuBefore = processCpu(agentPid);
  const started = performance.now();
  const deadline = started + seconds * 1000;
  let next = 0;
  const worker = async () => {
    while (performance.now() < deadline && next < MAX_OPERATIONS) {
      const i = next++;
      const begin = performance.now();
      const answer = await api.put(`/v1/orgs/${org}/users/u${i}`, body(i));
      if (answer.status !== 201 && answer.status !== 200) throw new Error(`upsert failed: ${answer.text}`);
      latencies.push(performance.now() - begin);
    }
  };
  await Promise.all(Array.from({ length: workers }, worker));
  const elapsed = (performance.now() - started) / 1000;
  const cpu = processCpu(agentPid) - cpuBefore;
  latencies.sort((a, b) => a - b);
  return {
    cpuMsPerUpsert: (1000 * cpu) / Math.max(1, latencies.length),
    operations: latencies.length,
    seconds: elapsed,
    perSecond: latencies.length / elapsed,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
  };
}

const PURE_PW = "/usr/bin/pure-pw";
/** The org's Unix id: the agent's own, so its folders need no chown (a bench can run unprivileged). */
const ORG_UNIX_ID = process.getuid?.() || 200_000;

/** Milliseconds per FTP round of 8 user writes once the org holds `accounts` accounts (median of the last 20). */
async function ftpRoundMs(accounts: number): Promise<number> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lbh-bench-ftp-"));
  try {
    fs.mkdirSync(path.join(dir, "content"));
    const files = new FtpFiles({
      dir: path.join(dir, "ftp"),
      // Folders owned as on a serving node (the org's id, a web group): each round checks them.
      content: new ContentRoot(path.join(dir, "content"), process.getgid?.() ?? 0),
      readonlyIds: { uid: 65534, gid: 65534 },
      purePw: fs.existsSync(PURE_PW) ? PURE_PW : undefined,
      warn: (msg, fields) => console.log(`ftp warning: ${msg} ${JSON.stringify(fields)}`),
    });
    const user = (i: number): UserRecord => ({
      username: `u${i}`,
      passwordHash: HASH,
      displayName: "",
      email: "",
      enabled: true,
      access: ["files"],
      managedBy: "",
    });
    await files.render(
      "big",
      ORG_UNIX_ID,
      [{ name: "files", kind: "ftp", enabled: true, rootPath: "files", writable: false, managedBy: "" }],
      () => [],
    );
    await files.publish();
    const rounds: number[] = [];
    for (let first = 0; first < accounts; first += 8) {
      const started = performance.now();
      await files.renderUsers(
        "big",
        Array.from({ length: 8 }, (_, k) => [`u${first + k}`, user(first + k)]),
      );
      await files.publish();
      rounds.push(performance.now() - started);
    }
    return percentile(
      rounds.slice(-20).sort((a, b) => a - b),
      50,
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const duration = option("--duration", "BENCH_DURATION_S", 30);
  const concurrency = Math.round(option("--concurrency", "BENCH_CONCURRENCY", 4));
  const agent = await startAgentProcess({ host: "127.0.60.40", name: "bench" });
  try {
    const api = agentClient(agent.url, agent.token, { keepAlive: true });
    const print = (label: string, result: PhaseResult) =>
      console.log(
        `${label}: ${result.operations} upserts in ${result.seconds.toFixed(1)} s = ${result.perSecond.toFixed(0)}/s, ` +
          `p50 ${result.p50.toFixed(2)} ms, p99 ${result.p99.toFixed(2)} ms (concurrency ${concurrency}); ` +
          `agent CPU ${result.cpuMsPerUpsert.toFixed(2)} ms per upsert; load ${os
            .loadavg()
            .map((n) => n.toFixed(2))
            .join(" ")}`,
      );

    await api.put("/v1/orgs/plain", {});
    const plain = await upserts(agent.pid, api, "plain", duration / 2, concurrency, (i) => ({
      password: `password-${i}`,
      displayName: `User ${i}`,
    }));
    print("upserts with plaintext password", plain);

    await api.put("/v1/orgs/hashed", {});
    const hashed = await upserts(agent.pid, api, "hashed", duration / 2, concurrency, (i) => ({
      passwordHash: HASH,
      displayName: `User ${i}`,
    }));
    print("upserts with passwordHash      ", hashed);

    await api.put("/v1/orgs/big", {});
    for (let i = 0; i < 1000; i++) {
      await api.put(`/v1/orgs/big/users/u${String(i).padStart(4, "0")}`, {
        passwordHash: HASH,
        displayName: `User ${i}`,
        email: `user${i}@example.com`,
        access: ["www", "files"],
      });
    }
    const snapshot = await api.get("/v1/orgs/big/snapshot");
    const generation = (snapshot.json as { generation: number }).generation;
    await api.put("/v1/orgs/big/users/u0500", {
      passwordHash: HASH,
      displayName: "Changed",
      email: "user500@example.com",
      access: ["www", "files"],
    });
    const delta = await api.get(`/v1/orgs/big/changes?since=${generation}`);
    const snapshotBytes = Buffer.byteLength(snapshot.text);
    const deltaBytes = Buffer.byteLength(delta.text);
    console.log(
      `org with 1,000 users: full snapshot ${snapshotBytes} bytes, one-user delta ${deltaBytes} bytes ` +
        `(${(snapshotBytes / deltaBytes).toFixed(0)}x smaller)`,
    );
    const ftpRounds = { 1000: await ftpRoundMs(1000), 3000: await ftpRoundMs(3000) };
    console.log(
      `FTP round of 8 user writes (in-process, PDB built): ` +
        `${ftpRounds[1000].toFixed(1)} ms at 1,000 accounts, ${ftpRounds[3000].toFixed(1)} ms at 3,000`,
    );
    console.log(
      JSON.stringify({
        durationS: duration,
        concurrency,
        plaintext: plain,
        passwordHash: hashed,
        snapshotBytes,
        deltaBytes,
        ftpRoundMs: ftpRounds,
        agentStartMs: agent.startMs,
      }),
    );
  } finally {
    await agent.stop();
    agent.cleanup();
  }
}

main().catch((error: Error) => {
  console.error(error.message);
  process.exit(1);
});
