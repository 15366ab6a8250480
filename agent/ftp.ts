/**
 * FTP accounts as pure-ftpd virtual users. Per org, `<org>.passwd` in pure-ftpd's passwd format
 * and `<org>.json` with the same accounts plus what the passwd format cannot say (read-only or
 * writable). One account per (enabled user, enabled FTP service the user has access to); its login
 * is `<username>@<service>.<org>`, unique on the node. Home folders end in "/./" so pure-ftpd
 * chroots there. Files hold password hashes, so they are readable by the owner only.
 *
 * With a `pure-pw` binary the agent also serves them: `publish()` joins every org's lines into one
 * node-wide passwd file and builds `pureftpd.pdb` from it (pure-pw writes `<pdb>.index` and renames
 * it over the PDB, so a login never reads a half-written one; pure-ftpd re-reads it per login).
 * pure-pw runs as an asynchronous child process; the agent coalesces publishes (hosting.ts), so a
 * burst of user writes costs one rebuild per round, not one per write.
 * Read-only is enforced by ownership, not by pure-ftpd: writable services' accounts run as the
 * `writable` uid, which is made owner of the service folder; read-only accounts run as another uid
 * that owns nothing there.
 */
import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import type { ServiceRecord, UserRecord } from "../sdk/schemas";
import type { ContentRoot } from "./content";

/** The PureDB pure-ftpd reads (`pure-ftpd -l puredb:<dir>/pureftpd.pdb`). */
export const PDB_FILE = "pureftpd.pdb";
/** Its source; '_' cannot start an org name, so it never collides with `<org>.passwd`. */
const NODE_PASSWD = "_pureftpd.passwd";
const ORG_FILE = /^([a-z0-9-]+)\.(?:passwd|json)$/;
const PURE_PW_TIMEOUT_MS = 15_000;
const MAX_MESSAGE = 500;

export interface FtpIds {
  uid: number;
  gid: number;
}

/** nobody/nogroup: owns no content, so it can read but not write a root-owned 0755 folder. */
export const DEFAULT_FTP_READONLY_IDS: FtpIds = { uid: 65534, gid: 65534 };

/** Why these ids cannot serve pure-ftpd accounts with read-only enforced, or undefined. */
export function servingIdsProblem(writable: FtpIds, readonly: FtpIds): string | undefined {
  if (writable.uid === 0 || readonly.uid === 0) {
    return "FTP accounts cannot run as uid 0 (pure-ftpd refuses root logins): give --ftp-uid a non-root uid";
  }
  if (writable.uid === readonly.uid) {
    return "--ftp-readonly-uid must differ from --ftp-uid, or read-only FTP services could be written";
  }
  return undefined;
}

export interface FtpOptions {
  /** Where the account files and the PDB go (`<data>/ftp`). */
  dir: string;
  content: ContentRoot;
  /** uid/gid of accounts of writable services; made owner of those services' folders. */
  writableIds: FtpIds;
  /** uid/gid of accounts of read-only services. */
  readonlyIds: FtpIds;
  /** pure-ftpd's `pure-pw`: with it, accounts are built into the PDB and their folders prepared. */
  purePw?: string;
  warn: (msg: string, fields: Record<string, unknown>) => void;
}

export interface FtpAccount {
  login: string;
  username: string;
  service: string;
  home: string;
  writable: boolean;
}

/** The accounts an org's records give, skipping (and reporting) services whose folder is refused. */
function ftpAccounts(
  content: ContentRoot,
  org: string,
  ftpServices: Array<Extract<ServiceRecord, { kind: "ftp" }>>,
  users: UserRecord[],
  skip: (service: string, reason: string) => void,
): Array<FtpAccount & { passwordHash: string }> {
  const accounts: Array<FtpAccount & { passwordHash: string }> = [];
  for (const service of ftpServices) {
    const home = content.resolve(org, service.rootPath);
    if (!home.ok) {
      skip(service.name, home.reason);
      continue;
    }
    for (const user of users) {
      if (!user.enabled || !user.access.includes(service.name)) continue;
      accounts.push({
        login: `${user.username}@${service.name}.${org}`,
        username: user.username,
        service: service.name,
        home: home.path,
        writable: service.writable,
        passwordHash: user.passwordHash,
      });
    }
  }
  return accounts;
}

export class FtpFiles {
  private readonly dir: string;
  /** Each org's passwd lines as last rendered: the node file is their join. */
  private readonly lines = new Map<string, string>();
  /** The node passwd content the PDB was last built from. */
  private published: string | undefined;

  constructor(private readonly options: FtpOptions) {
    this.dir = options.dir;
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
  }

