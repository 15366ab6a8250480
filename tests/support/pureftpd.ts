/**
 * Test fixture: a real pure-ftpd (the Debian package) on its own loopback address, with its own
 * passive port range, serving the virtual users of one agent's PureDB. It runs in the foreground
 * as our child, so it is stopped by pid; `ftpTry` drives it with curl.
 *
 *   const bins = pureFtpdOrSkip(this);                    // in a mocha before()
 *   // agent: --pure-pw-bin bins.purePw --content-root DIR (each org's accounts run as its own id)
 *   const ftp = await startPureFtpd({ bin: bins.pureFtpd, host: "127.0.7.1", pdb: pdbOf(agent.dataDir) });
 *   const tried = await ftpTry({ url: ftp.url, user: "alice@files.acme", password });
 *   await ftp.stop();
 *
 * With `tls`, pure-ftpd serves explicit FTPS with the given certificate (`-2 cert,key`): `accept`
 * is `-Y 1`, `require` is `-Y 3` (cleartext logins and data connections refused), as
 * docs/setup-node.md runs it.
 *
 * Outside CI, a missing pure-ftpd, pure-pw or curl (or not running as root, which pure-ftpd needs
 * to chroot and switch uids) skips the calling suite with the reason; with CI=true it fails.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { ftpAuthSocketOf } from "../../agent/src/main";
import { PDB_FILE } from "../../agent/src/render/ftp/accounts";
import type { FtpTls } from "../../wire";
import { freePort } from "./ports";
import { findBinary, spawnServer, stopProcessTree } from "./processes";
import { requireTool } from "./requirements";

/** curl's exit code when the server refuses the login (530). */
export const CURL_LOGIN_DENIED = 67;
/** curl's exit code when the upload is refused (e.g. 553, no permission). */
export const CURL_UPLOAD_FAILED = 25;

export interface FtpBinaries {
  pureFtpd: string;
  purePw: string;
  curl: string;
}

/** pure-ftpd, pure-pw and curl when all are installed and we run as root (needed to chroot), else undefined. */
export function findFtpBinaries(): FtpBinaries | undefined {
  const pureFtpd = findBinary("PURE_FTPD_BIN", "pure-ftpd", ["/usr/sbin/pure-ftpd"]);
  const purePw = findBinary("PURE_PW_BIN", "pure-pw", ["/usr/bin/pure-pw"]);
  const curl = findBinary("CURL_BIN", "curl", ["/usr/bin/curl"]);
  return pureFtpd && purePw && curl && process.getuid?.() === 0 ? { pureFtpd, purePw, curl } : undefined;
}

/** The binaries for an FTP suite: found, or skip (outside CI) / throw (CI=true) with the reason. */
export function pureFtpdOrSkip(context: Mocha.Context): FtpBinaries {
  return process.getuid?.() === 0
    ? requireTool(context, "pure-ftpd, pure-pw or curl", findFtpBinaries, "apt-get install -y pure-ftpd curl")
    : requireTool(
        context,
        "root",
        findFtpBinaries,
        "pure-ftpd must run as root to chroot and switch to the accounts' uids",
      );
}

/**
 * 100 passive ports from 30000 + 100 × (last octet of `host` mod 20): below the ephemeral range,
 * and distinct for nodes whose last octets differ (a load balancer routes data connections by port).
 */
export function passivePortsOf(host: string): [number, number] {
  const base = 30000 + 100 * (Number(host.split(".").pop()) % 20);
  return [base, base + 99];
}

/** The PDB an agent with `--pure-pw-bin` builds under its data folder. */
export const pdbOf = (agentDataDir: string): string => path.join(agentDataDir, "ftp", PDB_FILE);

/** Where pure-ftpd finds an agent's accounts: its extauth socket first, its PDB while it is down. */
export const ftpAuthOf = (agentDataDir: string): { authSocket: string; pdb: string } => ({
  authSocket: ftpAuthSocketOf(agentDataDir),
  pdb: pdbOf(agentDataDir),
});

/** Resolves true once something on host:port greets with FTP's "220". */
function greets(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000);
    socket.once("data", (chunk) => done(chunk.toString("latin1").startsWith("220")));
    socket.once("error", () => done(false));
    socket.once("timeout", () => done(false));
  });
}

/** pure-ftpd's `-Y` for each FTPS mode of the agent's `--ftp-tls`. */
const PURE_FTPD_TLS_LEVEL: Record<FtpTls, number> = { off: 0, accept: 1, require: 3 };

/** A node's FTPS: the agent's `--ftp-tls` mode and the PEM files pure-ftpd gets (`-2 cert,key`). */
export interface FtpTlsSetup {
  mode: FtpTls;
  certificateFile: string;
  keyFile: string;
}

export interface PureFtpdOptions {
  bin: string;
  /** Loopback address for control and passive data connections. */
  host: string;
  /** The PureDB to authenticate against (re-read at each login): the fallback when `authSocket` is given. */
  pdb: string;
  /** The agent's extauth socket (`ftpAuthSocketOf`), asked first: `-l extauth:<it> -l puredb:<pdb>`. */
  authSocket?: string;
  /** Default: a free port on `host`. */
  port?: number;
  /** Default `passivePortsOf(host)`. */
  passivePorts?: [number, number];
  /** The address advertised for passive mode (`-P`), e.g. the load balancer's; default `host`. */
  passiveAddress?: string;
  /**
   * Concurrent sessions (`-c`, the agent's --ftp-max-sessions), also allowed per client address
   * (`-C`): every session through a load balancer comes from its address. Default: pure-ftpd's.
   */
  maxSessions?: number;
  /** Serve explicit FTPS (AUTH TLS) as `tls.mode` says; default: cleartext only. */
  tls?: FtpTlsSetup;
}

