/**
 * What the agent's operations mean: roles (primary / secondary copy), generations, the change
 * log, drift, and keeping the rendered server configuration in step with the database.
 *
 * Every mutation runs in one SQLite transaction, in which the records change and the org's digest
 * is recomputed; transactions are synchronous, which serialises mutations: generations are
 * consecutive by construction. Nothing slow runs on the event loop:
 * - password hashing runs in worker threads (password-pool.ts) before the transaction;
 * - writes that change nginx configuration go through config-commits.ts (validated group commit:
 *   `nginx -t` as a child process before the commit, one reload per batch);
 * - plain writes arriving together commit in one transaction, with one digest computation per org;
 * - after a commit, a write waits for the next fdatasync of the WAL and, when it changed FTP
 *   accounts, the next FTP rebuild (`pure-pw mkdb`): each serves every write committed before it
 *   began (Coalescer), so a burst costs a few rounds, not one per write.
 * A write answers only once it is durable and the configuration that includes it is live.
 */
import {
  type Change,
  type OrgRecord,
  type OrgSettingsInput,
  type OrgStatus,
  type PromoteBody,
  type ReplicaBody,
  type ReplicaChangesBody,
  type ServiceBody,
  type ServiceRecord,
  type Snapshot,
  type UserBody,
  type UserRecord,
  normalizeEndpoint,
  type ChangesResult,
  type WriteResult,
  canonicalJson,
} from "../../../wire";
import { Coalescer } from "../pipeline/coalesce";
import { ConfigCommits, type NginxScope } from "../pipeline/config-commits";
import type { ContentRoot } from "../render/content";
import { contentDigest } from "../store/digest";
import { ApiFailure, notFound } from "../errors";
import type { FtpFiles } from "../render/ftp/accounts";
import { type NginxSites, renderSite, siteFileName, siteScope } from "../render/nginx/sites";
import type { PasswordPool } from "../workers/password-pool";
import type { ReloadDrain } from "../render/nginx/reload-drain";
import type { OrgState, Store } from "../store/store";

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
/** A change before it is given its generation. */
type ChangeBody = DistributiveOmit<Change, "generation">;

export interface HostingOptions {
  store: Store;
  sites: NginxSites;
  /** Activates site changes and tells when nginx's previous workers are gone. */
  drain: ReloadDrain;
  ftp: FtpFiles;
  /** Hashes and verifies plaintext passwords in worker threads. */
  passwords: PasswordPool;
  content: ContentRoot;
  agentName: string;
  /** nginx `listen` parameter of the rendered sites. */
  httpListen: string;
  /** How many change-log entries to keep per org. */
  changeLogLimit: number;
  warn: (msg: string, fields: Record<string, unknown>) => void;
  now?: () => Date;
}

export interface WriteOptions {
  /** Apply a write to a secondary copy anyway (an administrator's local edit; reported as drift). */
  force: boolean;
  /** A user or service PUT: refuse it when the object exists managed by another owner (OWNER_HEADER). */
  owner?: string;
}

/** What a mutation touched, beyond the database. */
interface Touched {
  sites: boolean;
  /** FTP accounts to render again: the org's whole (true), those of some users (their names), or none. */
  ftp: boolean | string[];
}

/**
 * A write's outcome on a user or service: the org's state after it, what a sync needs next (the
 * change-log entry it appended, the org's active secondaries) and, for a PUT, the stored record.
 */
export interface Written<T> extends WriteResult {
  record: T;
  created: boolean;
  /** The change-log entry this write appended (primary, changed) — a delta a sync can send as is. */
  change?: Change;
  /** The org's epoch: what a sync sends on with the change. */
  epoch: number;
  /** The org's active secondaries (loadBalanced ? secondaries : []), as its record says. */
  secondaries: string[];
}

const UNTOUCHED: Touched = { sites: false, ftp: false };

/** A user write whose stored hash changed while its password was being hashed: work it out again. */
class StaleHash extends Error {}

const sameRecord = (a: unknown, b: unknown): boolean => canonicalJson(a) === canonicalJson(b);

/** A PUT carrying an owner (OWNER_HEADER) refuses to overwrite an object another owner manages. */
function rejectOtherOwner(what: string, stored: { managedBy: string } | undefined, options: WriteOptions): void {
  if (stored && options.owner !== undefined && stored.managedBy !== options.owner) {
    throw new ApiFailure(
      409,
      "managed_elsewhere",
      `${what} already exists, managed by '${stored.managedBy || "nobody"}', not '${options.owner}'`,
    );
  }
}

