/**
 * User and service writes. Each answers with the org's state after it and what a sync needs next
 * (the change-log entry it appended, the org's active secondaries). Slow work runs before the
 * transaction: password hashing (in worker threads) and resolving content folders (file system).
 */
import {
  type Change,
  type ServiceBodyWithDefaults,
  type ServiceRecord,
  type UserBodyWithDefaults,
  type UserRecord,
  type WriteResult,
  activeSecondaries,
  canonicalJson,
  websiteTlsOf,
} from "../../../wire";
import { ApiFailure, notFound } from "../errors";
import type { OrgState } from "../store/org-state";
import type { ChangeLog } from "./change-log";
import {
  type ContentFolders,
  type HostingStore,
  type Mutation,
  type PasswordHasher,
  UNTOUCHED,
  type WriteQueue,
} from "./ports";
import {
  type WriteOptions,
  orgAfter,
  rejectDomainElsewhere,
  rejectOtherOwner,
  rejectSecondaryWrite,
  requireOrg,
} from "./roles";

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
  /** The org's active secondaries, as its record says. */
  secondaries: string[];
}

/** A user write whose stored hash changed while its password was being hashed: work it out again. */
class StaleHash extends Error {}

const sameRecord = (a: unknown, b: unknown): boolean => canonicalJson(a) === canonicalJson(b);

/** What of a user its FTP accounts are made of ("" when it can have none). */
const ftpFace = (user: UserRecord | undefined): string =>
  user?.enabled && user.access.length > 0 ? `${user.passwordHash} ${[...user.access].sort().join(",")}` : "";

/** The answer of a user/service write; `after` is the org once the write's batch is applied. */
const written = <T>(after: OrgState, record: T, changed: boolean, created = false, change?: Change): Written<T> => ({
  generation: after.generation,
  digest: after.digest,
  epoch: after.epoch,
  changed,
  record,
  created,
  ...(change ? { change } : {}),
  secondaries: activeSecondaries(after.record),
});

interface MemberPorts {
  store: HostingStore;
  queue: WriteQueue;
  log: ChangeLog;
  passwords: PasswordHasher;
  content: ContentFolders;
}

export class MemberWrites {
  private readonly store: HostingStore;

  constructor(private readonly ports: MemberPorts) {
    this.store = ports.store;
  }

  async putUser(
    org: string,
    username: string,
    body: UserBodyWithDefaults,
    options: WriteOptions,
  ): Promise<Written<UserRecord>> {
    for (let attempt = 1; ; attempt++) {
      // Refuse early what the transaction would refuse, before spending a hash on it.
      if (body.password !== undefined) rejectSecondaryWrite(requireOrg(this.store, org), options);
      const password = await this.passwordHashFor(org, username, body);
      try {
        return await this.ports.queue.plain(org, () =>
          this.storeUser(org, username, body, options, password, attempt < 3),
        );
      } catch (error) {
        if (!(error instanceof StaleHash)) throw error;
      }
    }
  }

  /** The user write itself, inside the transaction, with the hash worked out before it. */
  private storeUser(
    org: string,
    username: string,
    body: UserBodyWithDefaults,
    options: WriteOptions,
    password: { hash?: string; against?: string },
    mayRetry: boolean,
  ): Mutation<Written<UserRecord>> {
    const state = requireOrg(this.store, org);
    rejectSecondaryWrite(state, options);
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
    const { displayName, email, enabled, access, managedBy } = body;
    const user: UserRecord = { username, passwordHash: hash, displayName, email, enabled, access, managedBy };
    if (stored && sameRecord(stored, user)) {
      return { finish: (after) => written(orgAfter(after), user, false), touched: UNTOUCHED };
    }
    this.store.putUser(org, user);
    const change = this.ports.log.record(state, { type: "user.put", user });
    return {
      finish: (after) => written(orgAfter(after), user, true, !stored, change),
      // A change of name or e-mail, or to a user without FTP access, leaves the FTP accounts alone.
      touched: { sites: false, ftp: ftpFace(stored) === ftpFace(user) ? false : [username] },
    };
  }

