/**
 * `npm run bench:up` — issue 4's measurements, printed, never asserted:
 *  - `pulumi up` wall time for 1 org + 100 users + 10 services on 2 secondaries, against the same
 *    number of no-op dynamic resources through the same CLI (the floor), in the same run;
 *  - how many syncs (delta and snapshot) that `up` performed;
 *  - bytes of the serialized `__provider` per resource in the state.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { LoadBalancedOrganization, OrgUser, WebService } from "../sdk";
import { startAgentProcess, type AgentProcess } from "../tests/support/agent-process";
import { createTestStack, ensurePulumi, type TestStack } from "../tests/support/pulumi";

const TOKEN = "bench-agent-token-0123456789abcdef";
const USERS = Number(process.env.BENCH_USERS ?? 100);
const SERVICES = Number(process.env.BENCH_SERVICES ?? 10);

class Noop extends pulumi.dynamic.Resource {
  constructor(name: string) {
    super({ create: async () => ({ id: name, outs: {} }) }, name, {}, {});
  }
}

async function timedUp(stack: TestStack): Promise<number> {
  const started = process.hrtime.bigint();
  const result = await stack.stack.up();
  if (result.summary.result !== "succeeded") throw new Error(`up ${result.summary.result}`);
  return Number(process.hrtime.bigint() - started) / 1e9;
}

async function main(): Promise<void> {
  const bin = ensurePulumi();
  if (!bin) throw new Error("no Pulumi CLI: run scripts/ensure-pulumi.sh");
  const agents: AgentProcess[] = await Promise.all(
    ["127.0.5.1", "127.0.5.2", "127.0.5.3"].map((host) => startAgentProcess({ host, token: TOKEN })),
  );
  const [primary, ...secondaries] = agents;
  const stacks: TestStack[] = [];
  try {
    const hosting = await createTestStack(bin, {
      projectName: "bench-hosting",
      config: { "lbhosting:token": { value: TOKEN, secret: true } },
      program: async () => {
        const org = new LoadBalancedOrganization("org", {
          name: "bench",
          primary: primary.url,
          secondaries: secondaries.map((agent) => agent.url),
          loadBalanced: true,
        });
        for (let i = 0; i < USERS; i++) {
          new OrgUser(`user${i}`, { organization: org, username: `user${i}`, password: `password-${i}-bench` });
        }
        for (let i = 0; i < SERVICES; i++) {
          new WebService(`site${i}`, {
            organization: org,
            name: `site${i}`,
            kind: "website",
            domains: [`site${i}.bench.test`],
            documentRoot: `site${i}`,
          });
        }
        return { inSync: org.inSync };
      },
    });
    const floor = await createTestStack(bin, {
      projectName: "bench-floor",
      program: async () => {
        for (let i = 0; i < 1 + USERS + SERVICES; i++) new Noop(`noop${i}`);
      },
    });
    stacks.push(hosting, floor);
    const syncLog = path.join(hosting.root, "sync.log");
    process.env.LBHOSTING_SYNC_LOG = syncLog;

    const floorSeconds = await timedUp(floor);
    const hostingSeconds = await timedUp(hosting);
    const lines = fs.readFileSync(syncLog, "utf8");
    const count = (pattern: RegExp) => (lines.match(pattern) ?? []).length;

    const state = (await hosting.exportState()) as { resources: { type: string; inputs?: { __provider?: string } }[] };
    const providerBytes = new Map<string, number>();
    for (const resource of state.resources) {
      if (resource.inputs?.__provider) providerBytes.set(resource.type, resource.inputs.__provider.length);
    }

    console.log(`resources: 1 org + ${USERS} users + ${SERVICES} services, 2 secondaries`);
    console.log(`pulumi up, hosting stack:        ${hostingSeconds.toFixed(1)} s`);
    console.log(`pulumi up, ${1 + USERS + SERVICES} no-op dynamic resources: ${floorSeconds.toFixed(1)} s (the floor)`);
    console.log(
      `syncs: ${count(/: delta /g)} delta and ${count(/: snapshot /g)} snapshot transfers, ` +
        `${count(/: in sync at /g)} secondaries found already in sync`,
    );
    for (const [type, bytes] of providerBytes) console.log(`__provider bytes, ${type}: ${bytes}`);

    await hosting.stack.destroy();
    await floor.stack.destroy();
  } finally {
    delete process.env.LBHOSTING_SYNC_LOG;
    for (const stack of stacks) stack.cleanup();
    for (const agent of agents) {
      await agent.stop();
      agent.cleanup();
    }
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
