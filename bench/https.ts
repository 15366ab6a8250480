/**
 * `npm run bench:https`: HTTPS requests per second through the load balancer (HAProxy passing TLS
 * through by SNI) against straight to one node's nginx, with the same client (wrk, Debian `wrk`)
 * in the same run. Two hosting nodes (agent + nginx, 127.0.84.1-2) serve one org's website with
 * an uploaded certificate; the load balancer (agent + HAProxy) is 127.0.84.3.
 *
 * wrk takes the server name it sends (SNI) from the URL, so each run resolves the site's name to
 * the target through a private /etc/hosts (a mount namespace: `unshare -m`, root needed), never
 * the machine's. Runs alternate between the two targets, 3 each, for keep-alive connections and
 * for a new connection (a full TLS handshake) per request; the medians are printed, with a JSON
 * line holding every figure. Figures only: nothing is asserted.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { AgentClient } from "../provider/client";
import { routeOrg } from "../provider/balancer";
import { syncOrg } from "../provider/sync";
import { makeCa } from "../tests/support/certificates";
import { findHaproxy } from "../tests/support/haproxy";
import { type HostingNode, startHostingNode } from "../tests/support/hosting-node";
import { getSecureSite } from "../tests/support/http-get";
import { findNginx } from "../tests/support/nginx";

const TOKEN = "bench-https-token-0123456789abcdef";
const SITE = "www.bench.test";
const RUNS = 3;
const SECONDS = Number(process.env.SECONDS_PER_RUN ?? 5);
const CONNECTIONS = 16;

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

/** One wrk run against `address` ("ip:port") with the site's name resolving there: requests/s and errors. */
function wrk(work: string, address: string, newConnections: boolean): { rps: number; errors: number } {
  const [ip, port] = address.split(":");
  const hosts = path.join(work, "hosts");
  fs.writeFileSync(hosts, `127.0.0.1 localhost\n${ip} ${SITE}\n`);
  const args = ["-t2", `-c${CONNECTIONS}`, `-d${SECONDS}s`, ...(newConnections ? ["-H", "Connection: close"] : [])];
  const script = `mount --bind ${hosts} /etc/hosts && exec wrk ${args.map((a) => `'${a}'`).join(" ")} https://${SITE}:${port}/`;
  const output = execFileSync("unshare", ["-m", "sh", "-c", script], {
    encoding: "utf8",
    timeout: (SECONDS + 30) * 1000,
  });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(output)?.[1] ?? NaN);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(output)?.[1] ?? 0);
  // With "Connection: close" the server closing each connection is counted as a read error by wrk.
  const errors = non2xx + (socket ? Number(socket[1]) + Number(socket[3]) + Number(socket[4]) : 0);
  return { rps, errors };
}

async function main(): Promise<void> {
  const nginxBin = findNginx();
  const haproxyBin = findHaproxy();
  if (!nginxBin || !haproxyBin)
    throw new Error("bench:https needs nginx and haproxy (apt-get install -y nginx haproxy)");
  if (!fs.existsSync("/usr/bin/wrk")) throw new Error("bench:https needs wrk (apt-get install -y wrk)");
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "lbh-bench-https-"));
  fs.chmodSync(work, 0o755);
  const nodes: HostingNode[] = [];
  try {
    const cert = makeCa(work, "bench").issue("www", { names: [SITE] });
    const contentRoot = path.join(work, "nas");
    fs.mkdirSync(path.join(contentRoot, "bench", "www"), { recursive: true });
    fs.writeFileSync(path.join(contentRoot, "bench", "www", "index.html"), "<h1>bench</h1>\n".repeat(64));
    const common = { token: TOKEN, contentRoot };
    nodes.push(
      ...(await Promise.all([
        startHostingNode({ ...common, host: "127.0.84.1", name: "web-a", nginxBin }),
        startHostingNode({ ...common, host: "127.0.84.2", name: "web-b", nginxBin }),
        startHostingNode({ ...common, host: "127.0.84.3", name: "lb", haproxyBin }),
      ])),
    );
    const [primary, secondary, balancer] = nodes;
    const clientFor = (endpoint: string) => new AgentClient(endpoint, TOKEN, { retries: 0 });
    const client = clientFor(primary.url);
    await client.putOrg("bench", { loadBalanced: true, secondaries: [secondary.url] });
    await client.putService("bench", "www", {
      kind: "website",
      domains: [SITE],
      documentRoot: "www",
      tls: { certificate: cert.chain, privateKey: cert.privateKey },
    });
    await syncOrg(client, "bench", clientFor);
    await routeOrg(
      { name: "bench", primary: primary.url, loadBalancer: balancer.url },
      [primary.url, secondary.url],
      clientFor,
    );
    // Until both nodes pass their TLS checks (bounded): HAProxy takes a server in after 2.
    for (let i = 0, seen = new Set<string | undefined>(); i < 100 && seen.size < 2; i++) {
      seen.add((await getSecureSite(balancer.httpsListen, SITE, cert.chain).catch(() => undefined))?.servedBy);
      seen.delete(undefined);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }

    const figures: Record<string, { rps: number[]; errors: number }> = {};
    for (const newConnections of [false, true]) {
      for (let run = 0; run < RUNS; run++) {
        for (const [target, address] of [
          ["balancer", balancer.httpsListen],
          ["node", primary.httpsListen],
        ] as const) {
          const key = `${target}${newConnections ? " new connection each" : " keep-alive"}`;
          const result = wrk(work, address, newConnections);
          figures[key] ??= { rps: [], errors: 0 };
          figures[key].rps.push(result.rps);
          figures[key].errors += result.errors;
          console.log(`${key}, run ${run + 1}: ${result.rps.toFixed(0)} requests/s, ${result.errors} errors`);
        }
      }
    }
    const summary = Object.fromEntries(
      Object.entries(figures).map(([key, value]) => [
        key,
        { median: median(value.rps), runs: value.rps, errors: value.errors },
      ]),
    );
    for (const mode of ["keep-alive", "new connection each"]) {
      const lb = summary[`balancer ${mode}`].median;
      const node = summary[`node ${mode}`].median;
      console.log(
        `HTTPS ${mode}: through the load balancer ${lb.toFixed(0)} requests/s, straight to one node's nginx ` +
          `${node.toFixed(0)} requests/s (×${(lb / node).toFixed(2)}), median of ${RUNS}, wrk -c${CONNECTIONS} ${SECONDS}s`,
      );
    }
    console.log(JSON.stringify({ bench: "https", connections: CONNECTIONS, seconds: SECONDS, ...summary }));
  } finally {
    await Promise.allSettled(nodes.map((node) => node.stop()));
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((error: Error) => {
  console.error(error.message);
  process.exitCode = 1;
});
