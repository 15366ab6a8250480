/**
 * The agent's SQLite store: orgs (with their replication state), users, services, the per-org
 * change log, the load-balancer routes this node serves (see balancer.ts) with the nodes an admin
 * registered for them, and the organization tokens (hashed, see domain/org-tokens.ts). Records
 * are kept as canonical JSON next to their hash, and each org keeps the set sums of its users' and
 * services' hashes (content_sums), updated with every row, so its digest costs O(1) per write (see
 * digest.ts). This module knows nothing about roles or HTTP; domain/ decides what a mutation
 * means and pipeline/ wraps it in `transaction`.
 */
import fs from "node:fs";
import Database from "better-sqlite3";
import {
  type BalancerRoute,
  type Change,
  type RegisteredBackend,
  type OrgRecord,
  type ServiceRecord,
  type UserRecord,
  canonicalJson,
} from "../../../wire";
import { digestFromSums, emptySetSum, encodeRecord, updateSetSum } from "./digest";
import type { OrgState, Role } from "./org-state";

import { type OrgRow, SCHEMA, SCHEMA_VERSION, UNIX_ID_INDEX } from "./schema";

type SetKind = "users" | "services";

/** A content folder the agent verified, with the org's Unix id then, where it is and whether it was there. */
export interface VerifiedFolder {
  org: string;
  relative: string;
  unixId: number;
  path: string;
  present: boolean;
}

/** How many orgs (and their users and services) a node holds in one role. */
export interface Held {
  orgs: number;
  users: number;
  services: number;
}