  /**
   * The hash to store when the body gives one or a plaintext password (undefined: keep the stored
   * one), and the stored hash it was worked out against. A plaintext that verifies against the
   * stored hash keeps it, so re-sending an unchanged password changes nothing.
   */
  private async passwordHashFor(
    org: string,
    username: string,
    body: UserBodyWithDefaults,
  ): Promise<{ hash?: string; against?: string }> {
    if (body.passwordHash !== undefined) return { hash: body.passwordHash };
    if (body.password === undefined) return {};
    const against = this.store.getUser(org, username)?.passwordHash;
    if (against !== undefined && (await this.ports.passwords.verify(body.password, against))) {
      return { hash: against, against };
    }
    return { hash: await this.ports.passwords.hash(body.password), against };
  }

  deleteUser(org: string, username: string, options: WriteOptions): Promise<Written<undefined>> {
    return this.ports.queue.plain(org, () => {
      const state = requireOrg(this.store, org);
      rejectSecondaryWrite(state, options);
      const stored = this.store.getUser(org, username);
      if (!stored || !this.store.deleteUser(org, username)) {
        throw notFound(`user "${username}" of organization "${org}"`);
      }
      const change = this.ports.log.record(state, { type: "user.delete", username });
      return {
        finish: (after) => written(orgAfter(after), undefined, true, false, change),
        touched: { sites: false, ftp: ftpFace(stored) === "" ? false : [username] },
      };
    });
  }

  async putService(
    org: string,
    name: string,
    body: ServiceBodyWithDefaults,
    options: WriteOptions,
  ): Promise<Written<ServiceRecord>> {
    const common = { name, enabled: body.enabled, managedBy: body.managedBy };
    const service: ServiceRecord =
      body.kind === "website"
        ? {
            ...common,
            kind: "website",
            domains: body.domains,
            documentRoot: body.documentRoot,
            ...(body.tls && { tls: websiteTlsOf(body) }),
          }
        : { ...common, kind: "ftp", rootPath: body.rootPath, writable: body.writable };
    const [field, folder] =
      service.kind === "website" ? ["documentRoot", service.documentRoot] : ["rootPath", service.rootPath];
    // Resolved before the transaction: the file system is not asked while the database is locked.
    const resolved = await this.ports.content.resolve(org, folder);
    return this.ports.queue.config(org, () => {
      const state = requireOrg(this.store, org);
      rejectSecondaryWrite(state, options);
      if (!resolved.ok) {
        throw new ApiFailure(400, "validation_failed", `invalid request: ${field}: ${resolved.reason}`, [
          { path: field, message: resolved.reason },
        ]);
      }
      const stored = this.store.getService(org, name);
      rejectOtherOwner(`service "${name}" of organization "${org}"`, stored, options);
      rejectDomainElsewhere(this.store, org, service, "domains");
      if (stored && sameRecord(stored, service)) {
        return { finish: (after) => written(orgAfter(after), service, false), touched: UNTOUCHED };
      }
      this.store.putService(org, service);
      const change = this.ports.log.record(state, { type: "service.put", service });
      return {
        finish: (after) => written(orgAfter(after), service, true, !stored, change),
        touched: { sites: true, ftp: true },
      };
    });
  }

  deleteService(org: string, name: string, options: WriteOptions): Promise<Written<undefined>> {
    return this.ports.queue.config(org, () => {
      const state = requireOrg(this.store, org);
      rejectSecondaryWrite(state, options);
      if (!this.store.deleteService(org, name)) throw notFound(`service "${name}" of organization "${org}"`);
      const change = this.ports.log.record(state, { type: "service.delete", name });
      return {
        finish: (after) => written(orgAfter(after), undefined, true, false, change),
        touched: { sites: true, ftp: true },
      };
    });
  }
}
