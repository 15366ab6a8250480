/**
 * pure-ftpd's external authentication (`pure-ftpd -l extauth:<socket> -l puredb:<pdb>`), answered
 * by the agent from the accounts it holds in memory (accounts.ts): a login sees a change as soon as
 * the write's round has rendered it, with no PDB rebuilt on the write path.
 *
 * Per login pure-ftpd connects to the UNIX socket, sends "account:", "password:", "localhost:",
 * "localport:", "peer:", "encrypted:" lines and "end", then reads the reply until the agent closes:
 * "auth_ok:1", "uid:", "gid:", "dir:", "end" for a match; "auth_ok:-1", "end" refuses it for good.
 * The agent never answers 0 ("try the next method"): the PDB behind it may be seconds old and must
 * not let in a login the agent has just removed. When the socket cannot be connected (the agent is
 * stopped or restarting) pure-ftpd retries for ~10 s, then falls through to the PDB.
 * The socket is the agent's (0600 in a 0700 folder): anyone who can connect can try passwords.
 */
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import type { FtpLogin } from "./accounts";

/** pure-ftpd's request is under 4 KiB; more is not pure-ftpd. */
const MAX_REQUEST = 8192;
/** pure-ftpd sends its request at once: a connection that holds on is dropped. */
const REQUEST_TIMEOUT_MS = 10_000;
const REFUSED = "auth_ok:-1\nend\n";
/** sun_path's size on Linux, less its NUL: a longer path cannot be listened on. */
const MAX_SOCKET_PATH = 107;

interface FtpAuthOptions {
  /** The socket's path (`<data>/run/ftp-auth.sock`). */
  socket: string;
  /** The account `login` as rendered now. */
  account: (login: string) => FtpLogin | undefined;
  /** crypt off the event loop (the password worker pool). */
  verify: (password: string, storedHash: string) => Promise<boolean>;
  warn: (msg: string, fields: Record<string, unknown>) => void;
}

export class FtpAuthServer {
  private readonly server: net.Server;

  /** Refuses (on start, before the agent listens) a socket path a UNIX socket cannot have. */
  constructor(private readonly options: FtpAuthOptions) {
    if (Buffer.byteLength(options.socket) > MAX_SOCKET_PATH) {
      throw new Error(
        `the FTP auth socket ${options.socket} is longer than ${MAX_SOCKET_PATH} bytes: use a shorter --data path`,
      );
    }
    this.server = net.createServer((connection) => this.serve(connection));
  }

  /** Listen on the socket, replacing one a previous agent left; 0600 before anyone can connect. */
  async listen(): Promise<void> {
    const { socket } = this.options;
    await fs.promises.mkdir(path.dirname(socket), { recursive: true, mode: 0o700 });
    await fs.promises.chmod(path.dirname(socket), 0o700);
    await fs.promises.rm(socket, { force: true });
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(socket, () => {
        this.server.off("error", reject);
        resolve();
      });
    });
    await fs.promises.chmod(socket, 0o600);
  }

  /** Stop answering: pure-ftpd falls back to the PDB. */
  async close(): Promise<void> {
    if (!this.server.listening) return;
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private serve(connection: net.Socket): void {
    let request = "";
    connection.setEncoding("utf8");
    connection.setTimeout(REQUEST_TIMEOUT_MS, () => connection.destroy());
    connection.on("error", () => connection.destroy());
    const onData = (chunk: string): void => {
      request += chunk;
      if (request.length > MAX_REQUEST) return void connection.destroy();
      if (!/(^|\n)end\n/.test(request)) return;
      connection.off("data", onData);
      void this.answer(request).then(
        (reply) => connection.end(reply),
        (error: Error) => {
          this.options.warn("ftp login not checked", { reason: error.message });
          connection.end(REFUSED);
        },
      );
    };
    connection.on("data", onData);
  }

  /** The reply to one request. Neither the password nor the hash is ever logged. */
  private async answer(request: string): Promise<string> {
    const fields = new Map<string, string>();
    for (const line of request.split("\n")) {
      const colon = line.indexOf(":");
      if (colon > 0 && !fields.has(line.slice(0, colon))) fields.set(line.slice(0, colon), line.slice(colon + 1));
    }
    const login = fields.get("account");
    const password = fields.get("password");
    const account = login === undefined ? undefined : this.options.account(login);
    if (account === undefined || password === undefined) return REFUSED;
    if (!(await this.options.verify(password, account.passwordHash))) return REFUSED;
    return `auth_ok:1\nuid:${account.uid}\ngid:${account.gid}\ndir:${account.dir}\nend\n`;
  }
}
