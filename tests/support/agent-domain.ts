/**
 * The agent's domain rules and write pipeline in-process, on an in-memory SQLite store, with fake
 * renderers that record what they were asked to do: no nginx, no pure-ftpd, no files.
 */
import { VerifiedFolders } from "../../agent/src/pipeline/verified-folders";
import { ChangeLog } from "../../agent/src/domain/change-log";
import { MemberWrites } from "../../agent/src/domain/members";
import { OrgWrites } from "../../agent/src/domain/orgs";
import type { ResolvedFolder } from "../../agent/src/domain/ports";
import { Reads } from "../../agent/src/domain/reads";
import { Replication } from "../../agent/src/domain/replication";
import { DEFAULT_UNIX_ID_RANGE } from "../../agent/src/domain/unix-ids";
import { ApiFailure } from "../../agent/src/errors";
import { Rendering } from "../../agent/src/pipeline/render";
import { WritePipeline } from "../../agent/src/pipeline/writes";
import type { SiteChange, SiteSpec, StagedSites } from "../../agent/src/render/nginx/sites";
import { Store } from "../../agent/src/store/store";
import {
  type ServiceBody,
  type UnixIdRange,
  type ServiceRecord,
  type UserBody,
  type UserRecord,
  serviceBodySchema,
  userBodySchema,
} from "../../wire";

/** Records the sites each validated batch asked for; `reject` makes the next stage fail like `nginx -t`. */
export class FakeSites {
  readonly staged: Array<Map<string, SiteSpec>> = [];
  /** Every site (key "org/service") as the last activated stage left it. */
  readonly files = new Map<string, SiteSpec>();
  reject: string | undefined;

  async stage(changes: SiteChange[]): Promise<StagedSites> {
    if (this.reject !== undefined) {
      throw new ApiFailure(422, "nginx_rejected", `nginx rejected the new configuration: ${this.reject}`);
    }
    const desired = new Map<string, SiteSpec>();
    for (const change of changes) for (const [key, site] of change.desired) desired.set(key, site);
    this.staged.push(desired);
    const before = new Map(this.files);
    for (const change of changes) {
      for (const file of [...this.files.keys()].filter(change.scope)) this.files.delete(file);
      for (const [key, site] of change.desired) this.files.set(key, site);
    }
    return {
      changed: true,
      activate: async () => true,
      restore: async () => {
        this.files.clear();
        for (const [key, site] of before) this.files.set(key, site);
      },
    };
  }
}

/** Records FTP renders: "acme" rendered whole, "acme/alice" one user, "-acme" removed. */
export class FakeFtp {
  readonly rendered: string[] = [];
  publishes = 0;
  /** Accounts as `login → hash`, as the fake's renders leave them. */
  readonly accounts = new Map<string, Map<string, string>>();
  /** The Unix id each org's accounts were last rendered with. */
  readonly unixIds = new Map<string, number>();

  has(org: string): boolean {
    return this.accounts.has(org);
  }

  async render(org: string, unixId: number, services: ServiceRecord[], users: () => UserRecord[]): Promise<void> {
    this.rendered.push(org);
    this.unixIds.set(org, unixId);
    const ftp = services.filter((service) => service.kind === "ftp" && service.enabled).map((s) => s.name);
    const accounts = new Map<string, string>();
    for (const user of ftp.length > 0 ? users() : []) {
      for (const service of ftp) {
        if (user.enabled && user.access.includes(service)) {
          accounts.set(`${user.username}@${service}.${org}`, user.passwordHash);
        }
      }
    }
    this.accounts.set(org, accounts);
  }

  async renderUsers(org: string, users: Array<[string, UserRecord | undefined]>): Promise<boolean> {
    for (const [username] of users) this.rendered.push(`${org}/${username}`);
    return true;
  }

  remove(org: string): void {
    this.rendered.push(`-${org}`);
    this.accounts.delete(org);
  }

  async removeLegacyFiles(): Promise<void> {}