  /**
   * Rewrite one org's files from its records; remove them when the org has no FTP account. Users
   * are read only when the org has an enabled FTP service (most writes to big orgs have none).
   */
  render(org: string, services: ServiceRecord[], users: () => UserRecord[]): void {
    const ftpServices = services.filter(
      (service): service is Extract<ServiceRecord, { kind: "ftp" }> => service.kind === "ftp" && service.enabled,
    );
    const skip = (service: string, reason: string) =>
      this.options.warn("ftp service not rendered", { org, service, reason });
    let accounts = ftpServices.length === 0 ? [] : ftpAccounts(this.options.content, org, ftpServices, users(), skip);
    if (this.options.purePw !== undefined) {
      const refused = this.prepareHomes(org, accounts, skip);
      accounts = accounts.filter((account) => !refused.has(account.service));
    }
    if (accounts.length === 0) {
      this.remove(org);
      return;
    }
    const passwd = accounts
      .map((a) => {
        const { uid, gid } = a.writable ? this.options.writableIds : this.options.readonlyIds;
        return `${a.login}:${a.passwordHash}:${uid}:${gid}::${a.home}/./::::::::::::\n`;
      })
      .join("");
    const summary = accounts.map(({ login, username, service, home, writable }) => ({
      login,
      username,
      service,
      home,
      writable,
    }));
    writePrivate(path.join(this.dir, `${org}.passwd`), passwd);
    writePrivate(path.join(this.dir, `${org}.json`), `${JSON.stringify({ org, accounts: summary }, null, 2)}\n`);
    this.lines.set(org, passwd);
  }

  /**
   * Create missing service folders and give writable ones to the writable uid. A folder that
   * resolves elsewhere once created (a symlink raced in) is refused: its services get no account.
   * Ownership that cannot be set is reported; the account still logs in, read-only in effect.
   */
  private prepareHomes(
    org: string,
    accounts: FtpAccount[],
    skip: (service: string, reason: string) => void,
  ): Set<string> {
    const refused = new Set<string>();
    const { writableIds, readonlyIds, warn } = this.options;
    const oneAccountPerService = new Map(accounts.map((account) => [account.service, account])).values();
    for (const { service, home, writable } of oneAccountPerService) {
      try {
        fs.mkdirSync(home, { recursive: true, mode: 0o755 });
        if (fs.realpathSync(home) !== home) {
          refused.add(service);
          skip(service, "resolves outside the organization's folder once created (through a symlink)");
          continue;
        }
        const stat = fs.statSync(home);
        if (writable && (stat.uid !== writableIds.uid || stat.gid !== writableIds.gid)) {
          fs.chownSync(home, writableIds.uid, writableIds.gid);
        }
        if (!writable && (stat.uid === readonlyIds.uid || (stat.mode & 0o002) !== 0)) {
          warn("read-only ftp service folder is writable by its accounts", { org, service, home });
        }
      } catch (error) {
        warn("ftp service folder not prepared", { org, service, reason: (error as Error).message });
      }
    }
    return refused;
  }

  remove(org: string): void {
    fs.rmSync(path.join(this.dir, `${org}.passwd`), { force: true });
    fs.rmSync(path.join(this.dir, `${org}.json`), { force: true });
    this.lines.delete(org);
  }

  /** Remove files of orgs that no longer exist (after a restart). */
  prune(keep: Set<string>): void {
    for (const file of fs.readdirSync(this.dir)) {
      const org = ORG_FILE.exec(file)?.[1];
      if (org !== undefined && !keep.has(org)) fs.rmSync(path.join(this.dir, file), { force: true });
    }
  }

  /**
   * With pure-pw: rebuild the PDB from every org's accounts when they changed since the last build
   * (the first call always builds). Throws when pure-pw fails; the previous PDB keeps serving.
   */
  async publish(): Promise<void> {
    const purePw = this.options.purePw;
    if (purePw === undefined) return;
    const content = [...this.lines.keys()]
      .sort()
      .map((org) => this.lines.get(org))
      .join("");
    if (content === this.published) return;
    const source = path.join(this.dir, NODE_PASSWD);
    writePrivate(source, content);
    await new Promise<void>((resolve, reject) => {
      const args = ["mkdb", path.join(this.dir, PDB_FILE), "-f", source];
      execFile(purePw, args, { encoding: "utf8", timeout: PURE_PW_TIMEOUT_MS }, (error, _stdout, stderr) => {
        if (!error) return resolve();
        // pure-pw reports files and errno, never the lines it reads.
        const code = typeof error.code === "number" ? `exit ${error.code}` : error.message;
        reject(new Error(`pure-pw mkdb failed: ${code}: ${(stderr ?? "").trim().slice(0, MAX_MESSAGE)}`));
      });
    });
    this.published = content;
  }
}

function writePrivate(file: string, content: string): void {
  const temp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(temp, content, { mode: 0o600 });
  fs.renameSync(temp, file);
}
