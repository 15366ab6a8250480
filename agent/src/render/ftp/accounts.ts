/**
 * FTP accounts as pure-ftpd virtual users, in one PureDB for the node (`pureftpd.pdb`, readable by
 * the owner only: it holds password hashes). One account per (enabled user, enabled FTP service
 * the user has access to); its login is `<username>@<service>.<org>`, unique on the node, and its
 * passwd line says the uid it runs as and its home, which ends in "/./" so pure-ftpd chroots there.
 *
 * Accounts are rendered per user: a user write re-renders that user's accounts only (none when no
 * account can change), a service or org change re-renders the org. `publish()` joins every org's
 * lines and builds the PDB from them, written to a temporary file renamed over it, so a login never
 * reads a half-written one (pure-ftpd re-reads it per login). With a `pure-pw` binary the first
 * build runs `pure-pw mkdb`; when puredb.ts gives the very same bytes, later builds are done
 * in-process (without pure-pw, always). The agent coalesces publishes (pipeline/writes.ts), so a
 * burst of user writes costs one build per round, not one per write.
 * Read-only is enforced by ownership, not by pure-ftpd: a writable service's accounts run as the
 * org's own Unix id (uid = gid), which owns the org's folder and its service folders (content.ts,
 * mode 2750); read-only accounts run as another uid that owns nothing, with the web group, which
 * may only read. Another org's accounts are neither owner nor in the group: nothing at all.
 */
import { webcrypto as crypto } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import type { ServiceRecord, UserRecord } from "../../../../wire";
import { runCommand } from "../../workers/commands";
import { buildPureDb, type PureDbRecord, pureDbHash } from "./puredb";
import type { ContentRoot } from "../content";
import { writeFileAtomic } from "../atomic-write";
import { type StepReport, timedStep } from "../steps";

/** The PureDB pure-ftpd reads (`pure-ftpd -l puredb:<dir>/pureftpd.pdb`). */
export const PDB_FILE = "pureftpd.pdb";
/** What the PDB was built from and is, as `<sha256 of the passwd content> <sha256 of the PDB>`. */
const PDB_BUILT = "pureftpd.pdb.built";
/** Its source for `pure-pw mkdb`. */
const NODE_PASSWD = "_pureftpd.passwd";
/** Per-org account files earlier versions wrote beside the PDB. */
const LEGACY_ORG_FILE = /^[a-z0-9-]+\.(?:passwd|json)$/;
const PURE_PW_TIMEOUT_MS = 15_000;
const MAX_MESSAGE = 500;

interface FtpIds {
  uid: number;
  gid: number;
}

/** nobody: owns no content, so with the web group it can read an org's folder but not write it. */
export const DEFAULT_FTP_READONLY_UID = 65534;

interface FtpOptions {
  /** Where the account files and the PDB go (`<data>/ftp`). */
  dir: string;
  content: Pick<ContentRoot, "resolve" | "prepare">;
  /** uid/gid of accounts of read-only services (the gid: the web group). */
  readonlyIds: FtpIds;
  /** pure-ftpd's `pure-pw`: with it, the PDB's format is checked against it and the accounts' folders prepared. */
  purePw?: string;
  warn: (msg: string, fields: Record<string, unknown>) => void;
  /** Reports each PDB build (step "build"). */
  report?: StepReport;
  /**
   * Set when pure-ftpd asks the agent first (extauth, auth-server.ts): `publishSoon` then builds the
   * PDB (the fallback while the agent is down) at most this long after a change, off the write path.
   */
  publishDelayMs?: number;
}

/** What pure-ftpd needs to log an account in: its hash, the ids it runs as, its home (chrooted). */
export interface FtpLogin {
  passwordHash: string;
  uid: number;
  gid: number;
  /** Ends in "/./": pure-ftpd chroots there. */
  dir: string;
}

interface FtpAccount {
  login: string;
  username: string;
  service: string;
  home: string;
  writable: boolean;
}

/** An enabled FTP service of an org, with its folder resolved inside the org's: its accounts' home. */
interface FtpHome {
  service: string;
  /** As the service gives it, relative to the org's folder. */
  rootPath: string;
  home: string;
  writable: boolean;
}

/**
 * An account as rendered: what extauth answers (`auth`) and the rest of its passwd line after the
 * login. Strings: a start renders 20,000 accounts without encoding or hashing any (~50 ms less,
 * measured); an org's lines are encoded and hashed once, when a PDB is first built with them.
 */
type Account = FtpAccount & {
  auth: FtpLogin;
  rest: string;
};