/** What of a user its FTP accounts are made of ("" when it can have none). */
const ftpFace = (user: UserRecord | undefined): string =>
  user?.enabled && user.access.length > 0 ? `${user.passwordHash} ${[...user.access].sort().join(",")}` : "";

/** The keys of an FTP round (see `ftpRound`): an org's name renders it whole, "org/username" one user. */
const ftpKeys = (org: string, ftp: Touched["ftp"]): string[] =>
  ftp === true ? [org] : ftp === false ? [] : ftp.map((username) => `${org}/${username}`);

/**
 * A mutation inside a transaction: what it touched, and its result given the org's state once
 * the whole batch it belongs to is applied (digests are computed once per batch, see `commit`).
 */
interface Mutation<T> {
  touched: Touched;
  finish: (after: OrgState | undefined) => T;
}

/** The answer of a user/service write; `after` is the org once the write's batch is applied. */
const written = <T>(after: OrgState, record: T, changed: boolean, created = false, change?: Change): Written<T> => ({
  generation: after.generation,
  digest: after.digest,
  epoch: after.epoch,
  changed,
  record,
  created,
  ...(change ? { change } : {}),
  secondaries: after.record.loadBalanced ? after.record.secondaries : [],
});

/** The org after a write that cannot have deleted it. */
const orgAfter = (after: OrgState | undefined): OrgState => {
  if (!after) throw new Error("the organization vanished inside its own write");
  return after;
};

export class Hosting {
  private readonly store: Store;
  private readonly now: () => Date;
  /** Makes commits durable: one fdatasync of the WAL serves every write committed before it began. */
  private readonly durable: Coalescer<never>;
  /** Rebuilds the FTP files of these orgs and the node's PDB, one round at a time. */
  private readonly ftpRounds: Coalescer<string>;
  /** Plain writes waiting for the next batch transaction (see `commit`). */
  private pendingWrites: Array<{
    org: string;
    fn: () => Mutation<unknown>;
    resolve: (value: unknown) => void;
    reject: (error: unknown) => void;
  }> = [];
  /** Orgs whose content changed in the current transaction: their digest is computed at its end. */
  private readonly staleDigests = new Set<string>();
  /** Writes that change nginx configuration: validated, then committed, a batch at a time. */
  readonly configCommits: ConfigCommits;

  constructor(private readonly options: HostingOptions) {
    this.store = options.store;
    this.now = options.now ?? (() => new Date());
    this.durable = new Coalescer(() => this.store.flush(), { overlap: true });
    this.ftpRounds = new Coalescer((orgs) => this.ftpRound(orgs));
    this.configCommits = new ConfigCommits({
      store: options.store,
      sites: options.sites,
      drain: options.drain,
      afterApply: () => this.finalizeDigests(),
      afterCommit: (ftpOrgs) => this.settle(ftpOrgs),
    });
  }

  // -------------------------------------------------------------------------------------------
  // Reads
  // -------------------------------------------------------------------------------------------

  private requireOrg(name: string): OrgState {
    const state = this.store.getOrg(name);
    if (!state) throw notFound(`organization "${name}"`);
    return state;
  }

  private status(state: OrgState): OrgStatus {
    const secondary = state.role === "secondary";
    return {
      name: state.record.name,
      displayName: state.record.displayName,
      role: state.role,
      ...(secondary && state.primary !== null ? { primary: state.primary } : {}),
      secondaries: state.record.secondaries,
      loadBalanced: state.record.loadBalanced,
      generation: state.generation,
      digest: state.digest,
      epoch: state.epoch,
      drifted: secondary && state.digest !== state.syncedDigest,
      ...(secondary && state.lastSyncedAt !== null ? { lastSyncedAt: state.lastSyncedAt } : {}),
      managedBy: state.record.managedBy,
    };
  }

  orgStatus(name: string): OrgStatus {
    return this.status(this.requireOrg(name));
  }

  listOrgs(): OrgStatus[] {
    return this.store.orgNames().map((name) => this.orgStatus(name));
  }

  listUsers(org: string): UserRecord[] {
    this.requireOrg(org);
    return this.store.listUsers(org);
  }

  getUser(org: string, username: string): UserRecord {
    this.requireOrg(org);
    const user = this.store.getUser(org, username);
    if (!user) throw notFound(`user "${username}" of organization "${org}"`);
    return user;
  }

  listServices(org: string): ServiceRecord[] {
    this.requireOrg(org);
    return this.store.listServices(org);
  }

  getService(org: string, name: string): ServiceRecord {
    this.requireOrg(org);
    const service = this.store.getService(org, name);
    if (!service) throw notFound(`service "${name}" of organization "${org}"`);
    return service;
  }

