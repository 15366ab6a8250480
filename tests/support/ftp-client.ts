/**
 * FTP sessions for tests, driven by basic-ftp, in passive mode only (PASV, never EPSV) so a test
 * can see the address and port the server advertises for each data connection: the load balancer
 * rewrites that address, and the port tells which node's passive range served the session.
 *
 *   const session = await FtpSession.open({ host: "127.0.40.3", port: 2121, user: "alice@files.acme", password });
 *   const names = await session.list();       // session.passive: every { host, port } advertised
 *   const text = await session.retrieve("index.html");
 *   await session.store("upload.txt", "hello\n");
 *   await session.quit();
 *
 * With `tls` the session is explicit FTPS (AUTH TLS, then PBSZ 0 / PROT P): the server's
 * certificate is checked against `tls.ca` for `tls.servername`, on the control connection and on
 * every data connection (which resume the control connection's TLS session).
 */
import { Readable, Writable } from "node:stream";
import { Client, enterPassiveModeIPv4, FTPError, type FTPContext, type FTPResponse } from "basic-ftp";

const TIMEOUT_MS = 10_000;
const PASV_ATTEMPTS = 3;

export interface FtpOpenOptions {
  host: string;
  port: number;
  user: string;
  password: string;
  /** FTPS: trust this CA (PEM) and expect a certificate for this name; default: cleartext. */
  tls?: { ca: string; servername: string };
}

export interface PassiveAddress {
  host: string;
  port: number;
}

export class FtpSession {
  /** Every passive address the server advertised, in order. */
  readonly passive: PassiveAddress[] = [];

  private constructor(private readonly client: Client) {
    client.prepareTransfer = (ftp) => this.enterPassive(ftp);
  }

  static async open(options: FtpOpenOptions): Promise<FtpSession> {
    const session = new FtpSession(new Client(TIMEOUT_MS));
    try {
      const { tls, ...login } = options;
      await session.client.access({
        ...login,
        ...(tls ? { secure: true, secureOptions: { ca: tls.ca, servername: tls.servername } } : { secure: false }),
      });
    } catch (error) {
      session.destroy();
      throw error;
    }
    return session;
  }

  /**
   * PASV, recording the advertised address. pure-ftpd binds a random port of its range with
   * SO_REUSEADDR, then gives up with a 425 when listen() finds the port still held by another
   * session's data connection; like common FTP clients, ask again a bounded number of times
   * (each PASV draws a new port).
   */
  private async enterPassive(ftp: FTPContext): Promise<FTPResponse> {
    for (let attempt = 1; ; attempt++) {
      try {
        const reply = await enterPassiveModeIPv4(ftp);
        this.passive.push(advertised(reply.message));
        return reply;
      } catch (error) {
        if (!(error instanceof FTPError && error.code === 425) || attempt === PASV_ATTEMPTS) throw error;
      }
    }
  }

  /** Names in the current folder, without "." and "..". */
  async list(): Promise<string[]> {
    const entries = await this.client.list();
    return entries
      .map((entry) => entry.name)
      .filter((name) => ![".", ".."].includes(name))
      .sort();
  }

  async retrieve(name: string): Promise<string> {
    const chunks: Buffer[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        chunks.push(chunk);
        done();
      },
    });
    await this.client.downloadTo(sink, name);
    return Buffer.concat(chunks).toString("utf8");
  }

  /** Makes the folder (and those above it) where missing, and makes it the current folder. */
  async ensureDir(name: string): Promise<void> {
    await this.client.ensureDir(name);
  }

  async store(name: string, content: string): Promise<void> {
    await this.client.uploadFrom(Readable.from([Buffer.from(content, "utf8")]), name);
  }

  /** Sends one command as it is (e.g. "PROT C"); rejects with the FTPError of a 4xx/5xx answer. */
  async send(command: string): Promise<FTPResponse> {
    return this.client.send(command);
  }

  async quit(): Promise<void> {
    await this.client.send("QUIT").catch(() => undefined);
    this.client.close();
  }

  /** Drop the connection without QUIT (cleanup after a failure). */
  destroy(): void {
    this.client.close();
  }
}

/** The address in a 227 reply, e.g. "Entering Passive Mode (127,0,41,3,117,48)". */
function advertised(message: string): PassiveAddress {
  const numbers = /(\d+),(\d+),(\d+),(\d+),(\d+),(\d+)/.exec(message);
  if (!numbers) throw new Error(`PASV reply without an address: ${message}`);
  const [a, b, c, d, high, low] = numbers.slice(1).map(Number);
  return { host: `${a}.${b}.${c}.${d}`, port: high * 256 + low };
}