/** Every statement the store runs, prepared once. */
function prepareStatements(db: Database.Database) {
  return {
    getOrg: db.prepare<[string], OrgRow>("SELECT * FROM orgs WHERE name = ?"),
    orgNames: db.prepare<[], { name: string }>("SELECT name FROM orgs ORDER BY name"),
    orgUnixIds: db.prepare<[], { name: string; unix_id: number | null }>(
      "SELECT name, unix_id FROM orgs ORDER BY name",
    ),
    // Per role, once per metrics scrape; each count walks its org's rows in key order: O(users +
    // services), no sort (measured: ~10 ms for 2,000 orgs and 200,000 users).
    held: db.prepare<[], Held & { role: string }>(
      `SELECT role, COUNT(*) AS orgs,
         SUM((SELECT COUNT(*) FROM users WHERE users.org = orgs.name)) AS users,
         SUM((SELECT COUNT(*) FROM services WHERE services.org = orgs.name)) AS services
       FROM orgs GROUP BY role`,
    ),
    upsertOrg: db.prepare(
      `INSERT INTO orgs (name, record, record_hash, role, primary_endpoint, generation, digest, epoch, log_floor,
         synced_digest, last_synced_at, unix_id)
       VALUES (@name, @record, @record_hash, @role, @primary_endpoint, @generation, @digest, @epoch, @log_floor,
         @synced_digest, @last_synced_at, @unix_id)
       ON CONFLICT (name) DO UPDATE SET record = excluded.record, record_hash = excluded.record_hash,
         role = excluded.role, primary_endpoint = excluded.primary_endpoint, generation = excluded.generation,
         digest = excluded.digest, epoch = excluded.epoch, log_floor = excluded.log_floor,
         synced_digest = excluded.synced_digest, last_synced_at = excluded.last_synced_at,
         unix_id = excluded.unix_id`,
    ),
    orgWithUnixId: db.prepare<[number], string>("SELECT name FROM orgs WHERE unix_id = ?").pluck(),
    deleteOrg: db.prepare<[string]>("DELETE FROM orgs WHERE name = ?"),
    orgHash: db.prepare<[string], { record_hash: string }>("SELECT record_hash FROM orgs WHERE name = ?"),
    userHashes: db.prepare<[string], string>("SELECT record_hash FROM users WHERE org = ?").pluck(),
    serviceHashes: db.prepare<[string], string>("SELECT record_hash FROM services WHERE org = ?").pluck(),
    getUser: db.prepare<[string, string], string>("SELECT record FROM users WHERE org = ? AND username = ?").pluck(),
    listUsers: db.prepare<[string], string>("SELECT record FROM users WHERE org = ? ORDER BY username").pluck(),
    putUser: db.prepare<[string, string, string, string]>(
      `INSERT INTO users (org, username, record, record_hash) VALUES (?, ?, ?, ?)
       ON CONFLICT (org, username) DO UPDATE SET record = excluded.record, record_hash = excluded.record_hash`,
    ),
    deleteUser: db.prepare<[string, string]>("DELETE FROM users WHERE org = ? AND username = ?"),
    deleteUsers: db.prepare<[string]>("DELETE FROM users WHERE org = ?"),
    getService: db.prepare<[string, string], string>("SELECT record FROM services WHERE org = ? AND name = ?").pluck(),
    listServices: db.prepare<[string], string>("SELECT record FROM services WHERE org = ? ORDER BY name").pluck(),
    putService: db.prepare<[string, string, string, string]>(
      `INSERT INTO services (org, name, record, record_hash) VALUES (?, ?, ?, ?)
       ON CONFLICT (org, name) DO UPDATE SET record = excluded.record, record_hash = excluded.record_hash`,
    ),
    deleteService: db.prepare<[string, string]>("DELETE FROM services WHERE org = ? AND name = ?"),
    // A scan of the node's services (no index: a few milliseconds at thousands of orgs).
    domainElsewhere: db
      .prepare<[string, string], string>(
        `SELECT domain.value FROM services, json_each(services.record, '$.domains') AS domain
         WHERE services.org != ? AND domain.value IN (SELECT value FROM json_each(?)) LIMIT 1`,
      )
      .pluck(),
    deleteServices: db.prepare<[string]>("DELETE FROM services WHERE org = ?"),
    appendChange: db.prepare<[string, number, string]>(
      "INSERT INTO changes (org, generation, change) VALUES (?, ?, ?)",
    ),
    changesSince: db
      .prepare<[string, number], string>(
        "SELECT change FROM changes WHERE org = ? AND generation > ? ORDER BY generation",
      )
      .pluck(),
    trimChanges: db.prepare<[string, number]>("DELETE FROM changes WHERE org = ? AND generation <= ?"),
    deleteChanges: db.prepare<[string]>("DELETE FROM changes WHERE org = ?"),
    getRoute: db.prepare<[string], string>("SELECT route FROM balancer_routes WHERE org = ?").pluck(),
    verifiedFolders: db.prepare<[], Omit<VerifiedFolder, "present"> & { present: number }>(
      "SELECT org, relative, unix_id AS unixId, path, present FROM verified_folders",
    ),
    deleteVerifiedFolders: db.prepare<[string]>("DELETE FROM verified_folders WHERE org = ?"),
    putVerifiedFolder: db.prepare<[string, string, number, string, number]>(
      "INSERT INTO verified_folders (org, relative, unix_id, path, present) VALUES (?, ?, ?, ?, ?) " +
        "ON CONFLICT (org, relative) DO UPDATE SET unix_id = excluded.unix_id, path = excluded.path, present = excluded.present",
    ),
    listRoutes: db.prepare<[], { org: string; route: string }>("SELECT * FROM balancer_routes ORDER BY org"),
    putRoute: db.prepare<[string, string]>(
      "INSERT INTO balancer_routes (org, route) VALUES (?, ?) ON CONFLICT (org) DO UPDATE SET route = excluded.route",
    ),
    deleteRoute: db.prepare<[string]>("DELETE FROM balancer_routes WHERE org = ?"),
    insertOrgToken: db.prepare<[string, string, string, Buffer, string]>(
      "INSERT INTO org_tokens (id, org, label, secret_hash, created_at) VALUES (?, ?, ?, ?, ?)",
    ),
    orgTokens: db.prepare<[string], OrgTokenRow>(
      "SELECT id, org, label, created_at FROM org_tokens WHERE org = ? ORDER BY created_at, id",
    ),
    orgOfSecret: db.prepare<[Buffer], string>("SELECT org FROM org_tokens WHERE secret_hash = ?").pluck(),
    deleteOrgToken: db.prepare<[string, string]>("DELETE FROM org_tokens WHERE org = ? AND id = ?"),
    getBackend: db.prepare<[string], string>("SELECT addresses FROM registered_backends WHERE name = ?").pluck(),
    listBackends: db.prepare<[], { name: string; addresses: string }>(
      "SELECT * FROM registered_backends ORDER BY name",
    ),
    putBackend: db.prepare<[string, string]>(
      `INSERT INTO registered_backends (name, addresses) VALUES (?, ?)
       ON CONFLICT (name) DO UPDATE SET addresses = excluded.addresses`,
    ),
    deleteBackend: db.prepare<[string]>("DELETE FROM registered_backends WHERE name = ?"),
    getSum: db.prepare<[string, string], Buffer>("SELECT sum FROM content_sums WHERE org = ? AND kind = ?").pluck(),
    putSum: db.prepare<[string, string, Buffer]>(
      "INSERT INTO content_sums (org, kind, sum) VALUES (?, ?, ?) ON CONFLICT (org, kind) DO UPDATE SET sum = excluded.sum",
    ),
    deleteSums: db.prepare<[string]>("DELETE FROM content_sums WHERE org = ?"),
    setDigest: db.prepare<[string, string]>("UPDATE orgs SET digest = ? WHERE name = ?"),
    setGeneration: db.prepare<[number, number, string]>("UPDATE orgs SET generation = ?, log_floor = ? WHERE name = ?"),
    userHash: db
      .prepare<[string, string], string>("SELECT record_hash FROM users WHERE org = ? AND username = ?")
      .pluck(),
    serviceHash: db
      .prepare<[string, string], string>("SELECT record_hash FROM services WHERE org = ? AND name = ?")
      .pluck(),
  };
}

