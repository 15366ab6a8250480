/**
 * A small FTP client for tests (passive mode only), so a test can hold a session open, see the
 * address and port the server advertises for each data connection (PASV), and time out on every
 * step. Passwords go over the control connection only; nothing is logged.
 *
 *   const session = await FtpSession.open({ host: "127.0.40.3", port: 2121 });
 *   await session.login("alice@files.acme", password);
 *   const names = await session.list();       // session.passive: every { host, port } advertised
 *   const text = await session.retrieve("index.html");
 *   await session.store("upload.txt", "hello\n");
 *   await session.quit();
 */
import net from "node:net";

const DEFAULT_TIMEOUT_MS = 10_000;
const PASV_ATTEMPTS = 3;

export interface FtpReply {
  code: number;
  text: string;
}

export class FtpError extends Error {
  constructor(
    message: string,
    readonly reply?: FtpReply,
  ) {
    super(reply ? `${message}: ${reply.code} ${reply.text}` : message);
    this.name = "FtpError";
  }
}

export interface FtpOpenOptions {
  host: string;
  port: number;
  /** Per step: connect, each reply, each transfer. Default 10 s. */
  timeoutMs?: number;
}

export class FtpSession {
  /** Every passive address the server advertised, in order. */
  readonly passive: Array<{ host: string; port: number }> = [];
  private buffer = "";
  private readonly replies: FtpReply[] = [];
  private waiter: (() => void) | undefined;
  private closed: Error | undefined;

  private constructor(
    private readonly socket: net.Socket,
    private readonly timeoutMs: number,
  ) {
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => this.receive(chunk));
    const close = (error?: Error) => {
      this.closed ??= error ?? new FtpError("the server closed the control connection");
      this.waiter?.();
    };
    socket.on("error", close);
    socket.on("close", () => close());
  }

  static async open(options: FtpOpenOptions): Promise<FtpSession> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const socket = await connect(options.host, options.port, timeoutMs);
    const session = new FtpSession(socket, timeoutMs);
    await session.expect([220], "greeting");
    return session;
  }

  private receive(chunk: string): void {
    this.buffer += chunk;
    // A reply ends with a line "NNN text" (a multi-line one starts with "NNN-").
    for (;;) {
      const match = /(?:^|\r?\n)(\d{3}) ([^\r\n]*)\r?\n/.exec(this.buffer);
      if (!match) break;
      const end = match.index + match[0].length;
      const first = /^(\d{3})[ -]/.exec(this.buffer);
      if (!first || first[1] !== match[1]) {
        this.closed ??= new FtpError(`unexpected reply: ${this.buffer.slice(0, 200)}`);
        break;
      }
      this.replies.push({ code: Number(match[1]), text: this.buffer.slice(4, end).trim() });
      this.buffer = this.buffer.slice(end);
    }
    this.waiter?.();
  }

  /** The next reply, within the timeout. */
  private async next(what: string): Promise<FtpReply> {
    const deadline = Date.now() + this.timeoutMs;
    while (this.replies.length === 0) {
      if (this.closed) throw new FtpError(`${what}: ${this.closed.message}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new FtpError(`${what}: no reply within ${this.timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiter = undefined;
    }
    return this.replies.shift() as FtpReply;
  }

  private async expect(codes: number[], what: string): Promise<FtpReply> {
    const reply = await this.next(what);
    if (!codes.includes(reply.code)) throw new FtpError(what, reply);
    return reply;
  }

  private async send(line: string, codes: number[], what = line.split(" ")[0]): Promise<FtpReply> {
    this.socket.write(`${line}\r\n`);
    return this.expect(codes, what);
  }

  async login(user: string, password: string): Promise<void> {
    await this.send(`USER ${user}`, [331]);
    await this.send(`PASS ${password}`, [230], "PASS");
  }

  /**
   * PASV → the address the server advertises, recorded in `passive`. pure-ftpd binds a random
   * port of its range with SO_REUSEADDR, then gives up with a 425 when listen() finds the port
   * still held by another session's data connection; like common FTP clients, ask again, a
   * bounded number of times (each PASV draws a new port).
   */
  private async enterPassive(): Promise<{ host: string; port: number }> {
    let reply = await this.send("PASV", [227, 425]);
    for (let retry = 1; reply.code === 425 && retry < PASV_ATTEMPTS; retry++) {
      reply = await this.send("PASV", [227, 425]);
    }
    if (reply.code !== 227) throw new FtpError(`PASV (${PASV_ATTEMPTS} attempts)`, reply);
    const numbers = /(\d+),(\d+),(\d+),(\d+),(\d+),(\d+)/.exec(reply.text);
    if (!numbers) throw new FtpError("PASV reply without an address", reply);
    const [a, b, c, d, high, low] = numbers.slice(1).map(Number);
    const address = { host: `${a}.${b}.${c}.${d}`, port: high * 256 + low };
    this.passive.push(address);
    return address;
  }

  /** One data transfer: PASV, connect, the command, then the data until the server closes it. */
  private async transfer(command: string, upload?: Buffer): Promise<Buffer> {
    await this.send(upload ? "TYPE I" : command.startsWith("RETR") ? "TYPE I" : "TYPE A", [200]);
    const address = await this.enterPassive();
    const data = await connect(address.host, address.port, this.timeoutMs);
    const received: Buffer[] = [];
    const done = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        data.destroy();
        reject(new FtpError(`${command}: the data connection did not finish within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      data.on("data", (chunk: Buffer) => received.push(chunk));
      data.on("error", (error) => {
        clearTimeout(timer);
        reject(error);
      });
      data.on("close", () => {
        clearTimeout(timer);
        resolve();
      });
    });
    done.catch(() => undefined); // awaited below; a rejection before then must not go unhandled
    this.socket.write(`${command}\r\n`);
    await this.expect([125, 150], command.split(" ")[0]);
    if (upload) data.end(upload);
    await done;
    await this.expect([226, 250], `${command.split(" ")[0]} completion`);
    return Buffer.concat(received);
  }

  /** Names in the current folder, without "." and "..". */
  async list(): Promise<string[]> {
    const text = (await this.transfer("NLST")).toString("latin1");
    return text
      .split(/\r?\n/)
      .filter((name) => !["", ".", ".."].includes(name))
      .sort();
  }

  async retrieve(name: string): Promise<string> {
    return (await this.transfer(`RETR ${name}`)).toString("utf8");
  }

  async store(name: string, content: string): Promise<void> {
    await this.transfer(`STOR ${name}`, Buffer.from(content, "utf8"));
  }

  async quit(): Promise<void> {
    await this.send("QUIT", [221]).catch(() => undefined);
    this.socket.destroy();
  }

  /** Drop the connection without QUIT (cleanup after a failure). */
  destroy(): void {
    this.socket.destroy();
  }
}

function connect(host: string, port: number, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new FtpError(`no connection to ${host}:${port} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once("connect", () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}