  /** The org's whole replicated content; read in one transaction so it is one consistent generation. */
  snapshot(name: string): Snapshot {
    return this.store.transaction(() => {
      const state = this.requireOrg(name);
      return {
        generation: state.generation,
        digest: state.digest,
        epoch: state.epoch,
        org: state.record,
        users: this.store.listUsers(name),
        services: this.store.listServices(name),
      };
    });
  }

  changesSince(name: string, since: number): ChangesResult {
    return this.store.transaction(() => {
      const state = this.requireOrg(name);
      if (since > state.generation) {
        throw new ApiFailure(
          410,
          "log_unavailable",
          `organization "${name}" is at generation ${state.generation}, before ${since}; take a full snapshot`,
        );
      }
      if (since < state.logFloor) {
        throw new ApiFailure(
          410,
          "log_unavailable",
          `the change log of organization "${name}" starts after generation ${state.logFloor}, not ${since}; take a full snapshot`,
        );
      }
      return {
        generation: state.generation,
        digest: state.digest,
        epoch: state.epoch,
        changes: this.store.changesSince(name, since),
      };
    });
  }

  // -------------------------------------------------------------------------------------------
  // Rendering
  // -------------------------------------------------------------------------------------------

  /**
   * The site files an org's stored services give. `strict`: an unsafe content folder is an error
   * (a mutation must not commit what cannot be rendered); otherwise it is skipped with a warning.
   */
  private desiredSites(org: string, strict: boolean): Map<string, string> {
    const files = new Map<string, string>();
    for (const service of this.store.listServices(org)) {
      if (service.kind !== "website" || !service.enabled) continue;
      const root = this.options.content.resolve(org, service.documentRoot);
      if (!root.ok) {
        if (strict) {
          throw new ApiFailure(422, "unsafe_content_path", `service "${service.name}": documentRoot ${root.reason}`, [
            { path: `services.${service.name}.documentRoot`, message: root.reason },
          ]);
        }
        this.options.warn("website not rendered", { org, service: service.name, reason: root.reason });
        continue;
      }
      const site = renderSite({
        agentName: this.options.agentName,
        listen: this.options.httpListen,
        org,
        service: service.name,
        domains: service.domains,
        root: root.path,
      });
      files.set(siteFileName(org, service.name), site);
    }
    return files;
  }

  /**
   * FTP accounts are not validated by a server, so they are rendered after the commit, from the
   * database: those of `usernames` only when given (and the org was rendered whole before), else the
   * org's whole.
   */
  private renderFtp(org: string, usernames?: string[]): void {
    const ftp = this.options.ftp;
    try {
      if (!this.store.getOrg(org)) return ftp.remove(org);
      const users = usernames?.map((username): [string, UserRecord | undefined] => [
        username,
        this.store.getUser(org, username),
      ]);
      if (users && ftp.has(org) && ftp.renderUsers(org, users)) return;
      ftp.render(org, this.store.listServices(org), () => this.store.listUsers(org));
    } catch (error) {
      // The database is the truth and the next start re-renders; the write itself succeeded.
      this.options.warn("ftp files not written", { org, reason: (error as Error).message });
    }
  }

  /** Re-render every org from the database (on start: heals a crash between commit and render). */
  async renderAll(): Promise<void> {
    const orgs = this.store.orgNames();
    const desired = new Map<string, string>();
    for (const org of orgs) for (const [file, content] of this.desiredSites(org, false)) desired.set(file, content);
    try {
      await this.options.drain.activate(await this.options.sites.stage([{ scope: siteScope(), desired }]));
    } catch (error) {
      if (!(error instanceof ApiFailure)) throw error;
      this.options.warn("rendered configuration kept as it was", { reason: error.message });
    }
    for (const org of orgs) this.renderFtp(org);
    this.options.ftp.prune(new Set(orgs));
    // Unlike after a write, a failure here stops the start: pure-pw is missing or misconfigured.
    await this.options.ftp.publish();
  }

  /** After a commit: resolves once it is durable and the FTP accounts of `ftpKeys` are live. */
  private async settle(ftpKeys: string[]): Promise<void> {
    await Promise.all([this.durable.request(), ftpKeys.length > 0 ? this.ftpRounds.request(ftpKeys) : undefined]);
  }