/** What the accounts of one org are made of: its FTP homes and each user's accounts. */
interface OrgAccounts {
  /** The org's Unix id: its writable accounts' uid and gid. */
  unixId: number;
  homes: FtpHome[];
  byUser: Map<string, Account[]>;
  /** Its accounts in login order, its passwd text and its PDB records (views of its encoded text), made when first asked for. */
  sorted?: Account[];
  passwd?: string;
  records?: PureDbRecord[];
}

export class FtpFiles {
  private readonly dir: string;
  /** Each org's accounts as last rendered: the PDB is made from them. */
  private readonly orgs = new Map<string, OrgAccounts>();
  /** The node passwd content the PDB was last built from. */
  private published: string | undefined;
  /** Whether PDBs are built in-process: always without pure-pw, else decided by the first build. */
  private inline: boolean;
  private formatChecked = false;
  /** Every account of `orgs` by its login: what the extauth server answers from. */
  private readonly logins = new Map<string, Account>();
  /** The pending deferred publish (`publishSoon`), and the chain publishes run on, one at a time. */
  private timer: NodeJS.Timeout | undefined;
  private publishing: Promise<void> = Promise.resolve();

  constructor(private readonly options: FtpOptions) {
    this.dir = options.dir;
    this.inline = options.purePw === undefined;
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 }); // on start
  }

  /** Whether the org's accounts have been rendered whole since the agent started (see `renderUsers`). */
  has(org: string): boolean {
    return this.orgs.has(org);
  }

  /**
   * Work out one org's accounts from its records; the next `publish` serves them.
   * Users are read only when the org has an enabled FTP service (most big orgs' writes have none).
   * `folders`: the start's render passes those it trusts (verified-folders.ts `atStart`).
   */
  async render(
    org: string,
    unixId: number,
    services: ServiceRecord[],
    users: () => UserRecord[],
    folders: FtpOptions["content"] = this.options.content,
  ): Promise<void> {
    const homes = await this.homesOf(org, services, folders);
    const byUser = new Map<string, Account[]>();
    for (const user of homes.length === 0 ? [] : users()) {
      const accounts = this.accountsOf(org, unixId, homes, user);
      if (accounts.length > 0) byUser.set(user.username, accounts);
    }
    const refused = await this.prepareHomes(org, unixId, homes, byUser, folders);
    if (refused.size > 0) {
      for (const [username, accounts] of byUser) {
        const kept = accounts.filter((account) => !refused.has(account.service));
        if (kept.length > 0) byUser.set(username, kept);
        else byUser.delete(username);
      }
    }
    this.reindex(this.orgs.get(org)?.byUser.values() ?? [], byUser.values());
    this.orgs.set(org, { unixId, homes, byUser });
  }

  /** The account `login` as rendered now (extauth answers from it), or undefined. */
  account(login: string): FtpLogin | undefined {
    return this.logins.get(login)?.auth;
  }

  /** Replaces accounts `before` by `after` in the login index. */
  private reindex(before: Iterable<Account[]>, after: Iterable<Account[]>): void {
    for (const accounts of before) for (const account of accounts) this.logins.delete(account.login);
    for (const accounts of after) for (const account of accounts) this.logins.set(account.login, account);
  }

  /**
   * Work out again the accounts of some users of an org rendered whole before (`has`), from their
   * records as stored now (undefined: the user is gone), so a user write costs its own accounts,
   * not the org's; the org's FTP services have not changed since (a service change renders the org
   * whole). Returns false, changing nothing, when a service folder is refused now (see
   * `prepareHomes`): the caller renders the org whole.
   */
  async renderUsers(org: string, users: Array<[username: string, record: UserRecord | undefined]>): Promise<boolean> {
    const rendered = this.orgs.get(org);
    if (!rendered) throw new Error(`the FTP accounts of organization ${org} were never rendered whole`);
    const byUser = new Map(rendered.byUser);
    const removed: Account[][] = [];
    const added: Account[][] = [];
    for (const [username, user] of users) {
      const accounts = user ? this.accountsOf(org, rendered.unixId, rendered.homes, user) : [];
      const before = byUser.get(username) ?? [];
      if (accounts.length === 0 && before.length === 0) continue;
      if (accounts.length > 0) byUser.set(username, accounts);
      else byUser.delete(username);
      removed.push(before);
      added.push(accounts);
    }
    if (added.length === 0) return true;
    if ((await this.prepareHomes(org, rendered.unixId, rendered.homes, byUser, this.options.content)).size > 0) {
      return false;
    }
    // Only the changed users' accounts: a write costs its own accounts, not the org's or the node's.
    this.reindex(removed, added);
    this.orgs.set(org, { unixId: rendered.unixId, homes: rendered.homes, byUser });
    return true;
  }

  /** The org is gone: its accounts go with the next `publish`. */
  remove(org: string): void {
    this.reindex(this.orgs.get(org)?.byUser.values() ?? [], []);
    this.orgs.delete(org);
  }

  /** The org's enabled FTP services whose folder stays inside the org's. */
  private async homesOf(org: string, services: ServiceRecord[], folders: FtpOptions["content"]): Promise<FtpHome[]> {
    const homes: FtpHome[] = [];
    for (const service of services) {
      if (service.kind !== "ftp" || !service.enabled) continue;
      const home = await folders.resolve(org, service.rootPath);
      if (home.ok) {
        homes.push({ service: service.name, rootPath: service.rootPath, home: home.path, writable: service.writable });
      } else this.skip(org, service.name, home.reason);
    }
    return homes;
  }

  /** One account per FTP service the user may use, when enabled. */
  private accountsOf(org: string, unixId: number, homes: FtpHome[], user: UserRecord): Account[] {
    if (!user.enabled) return [];
    const accounts: Account[] = [];
    for (const { service, home, writable } of homes) {
      if (!user.access.includes(service)) continue;
      const login = `${user.username}@${service}.${org}`;
      const { uid, gid } = writable ? { uid: unixId, gid: unixId } : this.options.readonlyIds;
      const { username, passwordHash } = user;
      const auth = { passwordHash, uid, gid, dir: `${home}/./` };
      const rest = `${passwordHash}:${uid}:${gid}::${auth.dir}::::::::::::`;
      accounts.push({ login, username, service, home, writable, auth, rest });
    }
    return accounts;
  }

  private skip(org: string, service: string, reason: string): void {
    this.options.warn("ftp service not rendered", { org, service, reason });
  }

  /**
   * With pure-pw, before each render that serves them: the folders of services that have accounts
   * are made (when missing) and owned by the org's Unix id with the web group, mode 2750
   * (content.ts `prepare`). A folder that is, or resolves through, a symlink is refused: its
   * service gets no account. Ownership that cannot be set (a NAS that squashes root) is reported;
   * the accounts still log in. Returns the refused services.
   */
  private async prepareHomes(
    org: string,
    unixId: number,
    homes: FtpHome[],
    byUser: Map<string, Account[]>,
    folders: FtpOptions["content"],
  ): Promise<Set<string>> {
    const refused = new Set<string>();
    if (this.options.purePw === undefined) return refused;
    const served = new Set<string>();
    for (const accounts of byUser.values()) for (const account of accounts) served.add(account.service);
    for (const { service, rootPath, home } of homes) {
      if (!served.has(service)) continue;
      try {
        const prepared = await folders.prepare(org, rootPath, unixId);
        if (!prepared.ok || prepared.path !== home) {
          refused.add(service);
          this.skip(
            org,
            service,
            prepared.ok ? "resolves elsewhere once created (through a symlink)" : prepared.reason,
          );
        }
      } catch (error) {
        this.options.warn("ftp service folder not prepared", { org, service, reason: (error as Error).message });
      }
    }
    return refused;
  }

  /** On start: remove the per-org account files earlier versions wrote (they hold password hashes). */
  async removeLegacyFiles(): Promise<void> {
    const legacy = (await fs.promises.readdir(this.dir)).filter((file) => LEGACY_ORG_FILE.test(file));
    await Promise.all(legacy.map((file) => fs.promises.rm(path.join(this.dir, file), { force: true })));
  }

  /**
   * After a round: with `publishDelayMs` (extauth answers logins from memory, so the write need not
   * wait for the PDB) a publish is scheduled, coalescing every round until then into one build;
   * without it the PDB is what pure-ftpd reads, so it is built now.
   */
  async publishSoon(): Promise<void> {
    const delay = this.options.publishDelayMs;
    if (delay === undefined) return this.publish();
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      // The previous PDB stays (only the fallback); the next change or start rebuilds it.
      this.publishInTurn().catch((error: Error) =>
        this.options.warn("ftp accounts not published", { reason: error.message }),
      );
    }, delay);
  }

  /** Builds a scheduled publish now (on stop: the fallback PDB then holds every change). */
  async flush(): Promise<void> {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.publishInTurn().catch((error: Error) =>
        this.options.warn("ftp accounts not published", { reason: error.message }),
      );
    }
    await this.publishing.catch(() => undefined);
  }

  /** `publish`, after any publish still running. */
  private publishInTurn(): Promise<void> {
    const next = this.publishing.catch(() => undefined).then(() => this.publish());
    this.publishing = next;
    return next;
  }

  /**
   * Rebuild the PDB from every org's accounts when they changed since the last build (the first
   * call always builds), off the event loop. Throws when the PDB cannot be built, and the previous
   * PDB keeps serving.
   *
   * With pure-pw, the first build (on start) runs `pure-pw mkdb`; when puredb.ts gives the very
   * same bytes for the same accounts, the agent builds every later PDB itself (no process per
   * round), else it keeps running pure-pw (a pure-ftpd whose format differs) and says so in its log.
   */
  async publish(): Promise<void> {
    const served = [...this.orgs.keys()].sort().map((org) => this.orgs.get(org) as OrgAccounts);
    const content = served.map(passwdOf).join("");
    if (this.published === content) return;
    const pdb = path.join(this.dir, PDB_FILE);
    // On start: a PDB already holding these accounts (the agent stopped after publishing) stays.
    if (this.published === undefined && (await this.builtFrom(content))) {
      this.published = content;
      return;
    }
    const records = served.flatMap(pureDbRecordsOf);
    await timedStep(this.options.report, "build", async () => {
      if (!this.inline) return this.purePwBuild(content, records, pdb);
      const bytes = buildPureDb(records);
      await writeFileAtomic(pdb, bytes, 0o600);
      await this.recordBuilt(content, bytes);
    });
    this.published = content;
  }

  /**
   * Whether the PDB on disk is exactly the one built from `content`, by the digests recorded with
   * it (`recordBuilt`): a start then reads it once instead of building 20,000 accounts again to
   * compare (~50 ms). Digests are worked out off the event loop.
   */
  private async builtFrom(content: string): Promise<boolean> {
    const [recorded, pdb] = await Promise.all(
      [PDB_BUILT, PDB_FILE].map((file) => fs.promises.readFile(path.join(this.dir, file)).catch(() => undefined)),
    );
    if (recorded === undefined || pdb === undefined) return false;
    return recorded.toString() === `${await sha256(Buffer.from(content))} ${await sha256(pdb)}`;
  }

  /** Records what the PDB now on disk was built from (after it is in place: a crash before leaves a mismatch). */
  private async recordBuilt(content: string, pdb: Buffer): Promise<void> {
    const digests = `${await sha256(Buffer.from(content))} ${await sha256(pdb)}`;
    await writeFileAtomic(path.join(this.dir, PDB_BUILT), digests, 0o600);
  }

  /** `pure-pw mkdb` of `content`; the first build also tells whether `buildPureDb(records)` gives its bytes. */
  private async purePwBuild(content: string, records: PureDbRecord[], pdb: string): Promise<void> {
    const source = path.join(this.dir, NODE_PASSWD);
    await writeFileAtomic(source, content, 0o600);
    const result = await runCommand(this.options.purePw as string, ["mkdb", pdb, "-f", source], PURE_PW_TIMEOUT_MS);
    if (!result.ok) {
      // pure-pw reports files and errno, never the lines it reads.
      const code = result.exitCode === undefined ? result.error : `exit ${result.exitCode}`;
      throw new Error(`pure-pw mkdb failed: ${code}: ${result.stderr.trim().slice(0, MAX_MESSAGE)}`);
    }
    const bytes = await fs.promises.readFile(pdb);
    await this.recordBuilt(content, bytes);
    if (this.formatChecked) return;
    this.formatChecked = true;
    this.inline = bytes.equals(buildPureDb(records));
    if (this.inline) await fs.promises.rm(source, { force: true });
    else this.options.warn("pure-pw writes another PDB format than this agent; every FTP change runs it", { pdb });
  }
}

