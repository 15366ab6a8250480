/**
 * Test fixture: a real HAProxy (the Debian package) in master-worker mode on a loopback address,
 * as an operator runs it for a load-balancer agent: a main configuration with the global section
 * (a stats socket exposing its listeners, for seamless reloads), the agent's own file after it,
 * and the master CLI socket the agent drives. It runs in the foreground as our child, stopped by pid.
 *
 *   const bin = haproxyBinaryOrSkip(this);                 // in a mocha before()
 *   const lb = await startHaproxy({ bin, host: "127.0.40.3", agentName: "lb" });
 *   // agent: --haproxy-bin lb.bin --haproxy-main-conf lb.mainConf --haproxy-conf lb.confFile
 *   //        --haproxy-master-socket lb.masterSocket --http-listen lb.listen
 *   await lb.stop();
 */
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { hostMapFile, renderHaproxy } from "../../agent/src/render/haproxy/config";
import { HaproxyControl } from "../../agent/src/render/haproxy/control";
import { freePort } from "./ports";
import { childPids, findBinary, spawnServer, stopProcessTree } from "./processes";
import { requireTool } from "./requirements";

/** $HAPROXY_BIN, /usr/sbin/haproxy, or haproxy on PATH; undefined when not installed. */
export const findHaproxy = (): string | undefined => findBinary("HAPROXY_BIN", "haproxy", ["/usr/sbin/haproxy"]);

/** The haproxy binary for a load-balancer suite: found, or skip (outside CI) / throw (CI=true). */
export const haproxyBinaryOrSkip = (context: Mocha.Context): string =>
  requireTool(context, "haproxy", findHaproxy, "apt-get install -y haproxy, or set HAPROXY_BIN");

export interface HaproxyOptions {
  bin: string;
  /** Loopback address of the load balancer: its web frontend, FTP frontends and passive ports. */
  host: string;
  /** The agent's name, for the initial file (the agent rewrites it the same on start). */
  agentName: string;
}

export interface HaproxyProcess {
  readonly bin: string;
  readonly host: string;
  /** "host:port" of the web frontend: the agent's --http-listen. */
  readonly listen: string;
  /** "http://host:port". */
  readonly url: string;
  readonly mainConf: string;
  /** The file the agent writes (--haproxy-conf). */
  readonly confFile: string;
  readonly masterSocket: string;
  /** The master's pid. */
  readonly pid: number;
  /** The master CLI, for assertions on workers and stats. */
  readonly control: HaproxyControl;
  /** What HAProxy printed so far. */
  output(): string;
  /** pids of the workers (current and old). */
  workerPids(): number[];
  /** SIGTERM (SIGKILL of the master and its workers after 5 s), then remove the folder. */
  stop(): Promise<void>;
}

function answers(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const client = net.createConnection(socket);
    let text = "";
    client.setTimeout(1000, () => client.destroy());
    client.on("connect", () => client.end("show proc\n"));
    client.on("data", (chunk) => (text += chunk.toString()));
    client.on("error", () => resolve(false));
    client.on("close", () => resolve(/# workers\n\d+/.test(text)));
  });
}

export async function startHaproxy(options: HaproxyOptions): Promise<HaproxyProcess> {
  const port = await freePort(options.host);
  const listen = `${options.host}:${port}`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lbh-haproxy-"));
  const mainConf = path.join(dir, "haproxy.cfg");
  const confFile = path.join(dir, "lbhosting.cfg");
  const masterSocket = path.join(dir, "master.sock");
  fs.writeFileSync(
    mainConf,
    [
      "global",
      `    stats socket ${path.join(dir, "stats.sock")} mode 600 level admin expose-fd listeners`,
      "    stats timeout 30s",
      "",
    ].join("\n"),
  );
  fs.writeFileSync(hostMapFile(confFile), "");
  fs.writeFileSync(confFile, renderHaproxy(options.agentName, { http: listen }, [], hostMapFile(confFile)));
  const args = ["-W", "-db", "-S", `${masterSocket},mode,600`, "-f", mainConf, "-f", confFile];
  let started: Awaited<ReturnType<typeof spawnServer>>;
  try {
    started = await spawnServer(options.bin, args, `haproxy on ${listen}`, () => answers(masterSocket));
  } catch (error) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const { child, output } = started;
  const pid = child.pid as number;
  return {
    bin: options.bin,
    host: options.host,
    listen,
    url: `http://${listen}`,
    mainConf,
    confFile,
    masterSocket,
    pid,
    control: new HaproxyControl({ bin: options.bin, mainConf, masterSocket }),
    output,
    workerPids: () => childPids(pid),
    async stop() {
      await stopProcessTree(child, "SIGTERM");
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