export interface PureFtpdProcess {
  readonly host: string;
  readonly port: number;
  /** "ftp://host:port". */
  readonly url: string;
  readonly pid: number;
  /** What pure-ftpd printed so far. */
  output(): string;
  /** SIGTERM (SIGKILL of it and its session processes after 5 s) and wait for the exit. */
  stop(): Promise<void>;
}

export async function startPureFtpd(options: PureFtpdOptions): Promise<PureFtpdProcess> {
  const port = options.port ?? (await freePort(options.host));
  const [low, high] = options.passivePorts ?? passivePortsOf(options.host);
  const args = [
    ...(options.authSocket === undefined ? [] : ["-l", `extauth:${options.authSocket}`]),
    ...["-l", `puredb:${options.pdb}`],
    ...["-S", `${options.host},${port}`],
    ...["-p", `${low}:${high}`, "-P", options.passiveAddress ?? options.host],
    "-E", // no anonymous logins
    "-H", // do not resolve client names
    "-A", // chroot everyone (the accounts' homes end in "/./" too)
    "-j", // create a missing home folder
    ...["-u", "1"], // accept the accounts' uids (nobody included); only root is refused
    ...["-U", "137:027"], // files 0640, folders 0750: the org and the web group (setgid folders), no one else
    ...(options.maxSessions === undefined ? [] : ["-c", `${options.maxSessions}`, "-C", `${options.maxSessions}`]),
    ...(options.tls === undefined
      ? []
      : [
          "-Y",
          `${PURE_FTPD_TLS_LEVEL[options.tls.mode]}`,
          "-2",
          `${options.tls.certificateFile},${options.tls.keyFile}`,
        ]),
  ];
  const what = `pure-ftpd on ${options.host}:${port}`;
  const { child, output } = await spawnServer(options.bin, args, what, () => greets(options.host, port));

  return {
    host: options.host,
    port,
    url: `ftp://${options.host}:${port}`,
    pid: child.pid as number,
    output,
    stop: () => stopProcessTree(child, "SIGTERM"),
  };
}

export interface FtpTry {
  /** "ftp://host:port" of the server. */
  url: string;
  user: string;
  password: string;
  /** Upload this file into the account's root instead of listing it. */
  upload?: { name: string; content: string };
  /** Download this file of the account's root instead of listing it (its content is `names`' place: `content`). */
  download?: string;
  /** Default 10 s; a failed login alone takes pure-ftpd about 3-4 s (its anti-guessing delay). */
  timeoutMs?: number;
  /** Default "curl". */
  curl?: string;
  /** FTPS (`--ssl-reqd`): trust this CA file and reach `url`'s host by this name, which its certificate covers. */
  tls?: { caFile: string; servername: string };
}

export interface FtpTried {
  /** Logged in and listed (or uploaded). */
  ok: boolean;
  /** curl's exit code: 0, CURL_LOGIN_DENIED, CURL_UPLOAD_FAILED, …; null when killed by the timeout. */
  code: number | null;
  /** Names in the account's root, without "." and ".." (listing only). */
  names: string[];
  /** What a download received. */
  content: string;
  stderr: string;
}

/** curl config-file quoting, so the password goes through stdin rather than the command line. */
const quoted = (value: string): string => `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;

/** Log in to `url` as `user` and list the root (or upload a file), bounded by a timeout. */
export async function ftpTry(options: FtpTry): Promise<FtpTried> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "lbh-ftp-try-"));
  try {
    const args = ["--silent", "--show-error", "--max-time", String(Math.ceil(timeoutMs / 1000)), "--config", "-"];
    let url = options.url;
    if (options.tls) {
      const { hostname, port } = new URL(url);
      args.push(
        "--ssl-reqd",
        "--cacert",
        options.tls.caFile,
        "--resolve",
        `${options.tls.servername}:${port}:${hostname}`,
      );
      url = `ftp://${options.tls.servername}:${port}`;
    }
    if (options.upload) {
      const file = path.join(work, "upload");
      fs.writeFileSync(file, options.upload.content);
      args.push("--upload-file", file, `${url}/${encodeURIComponent(options.upload.name)}`);
    } else if (options.download !== undefined) {
      args.push(`${url}/${encodeURIComponent(options.download)}`);
    } else {
      args.push("--list-only", `${url}/`);
    }
    const child = spawn(options.curl ?? "curl", args, { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    child.stdin.end(`user = ${quoted(`${options.user}:${options.password}`)}\n`);
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs + 2000);
    const code = await new Promise<number | null>((resolve) => child.once("close", (exitCode) => resolve(exitCode)));
    clearTimeout(timer);
    const listed = options.upload === undefined && options.download === undefined;
    const names = listed ? stdout.split(/\r?\n/).filter((name) => !["", ".", ".."].includes(name)) : [];
    return { ok: code === 0, code, names: names.sort(), content: listed ? "" : stdout, stderr: stderr.trim() };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