const sha256 = async (bytes: Buffer): Promise<string> =>
  Buffer.from(await crypto.subtle.digest("SHA-256", bytes)).toString("hex");

const byLogin = (a: Account, b: Account): number => (a.login < b.login ? -1 : a.login > b.login ? 1 : 0);

/** An org's accounts in login order. */
function sortedAccounts(rendered: OrgAccounts): Account[] {
  rendered.sorted ??= [...rendered.byUser.values()].flat().sort(byLogin);
  return rendered.sorted;
}

/** An org's passwd lines, in login order. */
function passwdOf(rendered: OrgAccounts): string {
  rendered.passwd ??= sortedAccounts(rendered)
    .map(({ login, rest }) => `${login}:${rest}\n`)
    .join("");
  return rendered.passwd;
}

/** An org's PDB records: views of its passwd text, encoded once (a login holds no ':', a line no newline). */
function pureDbRecordsOf(rendered: OrgAccounts): PureDbRecord[] {
  if (rendered.records) return rendered.records;
  const bytes = Buffer.from(passwdOf(rendered));
  let at = 0;
  rendered.records = sortedAccounts(rendered).map(({ login }) => {
    const colon = bytes.indexOf(0x3a, at);
    const end = bytes.indexOf(0x0a, colon);
    const record = { key: bytes.subarray(at, colon), content: bytes.subarray(colon + 1, end), hash: pureDbHash(login) };
    at = end + 1;
    return record;
  });
  return rendered.records;
}
