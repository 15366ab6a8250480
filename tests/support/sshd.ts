/**
 * Test fixture: a real OpenSSH server (Debian `openssh-server`) of our own, standing in for bare
 * servers: its own host key and config, key-only authentication for one generated client key,
 * listening on the given loopback addresses (one "server" each), run in the foreground as our
 * child (no system service) and stopped by pid.
 *
 *   const sshd = await startSshd(this, { hosts: ["127.0.10.1", "127.0.10.2"] });
 *   // connection: { host: "127.0.10.1", port: sshd.port, user: sshd.user, privateKey: sshd.privateKey }
 *   await sshd.stop();
 *
 * Outside CI, a missing sshd skips the calling suite with the reason; with CI=true it fails.
 */
import { execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { canConnect, freePort } from "./ports";
import { reapWithTestRun } from "./processes";
import { requireTool } from "./requirements";

const SSHD = "/usr/sbin/sshd";

export interface SshdOptions {
  /** Loopback addresses sshd listens on, one per simulated server. */
  hosts: string[];
  /** Extra sshd_config lines, e.g. `SetEnv NAME=value` for every session. */
  extraConfig?: string[];
}

export interface Sshd {
  readonly port: number;
  /** The user the client key logs in as (the user running the tests). */
  readonly user: string;
  /** The client's private key (OpenSSH format). */
  readonly privateKey: string;
  /** The client's private key file (mode 0600). */
  readonly privateKeyFile: string;
  /** sshd's log (-e: to stderr). */
  log(): string;
  stop(): Promise<void>;
}

export async function startSshd(context: Mocha.Context, options: SshdOptions): Promise<Sshd> {
  requireTool(context, "sshd", () => (fs.existsSync(SSHD) ? SSHD : undefined), "apt-get install -y openssh-server");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lbh-sshd-"));
  const keygen = (file: string) =>
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", file], { timeout: 30_000 });
  keygen(path.join(dir, "host_key"));
  keygen(path.join(dir, "client_key"));
  fs.copyFileSync(path.join(dir, "client_key.pub"), path.join(dir, "authorized_keys"));
  // Debian's sshd refuses to start without its privilege separation folder.
  fs.mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });

  const port = await freePort(options.hosts[0]);
  const config = [
    ...options.hosts.map((host) => `ListenAddress ${host}:${port}`),
    `HostKey ${path.join(dir, "host_key")}`,
    `PidFile ${path.join(dir, "sshd.pid")}`,
    `AuthorizedKeysFile ${path.join(dir, "authorized_keys")}`,
    "PubkeyAuthentication yes",
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    "PermitRootLogin prohibit-password",
    "UsePAM no",
    "StrictModes no",
    "Subsystem sftp internal-sftp",
    ...(options.extraConfig ?? []),
  ];
  const configFile = path.join(dir, "sshd_config");
  fs.writeFileSync(configFile, `${config.join("\n")}\n`);

  const child = spawn(SSHD, ["-D", "-e", "-f", configFile], { stdio: ["ignore", "ignore", "pipe"] });
  reapWithTestRun(child);
  let log = "";
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (log += chunk));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };

  for (let attempt = 0; attempt < 100 && !(await canConnect(options.hosts[0], port)); attempt++) {
    if (child.exitCode !== null) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  if (!(await canConnect(options.hosts[0], port))) {
    await stop();
    throw new Error(`sshd did not listen on ${options.hosts[0]}:${port}: ${log}`);
  }
  return {
    port,
    user: os.userInfo().username,
    privateKey: fs.readFileSync(path.join(dir, "client_key"), "utf8"),
    privateKeyFile: path.join(dir, "client_key"),
    log: () => log,
    stop,
  };
}