  async publish(): Promise<void> {
    this.publishes++;
  }

  publishSoon(): Promise<void> {
    return this.publish();
  }
}

/** Content folders that resolve to `/content/<org>/<path>`, except those named "escape…" (a symlink out). */
const fakeContent = {
  async resolve(org: string, relative: string): Promise<ResolvedFolder> {
    if (relative.startsWith("escape")) return { ok: false, reason: "resolves outside the organization's folder" };
    return { ok: true, path: `/content/${org}/${relative}` };
  },
  async prepare(org: string, relative: string): Promise<ResolvedFolder> {
    return this.resolve(org, relative);
  },
  orgFolder: (org: string): string => `/content/${org}`,
};

/** "Hashes" a password by naming it, so tests can tell which plaintext a stored hash came from. */
export const fakeHash = (password: string): string =>
  `$6$fake$${password
    .replace(/[^./0-9A-Za-z]/g, ".")
    .padEnd(86, ".")
    .slice(0, 86)}`;

export interface DomainNode {
  store: Store;
  queue: WritePipeline;
  sites: FakeSites;
  ftp: FakeFtp;
  reads: Reads;
  orgs: OrgWrites;
  members: MemberWrites;
  replication: Replication;
  /** Hashes computed (not verified) so far. */
  hashes: string[];
  putUser(
    org: string,
    username: string,
    body: UserBody,
    options?: { force?: boolean; owner?: string },
  ): ReturnType<MemberWrites["putUser"]>;
  putService(
    org: string,
    name: string,
    body: ServiceBody,
    options?: { force?: boolean },
  ): ReturnType<MemberWrites["putService"]>;
  close(): void;
}

export function domainNode(
  options: { changeLogLimit?: number; now?: () => Date; unixIds?: UnixIdRange } = {},
): DomainNode {
  const store = new Store(":memory:");
  const sites = new FakeSites();
  const ftp = new FakeFtp();
  const hashes: string[] = [];
  const passwords = {
    async hash(password: string) {
      hashes.push(password);
      return fakeHash(password);
    },
    async verify(password: string, hash: string) {
      return hash === fakeHash(password);
    },
  };
  const reloads = { activate: async (staged: StagedSites) => void (await staged.activate()) };
  const rendering = new Rendering({
    store,
    sites,
    reloads,
    ftp,
    // Folders are never recorded here: the fake content owns none.
    content: new VerifiedFolders(
      fakeContent,
      { verifiedFolders: () => [], putVerifiedFolder: () => undefined, deleteVerifiedFolders: () => undefined },
      false,
    ),
    warn: () => undefined,
  });
  const queue = new WritePipeline({ store, sites, reloads, rendering });
  const log = new ChangeLog(store, queue, options.changeLogLimit ?? 1000);
  const members = new MemberWrites({ store, queue, log, passwords, content: fakeContent });
  return {
    store,
    queue,
    sites,
    ftp,
    hashes,
    reads: new Reads(store),
    orgs: new OrgWrites(store, queue, log, options.unixIds ?? DEFAULT_UNIX_ID_RANGE),
    members,
    replication: new Replication(store, queue, log, options.unixIds ?? DEFAULT_UNIX_ID_RANGE, options.now),
    putUser: (org, username, body, write = {}) =>
      members.putUser(org, username, userBodySchema.parse(body), { force: false, ...write }),
    putService: (org, name, body, write = {}) =>
      members.putService(org, name, serviceBodySchema.parse(body), { force: false, ...write }),
    close: () => store.close(),
  };
}

/** The ApiFailure a promise rejects with (fails the test when it resolves). */
export async function failure(promise: Promise<unknown> | (() => Promise<unknown>)): Promise<ApiFailure> {
  try {
    await (typeof promise === "function" ? promise() : promise);
  } catch (error) {
    if (error instanceof ApiFailure) return error;
    throw error;
  }
  throw new Error("expected the write to be refused");
}