type Statements = ReturnType<typeof prepareStatements>;

/** An org token as stored, without its secret's hash. */
export interface OrgTokenRow {
  id: string;
  org: string;
  label: string;
  created_at: string;
}

/**
 * The database holds every org's password hashes and emails: it, its WAL and its shared-memory
 * file are the agent's alone (0600), whatever the umask. SQLite gives the WAL and -shm files it
 * creates the database file's mode, so a new database is created 0600 first; files an older
 * agent left are narrowed on start.
 */
function keepPrivate(file: string): void {
  fs.closeSync(fs.openSync(file, "a", 0o600));
  for (const each of [file, `${file}-wal`, `${file}-shm`]) {
    try {
      fs.chmodSync(each, 0o600);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
  }
}

export class Store {
  private readonly db: Database.Database;
  private readonly stmt: Statements;

  constructor(private readonly file: string) {
    if (file !== ":memory:") keepPrivate(file);
    this.db = new Database(file);
    // WAL: readers never block the writer. NORMAL: a commit does not fsync on the event loop;
    // writes answer only after `flush()` has made the WAL durable (one fdatasync for a whole burst,
    // off the event loop), so an acknowledged change still survives power loss.
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("synchronous = NORMAL");
    this.db.pragma("foreign_keys = ON");
    this.db.pragma("busy_timeout = 5000");
    const version = this.db.pragma("user_version", { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      this.db.close();
      throw new Error(`database ${file} has schema version ${version}, newer than this agent's ${SCHEMA_VERSION}`);
    }
    this.stmt = this.transaction(() => {
      this.db.exec(SCHEMA);
      const columns = this.db.prepare<[], { name: string }>("SELECT name FROM pragma_table_info('orgs')").all();
      if (!columns.some((column) => column.name === "epoch")) {
        this.db.exec("ALTER TABLE orgs ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0");
      }
      if (!columns.some((column) => column.name === "unix_id")) {
        this.db.exec("ALTER TABLE orgs ADD COLUMN unix_id INTEGER");
      }
      this.db.exec(UNIX_ID_INDEX);
      const statements = prepareStatements(this.db);
      if (version < 3) this.migrateDigests(statements);
      this.db.pragma(`user_version = ${SCHEMA_VERSION}`);
      return statements;
    });
  }

  /**
   * To digest format 2: fill every org's sums from its rows and recompute its digest. A copy that
   * was in sync (synced digest = digest) stays in sync; a drifted one keeps its old synced digest,
   * which can only differ from the new digest, so it stays drifted until a snapshot repairs it.
   */
  private migrateDigests(stmt: Statements): void {
    for (const { name } of stmt.orgNames.all()) {
      const sums = { users: emptySetSum(), services: emptySetSum() };
      for (const hash of stmt.userHashes.all(name)) updateSetSum(sums.users, hash, 1);
      for (const hash of stmt.serviceHashes.all(name)) updateSetSum(sums.services, hash, 1);
      stmt.putSum.run(name, "users", sums.users);
      stmt.putSum.run(name, "services", sums.services);
      const row = stmt.getOrg.get(name) as OrgRow;
      const digest = digestFromSums(
        (stmt.orgHash.get(name) as { record_hash: string }).record_hash,
        sums.users,
        sums.services,
      );
      const synced = row.synced_digest === row.digest ? digest : row.synced_digest;
      this.db.prepare("UPDATE orgs SET digest = ?, synced_digest = ? WHERE name = ?").run(digest, synced, name);
    }
  }

  close(): void {
    void this.wal?.then((handle) => handle.close()).catch(() => undefined);
    this.wal = undefined;
    if (this.db.open) this.db.close();
  }

  /** Run `fn` in one IMMEDIATE transaction: all of it commits, or (when it throws) none of it. */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  /** Inside a transaction: run `fn` in a savepoint, so that when it throws only its changes roll back. */
  savepoint<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  /** Make every commit so far durable: fdatasync the write-ahead log, in libuv's thread pool. */
  async flush(): Promise<void> {
    try {
      // SQLite keeps the WAL file while the connection is open (it rewinds it, never removes it).
      this.wal ??= fs.promises.open(`${this.file}-wal`, "r");
      await (await this.wal).datasync();
    } catch (error) {
      this.wal = undefined;
      // No WAL: everything is checkpointed into the database file, which SQLite synced.
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
  }

  private wal: Promise<fs.promises.FileHandle> | undefined;

  getOrg(name: string): OrgState | undefined {
    const row = this.stmt.getOrg.get(name);
    if (!row) return undefined;
    return {
      record: JSON.parse(row.record) as OrgRecord,
      role: row.role as Role,
      primary: row.primary_endpoint,
      generation: row.generation,
      digest: row.digest,
      epoch: row.epoch,
      logFloor: row.log_floor,
      syncedDigest: row.synced_digest,
      lastSyncedAt: row.last_synced_at,
      ...(row.unix_id !== null ? { unixId: row.unix_id } : {}),
    };
  }

  orgWithUnixId(id: number): string | undefined {
    return this.stmt.orgWithUnixId.get(id);
  }

  /** Every org's Unix id (undefined: not given yet), by name: one read for a start's thousand orgs. */
  orgUnixIds(): Map<string, number | undefined> {
    return new Map(this.stmt.orgUnixIds.all().map((row) => [row.name, row.unix_id ?? undefined]));
  }

  orgNames(): string[] {
    return this.stmt.orgNames.all().map((row) => row.name);
  }

  /** What the node holds, as primary and as secondary copies. */
  held(): Record<Role, Held> {
    const held: Record<Role, Held> = {
      primary: { orgs: 0, users: 0, services: 0 },
      secondary: { orgs: 0, users: 0, services: 0 },
    };
    for (const { role, orgs, users, services } of this.stmt.held.all()) held[role as Role] = { orgs, users, services };
    return held;
  }

  /** Write the org row; `digest` is taken from the state, so call `computeDigest` first when content changed. */
  saveOrg(state: OrgState): void {
    const record = encodeRecord(state.record);
    this.stmt.upsertOrg.run({
      name: state.record.name,
      record: record.json,
      record_hash: record.hash,
      role: state.role,
      primary_endpoint: state.primary,
      generation: state.generation,
      digest: state.digest,
      epoch: state.epoch,
      log_floor: state.logFloor,
      synced_digest: state.syncedDigest,
      last_synced_at: state.lastSyncedAt,
      unix_id: state.unixId ?? state.record.unixId ?? null,
    });
  }

  /** A primary's content change: only the org's generation and log floor move (its record is unchanged). */
  saveGeneration(org: string, generation: number, logFloor: number): void {
    this.stmt.setGeneration.run(generation, logFloor, org);
  }

  /** Remove the org with its users, services and change log (foreign keys cascade). */
  deleteOrg(name: string): boolean {
    return this.stmt.deleteOrg.run(name).changes > 0;
  }

  /** Remove users, services and change log but keep the org row (a replica import refills them). */
  clearOrgContent(name: string): void {
    this.stmt.deleteUsers.run(name);
    this.stmt.deleteServices.run(name);
    this.stmt.deleteChanges.run(name);
    this.stmt.deleteSums.run(name);
  }

  /** The digest of what is stored for `org` right now (the org row must have been saved). */
  computeDigest(org: string): string {
    const digest = this.digestOf(org);
    if (digest === undefined) throw new Error(`org ${org} is not stored`);
    return digest;
  }

  /** Store the digest of what is stored for `org` right now (nothing when the org is gone). */
  refreshDigest(org: string): void {
    const digest = this.digestOf(org);
    if (digest !== undefined) this.stmt.setDigest.run(digest, org);
  }

  private digestOf(org: string): string | undefined {
    const orgRow = this.stmt.orgHash.get(org);
    return orgRow && digestFromSums(orgRow.record_hash, this.sum(org, "users"), this.sum(org, "services"));
  }

  private sum(org: string, kind: SetKind): Buffer {
    return this.stmt.getSum.get(org, kind) ?? emptySetSum();
  }

  /** Move one record hash out of (`before`) and into (`after`) the org's users' or services' sum. */
  private updateSum(org: string, kind: SetKind, before: string | undefined, after: string | undefined): void {
    if (before === after) return;
    const sum = this.sum(org, kind);
    if (before !== undefined) updateSetSum(sum, before, -1);
    if (after !== undefined) updateSetSum(sum, after, 1);
    this.stmt.putSum.run(org, kind, sum);
  }

  getUser(org: string, username: string): UserRecord | undefined {
    const json = this.stmt.getUser.get(org, username);
    return json === undefined ? undefined : (JSON.parse(json) as UserRecord);
  }

  listUsers(org: string): UserRecord[] {
    return this.stmt.listUsers.all(org).map((json) => JSON.parse(json) as UserRecord);
  }

  putUser(org: string, user: UserRecord): void {
    const before = this.stmt.userHash.get(org, user.username);
    const { json, hash } = encodeRecord(user);
    this.stmt.putUser.run(org, user.username, json, hash);
    this.updateSum(org, "users", before, hash);
  }

  deleteUser(org: string, username: string): boolean {
    const before = this.stmt.userHash.get(org, username);
    if (before === undefined) return false;
    this.stmt.deleteUser.run(org, username);
    this.updateSum(org, "users", before, undefined);
    return true;
  }

  getService(org: string, name: string): ServiceRecord | undefined {
    const json = this.stmt.getService.get(org, name);
    return json === undefined ? undefined : (JSON.parse(json) as ServiceRecord);
  }

  listServices(org: string): ServiceRecord[] {
    return this.stmt.listServices.all(org).map((json) => JSON.parse(json) as ServiceRecord);
  }

  /** The first of `domains` a website of another org on this node lists, or undefined. */
  domainElsewhere(org: string, domains: string[]): string | undefined {
    return this.stmt.domainElsewhere.get(org, JSON.stringify(domains));
  }

  putService(org: string, service: ServiceRecord): void {
    const before = this.stmt.serviceHash.get(org, service.name);
    const { json, hash } = encodeRecord(service);
    this.stmt.putService.run(org, service.name, json, hash);
    this.updateSum(org, "services", before, hash);
  }

  deleteService(org: string, name: string): boolean {
    const before = this.stmt.serviceHash.get(org, name);
    if (before === undefined) return false;
    this.stmt.deleteService.run(org, name);
    this.updateSum(org, "services", before, undefined);
    return true;
  }

  appendChange(org: string, change: Change): void {
    this.stmt.appendChange.run(org, change.generation, canonicalJson(change));
  }

  changesSince(org: string, since: number): Change[] {
    return this.stmt.changesSince.all(org, since).map((json) => JSON.parse(json) as Change);
  }

  /** Drop log entries up to and including `generation`. */
  trimChanges(org: string, generation: number): void {
    this.stmt.trimChanges.run(org, generation);
  }

  getRoute(org: string): BalancerRoute | undefined {
    const json = this.stmt.getRoute.get(org);
    return json === undefined ? undefined : (JSON.parse(json) as BalancerRoute);
  }

  /** Every route, by org name. */
  /** Every content folder recorded as verified (pipeline/verified-folders.ts). */
  verifiedFolders(): VerifiedFolder[] {
    return this.stmt.verifiedFolders.all().map((row) => ({ ...row, present: row.present === 1 }));
  }

  /** Forgets the verified folders of an org (deleted). */
  deleteVerifiedFolders(org: string): void {
    this.stmt.deleteVerifiedFolders.run(org);
  }

  /** Records a verified folder. */
  putVerifiedFolder(folder: VerifiedFolder): void {
    this.stmt.putVerifiedFolder.run(folder.org, folder.relative, folder.unixId, folder.path, folder.present ? 1 : 0);
  }

  listRoutes(): Array<{ org: string; route: BalancerRoute }> {
    return this.stmt.listRoutes.all().map((row) => ({ org: row.org, route: JSON.parse(row.route) as BalancerRoute }));
  }

  putRoute(org: string, route: BalancerRoute): void {
    this.stmt.putRoute.run(org, JSON.stringify(route));
  }

  deleteRoute(org: string): boolean {
    return this.stmt.deleteRoute.run(org).changes > 0;
  }

  insertOrgToken(token: OrgTokenRow & { secretHash: Buffer }): void {
    this.stmt.insertOrgToken.run(token.id, token.org, token.label, token.secretHash, token.created_at);
  }

  /** The org's tokens, oldest first (no secret hashes). */
  orgTokens(org: string): OrgTokenRow[] {
    return this.stmt.orgTokens.all(org);
  }

  /** The org of the token whose secret hashes to `secretHash`, or undefined. */
  orgOfSecret(secretHash: Buffer): string | undefined {
    return this.stmt.orgOfSecret.get(secretHash);
  }

  deleteOrgToken(org: string, id: string): boolean {
    return this.stmt.deleteOrgToken.run(org, id).changes > 0;
  }

  getBackend(name: string): RegisteredBackend | undefined {
    const json = this.stmt.getBackend.get(name);
    return json === undefined ? undefined : (JSON.parse(json) as RegisteredBackend);
  }

  /** Every registered node, by name. */
  listBackends(): Array<{ name: string; addresses: RegisteredBackend }> {
    return this.stmt.listBackends
      .all()
      .map((row) => ({ name: row.name, addresses: JSON.parse(row.addresses) as RegisteredBackend }));
  }

  putBackend(name: string, addresses: RegisteredBackend): void {
    this.stmt.putBackend.run(name, JSON.stringify(addresses));
  }

  deleteBackend(name: string): boolean {
    return this.stmt.deleteBackend.run(name).changes > 0;
  }
}