  /**
   * One FTP round: the accounts of `keys` ("org" whole, or "org/username") rendered from the
   * database, their orgs' files rewritten, then the node's PDB rebuilt.
   */
  private async ftpRound(keys: Set<string>): Promise<void> {
    const rounds = new Map<string, string[] | undefined>(); // org → usernames, undefined: whole
    for (const key of keys) {
      const [org, username] = key.split("/");
      if (username === undefined) rounds.set(org, undefined);
      else if (!rounds.has(org)) rounds.set(org, [username]);
      else rounds.get(org)?.push(username);
    }
    for (const [org, usernames] of rounds) this.renderFtp(org, usernames);
    try {
      await this.options.ftp.publish();
    } catch (error) {
      // The previous PDB keeps serving; the next change (or the next start) rebuilds it.
      this.options.warn("ftp accounts not published", { reason: (error as Error).message });
    }
  }

  /**
   * A write that touches no nginx configuration. Writes arriving in the same event-loop turn commit
   * together: one transaction, each write in its own savepoint (a failing write rolls back alone),
   * one digest computation per org for the whole batch (the digest hashes every row hash of the
   * org, O(users), so this is what keeps a burst of user writes fast). Each write then answers
   * with the org's state after the batch, once the batch is settled (durable, FTP rebuilt).
   */
  private commit<T>(org: string, fn: () => Mutation<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pendingWrites.push({ org, fn, resolve: resolve as (value: unknown) => void, reject });
      if (this.pendingWrites.length === 1) setImmediate(() => void this.commitPending());
    });
  }

  private async commitPending(): Promise<void> {
    const jobs = this.pendingWrites.splice(0);
    type Outcome = { ok: true; result: unknown; ftp: string[] } | { ok: false; error: unknown };
    let outcomes: Outcome[];
    try {
      outcomes = this.store.transaction(() => {
        const applied = jobs.map((job) => {
          try {
            return { ok: true as const, mutation: this.store.savepoint(job.fn) };
          } catch (error) {
            return { ok: false as const, error };
          }
        });
        this.finalizeDigests();
        const orgsAfter = new Map<string, OrgState | undefined>();
        return applied.map((item, i): Outcome => {
          if (!item.ok) return item;
          const org = jobs[i].org;
          if (!orgsAfter.has(org)) orgsAfter.set(org, this.store.getOrg(org));
          const after = orgsAfter.get(org);
          return {
            ok: true,
            result: item.mutation.finish(after),
            ftp: ftpKeys(jobs[i].org, item.mutation.touched.ftp),
          };
        });
      });
    } catch (error) {
      this.staleDigests.clear();
      for (const job of jobs) job.reject(error);
      return;
    }
    const ftp = outcomes.flatMap((outcome) => (outcome.ok ? outcome.ftp : []));
    try {
      await this.settle(ftp);
    } catch (error) {
      for (const job of jobs) job.reject(error);
      return;
    }
    outcomes.forEach((outcome, i) => (outcome.ok ? jobs[i].resolve(outcome.result) : jobs[i].reject(outcome.error)));
  }

  /** Inside the transaction: compute and store the digest of every org changed in it. */
  private finalizeDigests(): void {
    for (const org of this.staleDigests) this.store.refreshDigest(org);
    this.staleDigests.clear();
  }

  /** The nginx site files of one org, rendered from the database (strict: see desiredSites). */
  private sitesOf(org: string): NginxScope {
    return { key: `sites:${org}`, scope: siteScope(org), render: () => this.desiredSites(org, true) };
  }

  /** A write that may change nginx configuration: validated group commit (config-commits.ts). */
  private commitConfig<T>(org: string, fn: () => Mutation<T>): Promise<T> {
    return this.configCommits.submit({
      apply: () => {
        const { finish, touched } = fn();
        return {
          finish: () => finish(this.store.getOrg(org)),
          nginx: touched.sites ? [this.sitesOf(org)] : [],
          ftp: ftpKeys(org, touched.ftp),
        };
      },
    });
  }

  private rejectSecondaryWrite(state: OrgState, options: WriteOptions): void {
    if (state.role === "secondary" && !options.force) {
      throw new ApiFailure(
        409,
        "secondary_copy",
        `organization "${state.record.name}" is a secondary copy on this node; its primary is ${state.primary ?? "unknown"}. ` +
          "Change it on the primary (or add ?force=true for a deliberate local edit, which is reported as drift).",
      );
    }
  }

  /**
   * Record a content change to an existing org: on a primary it bumps the generation and appends
   * to the log; on a secondary copy (forced edit) it changes only the content, which shows as drift.
   */
  private commitChange(state: OrgState, change: ChangeBody): Change | undefined {
    const org = state.record.name;
    let entry: Change | undefined;
    if (state.role === "primary") {
      const generation = state.generation + 1;
      entry = { ...change, generation } as Change;
      this.store.appendChange(org, entry);
      const logFloor = this.trimLog(org, generation, state.logFloor);
      // Users and services leave the org's record alone: move only its counters.
      if (change.type === "org.put") this.store.saveOrg({ ...state, generation, logFloor });
      else this.store.saveGeneration(org, generation, logFloor);
    } else if (change.type === "org.put") {
      this.store.saveOrg(state);
    }
    // The digest is computed once, at the end of the transaction (finalizeDigests).
    this.staleDigests.add(org);
    return entry;
  }

  /**
   * Keep at least `changeLogLimit` entries, trimming in steps of a sixteenth of it: one delete per
   * step rather than a delete (and a rewritten page) per write. Returns the new log floor.
   */
  private trimLog(org: string, generation: number, floor: number): number {
    const limit = this.options.changeLogLimit;
    if (generation - floor <= limit + Math.floor(limit / 16)) return floor;
    const newFloor = generation - limit;
    this.store.trimChanges(org, newFloor);
    return newFloor;
  }

  // -------------------------------------------------------------------------------------------
  // Org writes
  // -------------------------------------------------------------------------------------------

  /** Create (as primary) or replace the org's settings. Omitted settings take their defaults. */
  putOrg(
    name: string,
    body: OrgSettingsInput,
    options: WriteOptions,
  ): Promise<{ status: OrgStatus; created: boolean }> {
    const secondaries = (body.secondaries ?? []).map(normalizeEndpoint);
    if (new Set(secondaries).size !== secondaries.length) {
      throw new ApiFailure(
        400,
        "validation_failed",
        "invalid request: secondaries: must not list the same secondary twice",
        [{ path: "secondaries", message: "must not list the same secondary twice" }],
      );
    }
    const record: OrgRecord = {
      name,
      displayName: body.displayName ?? "",
      loadBalanced: body.loadBalanced ?? false,
      secondaries,
      managedBy: body.managedBy ?? "",
    };
    return this.commit<{ status: OrgStatus; created: boolean }>(name, () => {
      const state = this.store.getOrg(name);
      if (!state) {
        const fresh: OrgState = {
          record,
          role: "primary",
          primary: null,
          generation: 0,
          digest: "",
          epoch: 0,
          logFloor: 0,
          syncedDigest: null,
          lastSyncedAt: null,
        };
        this.store.saveOrg(fresh); // the row the first log entry refers to
        this.commitChange(fresh, { type: "org.put", org: record });
        return { finish: (after) => ({ status: this.status(orgAfter(after)), created: true }), touched: UNTOUCHED };
      }
      this.rejectSecondaryWrite(state, options);
      if (!sameRecord(state.record, record)) this.commitChange({ ...state, record }, { type: "org.put", org: record });
      return { finish: (after) => ({ status: this.status(orgAfter(after)), created: false }), touched: UNTOUCHED };
    });
  }

  /** Remove the org, its users, services and log (and its rendered configuration; never content). */
  async deleteOrg(name: string, options: WriteOptions): Promise<void> {
    await this.commitConfig(name, () => {
      const state = this.requireOrg(name);
      this.rejectSecondaryWrite(state, options);
      this.store.deleteOrg(name);
      return { finish: () => undefined, touched: { sites: true, ftp: true } };
    });
  }

  // -------------------------------------------------------------------------------------------
  // User and service writes
  // -------------------------------------------------------------------------------------------

  async putUser(org: string, username: string, body: UserBody, options: WriteOptions): Promise<Written<UserRecord>> {
    for (let attempt = 1; ; attempt++) {
      // Refuse early what the transaction would refuse, before spending a hash on it.
      if (body.password !== undefined) this.rejectSecondaryWrite(this.requireOrg(org), options);
      const password = await this.passwordHashFor(org, username, body);
      try {
        return await this.commit(org, () => this.storeUser(org, username, body, options, password, attempt < 3));
      } catch (error) {
        if (!(error instanceof StaleHash)) throw error;
      }
    }
  }

  /** The user write itself, inside the transaction, with the hash worked out before it. */
  private storeUser(
    org: string,
    username: string,
    body: UserBody,
    options: WriteOptions,
    password: { hash?: string; against?: string },
    mayRetry: boolean,
  ): Mutation<Written<UserRecord>> {
    const state = this.requireOrg(org);
    this.rejectSecondaryWrite(state, options);
    const stored = this.store.getUser(org, username);
    rejectOtherOwner(`user "${username}" of organization "${org}"`, stored, options);
    // Another write changed the hash while this one was hashing (say, a retried identical PUT):
    // verify against the new one, so the same password never gets two salts.
    if (body.password !== undefined && stored?.passwordHash !== password.against && mayRetry) throw new StaleHash();
    const hash = password.hash ?? stored?.passwordHash;
    if (hash === undefined) {
      throw new ApiFailure(400, "validation_failed", "invalid request: password: is required for a new user", [
        { path: "password", message: "is required for a new user (give password or passwordHash)" },
      ]);
    }
    const user: UserRecord = {
      username,
      passwordHash: hash,
      displayName: body.displayName ?? "",
      email: body.email ?? "",
      enabled: body.enabled ?? true,
      access: body.access ?? [],
      managedBy: body.managedBy ?? "",
    };
    if (stored && sameRecord(stored, user)) {
      return { finish: (after) => written(orgAfter(after), user, false), touched: UNTOUCHED };
    }
    this.store.putUser(org, user);
    const change = this.commitChange(state, { type: "user.put", user });
    return {
      finish: (after) => written(orgAfter(after), user, true, !stored, change),
      // A change of name or e-mail, or to a user without FTP access, leaves the FTP accounts alone.
      touched: { sites: false, ftp: ftpFace(stored) === ftpFace(user) ? false : [username] },
    };
  }

  /**
   * The hash to store when the body gives one or a plaintext password (undefined: keep the stored
   * one), and the stored hash it was worked out against. A plaintext that verifies against the
   * stored hash keeps it, so re-sending an unchanged password changes nothing; hashing and
   * verifying run in the worker pool.
   */
  private async passwordHashFor(
    org: string,
    username: string,
    body: UserBody,
  ): Promise<{ hash?: string; against?: string }> {
    if (body.passwordHash !== undefined) return { hash: body.passwordHash };
    if (body.password === undefined) return {};
    const against = this.store.getUser(org, username)?.passwordHash;
    if (against !== undefined && (await this.options.passwords.verify(body.password, against))) {
      return { hash: against, against };
    }
    return { hash: await this.options.passwords.hash(body.password), against };
  }

  deleteUser(org: string, username: string, options: WriteOptions): Promise<Written<undefined>> {
    return this.commit(org, () => {
      const state = this.requireOrg(org);
      this.rejectSecondaryWrite(state, options);
      const stored = this.store.getUser(org, username);
      if (!stored || !this.store.deleteUser(org, username)) {
        throw notFound(`user "${username}" of organization "${org}"`);
      }
      const change = this.commitChange(state, { type: "user.delete", username });
      return {
        finish: (after) => written(orgAfter(after), undefined, true, false, change),
        touched: { sites: false, ftp: ftpFace(stored) === "" ? false : [username] },
      };
    });
  }

  putService(org: string, name: string, body: ServiceBody, options: WriteOptions): Promise<Written<ServiceRecord>> {
    const common = { name, enabled: body.enabled ?? true, managedBy: body.managedBy ?? "" };
    const service: ServiceRecord =
      body.kind === "website"
        ? { ...common, kind: "website", domains: body.domains, documentRoot: body.documentRoot }
        : { ...common, kind: "ftp", rootPath: body.rootPath, writable: body.writable ?? false };
    const [field, folder] =
      service.kind === "website" ? ["documentRoot", service.documentRoot] : ["rootPath", service.rootPath];
    return this.commitConfig(org, () => {
      const state = this.requireOrg(org);
      this.rejectSecondaryWrite(state, options);
      const resolved = this.options.content.resolve(org, folder);
      if (!resolved.ok) {
        throw new ApiFailure(400, "validation_failed", `invalid request: ${field}: ${resolved.reason}`, [
          { path: field, message: resolved.reason },
        ]);
      }
      const stored = this.store.getService(org, name);
      rejectOtherOwner(`service "${name}" of organization "${org}"`, stored, options);
      if (stored && sameRecord(stored, service)) {
        return { finish: (after) => written(orgAfter(after), service, false), touched: UNTOUCHED };
      }
      this.store.putService(org, service);
      const change = this.commitChange(state, { type: "service.put", service });
      return {
        finish: (after) => written(orgAfter(after), service, true, !stored, change),
        touched: { sites: true, ftp: true },
      };
    });
  }

  deleteService(org: string, name: string, options: WriteOptions): Promise<Written<undefined>> {
    return this.commitConfig(org, () => {
      const state = this.requireOrg(org);
      this.rejectSecondaryWrite(state, options);
      if (!this.store.deleteService(org, name)) throw notFound(`service "${name}" of organization "${org}"`);
      const change = this.commitChange(state, { type: "service.delete", name });
      return {
        finish: (after) => written(orgAfter(after), undefined, true, false, change),
        touched: { sites: true, ftp: true },
      };
    });
  }

  // -------------------------------------------------------------------------------------------
  // Replication (what the sync hook calls on secondaries)
  // -------------------------------------------------------------------------------------------

  private rejectPrimary(state: OrgState): void {
    if (state.role === "primary") {
      throw new ApiFailure(
        409,
        "primary_copy",
        `this node is the primary of organization "${state.record.name}" at epoch ${state.epoch}; a replica must not overwrite it`,
      );
    }
  }

  /** Fencing: what comes from a primary at a lower epoch than this node's is refused. */
  private rejectStaleEpoch(state: OrgState, epoch: number): void {
    if (epoch < state.epoch) {
      const held = state.role === "primary" ? "holds it as the primary" : "follows its primary";
      throw new ApiFailure(
        409,
        "stale_epoch",
        `organization "${state.record.name}": this node ${held} at epoch ${state.epoch}; ` +
          `replication from epoch ${epoch} is refused (the sender is a former primary)`,
      );
    }
  }

  /** Replace this node's secondary copy of the org wholesale with a primary's snapshot. */
  importReplica(name: string, body: ReplicaBody): Promise<OrgStatus> {
    if (body.org.name !== name) {
      throw new ApiFailure(
        400,
        "validation_failed",
        "invalid request: org.name: must equal the organization in the URL",
        [{ path: "org.name", message: "must equal the organization in the URL" }],
      );
    }
    const duplicate = (values: string[]) => new Set(values).size !== values.length;
    if (duplicate(body.users.map((user) => user.username)) || duplicate(body.services.map((service) => service.name))) {
      const path = duplicate(body.users.map((user) => user.username)) ? "users" : "services";
      throw new ApiFailure(400, "validation_failed", `invalid request: ${path}: must not hold the same name twice`, [
        { path, message: "must not hold the same name twice" },
      ]);
    }
    if (contentDigest(body.org, body.users, body.services) !== body.digest) {
      throw new ApiFailure(400, "digest_mismatch", "the snapshot's content does not match its digest", [
        { path: "digest", message: "must be the digest of the snapshot's content" },
      ]);
    }
    return this.commitConfig(name, () => {
      const existing = this.store.getOrg(name);
      if (existing) {
        this.rejectStaleEpoch(existing, body.epoch);
        // A primary at a lower epoch was superseded (failover, move): a snapshot demotes it.
        if (existing.epoch === body.epoch) this.rejectPrimary(existing);
        this.store.clearOrgContent(name);
      }
      const state: OrgState = {
        record: body.org,
        role: "secondary",
        primary: normalizeEndpoint(body.primary),
        generation: body.generation,
        digest: body.digest,
        epoch: body.epoch,
        logFloor: body.generation,
        syncedDigest: body.digest,
        lastSyncedAt: this.now().toISOString(),
      };
      this.store.saveOrg(state);
      for (const user of body.users) this.store.putUser(name, user);
      for (const service of body.services) this.store.putService(name, service);
      if (this.store.computeDigest(name) !== body.digest) {
        throw new Error("stored replica digest differs from the verified snapshot digest");
      }
      return { finish: (after) => this.status(orgAfter(after)), touched: { sites: true, ftp: true } };
    });
  }

  /** Apply a delta to a secondary copy that is exactly at `baseGeneration` and undrifted. */
  applyChanges(name: string, body: ReplicaChangesBody): Promise<OrgStatus> {
    body.changes.forEach((change, index) => {
      if (change.generation !== body.baseGeneration + 1 + index) {
        throw new ApiFailure(400, "validation_failed", "invalid request: changes must have consecutive generations", [
          { path: `changes.${index}.generation`, message: `must be ${body.baseGeneration + 1 + index}` },
        ]);
      }
      if (change.type === "org.put" && change.org.name !== name) {
        throw new ApiFailure(400, "validation_failed", "invalid request: a change names another organization", [
          { path: `changes.${index}.org.name`, message: "must equal the organization in the URL" },
        ]);
      }
    });
    // Most deltas change users only: those commit at once, without the nginx queue.
    const sites = body.changes.some((change) => change.type === "service.put" || change.type === "service.delete");
    const commit = (fn: () => Mutation<OrgStatus>) => (sites ? this.commitConfig(name, fn) : this.commit(name, fn));
    return commit(() => {
      const state = this.requireOrg(name);
      this.rejectStaleEpoch(state, body.epoch);
      this.rejectPrimary(state);
      // From a higher epoch the copy follows the new primary: the base and digest checks still hold.
      const reparent = body.epoch > state.epoch;
      if (!reparent && body.primary !== undefined && state.primary !== normalizeEndpoint(body.primary)) {
        throw new ApiFailure(
          409,
          "other_primary",
          `the copy of organization "${name}" comes from ${state.primary ?? "unknown"}, not ${normalizeEndpoint(body.primary)}; send a snapshot`,
        );
      }
      if (state.generation !== body.baseGeneration) {
        throw new ApiFailure(
          409,
          "stale_base",
          `the copy of organization "${name}" is at generation ${state.generation}, not ${body.baseGeneration}; send a snapshot`,
        );
      }
      if (state.digest !== state.syncedDigest) {
        throw new ApiFailure(409, "drifted", `the copy of organization "${name}" was edited locally; send a snapshot`);
      }
      const next: OrgState = {
        ...state,
        epoch: body.epoch,
        ...(reparent && body.primary !== undefined ? { primary: normalizeEndpoint(body.primary) } : {}),
      };
      for (const change of body.changes) {
        if (change.type === "org.put") next.record = change.org;
        else if (change.type === "user.put") this.store.putUser(name, change.user);
        else if (change.type === "user.delete") this.store.deleteUser(name, change.username);
        else if (change.type === "service.put") this.store.putService(name, change.service);
        else this.store.deleteService(name, change.name);
        this.store.appendChange(name, change);
      }
      next.generation = body.baseGeneration + body.changes.length;
      next.logFloor = this.trimLog(name, next.generation, state.logFloor);
      this.store.saveOrg(next);
      next.digest = this.store.computeDigest(name);
      if (next.digest !== body.digest) {
        throw new ApiFailure(
          409,
          "digest_mismatch",
          `after the changes the copy of organization "${name}" does not have the expected digest; send a snapshot`,
        );
      }
      next.syncedDigest = next.digest;
      next.lastSyncedAt = this.now().toISOString();
      this.store.saveOrg(next);
      // Service changes render the org's FTP accounts whole; user changes only those users'.
      const users = body.changes.flatMap((change) =>
        change.type === "user.put" ? [change.user.username] : change.type === "user.delete" ? [change.username] : [],
      );
      return {
        finish: (after) => this.status(orgAfter(after)),
        touched: { sites, ftp: sites || [...new Set(users)] },
      };
    });
  }

  /**
   * Remove this node's secondary copy (demotion). With `epoch` (the org's current epoch), a node
   * that still holds the org as primary at a lower epoch — a former primary — loses it too, and a
   * copy that follows a higher epoch than the caller's is kept (409 stale_epoch).
   */
  async deleteReplica(name: string, epoch?: number): Promise<void> {
    await this.commitConfig(name, () => {
      const state = this.requireOrg(name);
      if (epoch !== undefined) this.rejectStaleEpoch(state, epoch);
      if (epoch === undefined || state.epoch >= epoch) this.rejectPrimary(state);
      this.store.deleteOrg(name);
      return { finish: () => undefined, touched: { sites: true, ftp: true } };
    });
  }

  /**
   * Failover: this node's secondary copy becomes the org's primary, at the copy's generation and
   * digest (no content changes, no log entry), with the raised `epoch`. Repeating a promotion that
   * happened answers the same; promoting a copy that changed since the caller looked is refused.
   */
  promote(name: string, body: PromoteBody): Promise<OrgStatus> {
    return this.commit(name, () => {
      const state = this.requireOrg(name);
      const done = { finish: (after: OrgState | undefined) => this.status(orgAfter(after)), touched: UNTOUCHED };
      if (state.role === "primary" && state.epoch === body.epoch) return done;
      if (body.epoch <= state.epoch) {
        throw new ApiFailure(
          409,
          "stale_epoch",
          `organization "${name}" is at epoch ${state.epoch} on this node; a promotion must raise it (not ${body.epoch})`,
        );
      }
      this.rejectPrimary(state);
      if (state.generation !== body.generation || state.digest !== body.digest) {
        throw new ApiFailure(
          409,
          "copy_changed",
          `the copy of organization "${name}" is at generation ${state.generation} (digest ${state.digest.slice(0, 12)}), ` +
            `not ${body.generation} (digest ${body.digest.slice(0, 12)}); look again before promoting it`,
        );
      }
      this.store.saveOrg({
        ...state,
        role: "primary",
        primary: null,
        epoch: body.epoch,
        syncedDigest: null,
        lastSyncedAt: null,
      });
      return done;
    });
  }
}
