/**
 * What the domain rules need from the rest of the agent, as small interfaces passed in: the store
 * (the real one is SQLite, store/store.ts), the write queue that commits and renders (pipeline/),
 * password hashing (workers/) and content folders (render/content.ts). Nothing here touches the
 * file system or a process, so the rules run in-process in unit tests with fakes.
 */
import type { Change, ServiceRecord, UserRecord } from "../../../wire";
import type { OrgState } from "../store/org-state";

/** The records the rules read and write; every call runs inside the caller's transaction. */
export interface HostingStore {
  transaction<T>(fn: () => T): T;
  getOrg(name: string): OrgState | undefined;
  orgNames(): string[];
  /** Every org's Unix id (undefined: not given yet), by name. */
  orgUnixIds(): Map<string, number | undefined>;
  saveOrg(state: OrgState): void;
  saveGeneration(org: string, generation: number, logFloor: number): void;
  deleteOrg(name: string): boolean;
  /** The org holding Unix id `id` on this node, or undefined. */
  orgWithUnixId(id: number): string | undefined;
  clearOrgContent(name: string): void;
  computeDigest(org: string): string;
  getUser(org: string, username: string): UserRecord | undefined;
  listUsers(org: string): UserRecord[];
  putUser(org: string, user: UserRecord): void;
  deleteUser(org: string, username: string): boolean;
  getService(org: string, name: string): ServiceRecord | undefined;
  listServices(org: string): ServiceRecord[];
  putService(org: string, service: ServiceRecord): void;
  /** The first of `domains` a website of another org on this node lists, or undefined. */
  domainElsewhere(org: string, domains: string[]): string | undefined;
  deleteService(org: string, name: string): boolean;
  appendChange(org: string, change: Change): void;
  changesSince(org: string, since: number): Change[];
  trimChanges(org: string, generation: number): void;
}

/** What a mutation touched, beyond the database. */
export interface Touched {
  sites: boolean;
  /** FTP accounts to render again: the org's whole (true), those of some users (their names), or none. */
  ftp: boolean | string[];
}

export const UNTOUCHED: Touched = { sites: false, ftp: false };

/**
 * A mutation inside a transaction: what it touched, and its result given the org's state once
 * the whole batch it belongs to is applied (digests are computed once per batch).
 */
export interface Mutation<T> {
  touched: Touched;
  finish: (after: OrgState | undefined) => T;
}

/** Commits mutations and brings the rendered configuration in step (pipeline/writes.ts). */
export interface WriteQueue {
  /** A write that touches no nginx configuration: it commits with the writes arriving with it. */
  plain<T>(org: string, fn: () => Mutation<T>): Promise<T>;
  /** A write that may change nginx configuration: validated by nginx before it commits. */
  config<T>(org: string, fn: () => Mutation<T>): Promise<T>;
  /** Inside a write: the org's content changed; its digest is computed once, at the end of the batch. */
  contentChanged(org: string): void;
}

/** Hashes and verifies plaintext passwords (in worker threads, workers/password-pool.ts). */
export interface PasswordHasher {
  hash(password: string): Promise<string>;
  verify(password: string, hash: string): Promise<boolean>;
}

export type ResolvedFolder = { ok: true; path: string } | { ok: false; reason: string };

/** Where an org's content folder is, checked against symlinks leading out of it (render/content.ts). */
export interface ContentFolders {
  resolve(org: string, relative: string): Promise<ResolvedFolder>;
}

/** What rendering needs besides: the org's folder made and owned by its Unix id, and where it is. */
export interface OwnedContentFolders extends ContentFolders {
  /** Make the folder (and the org's) owned by the org's id with the web group; only resolves where nothing is owned. */
  prepare(org: string, relative: string, unixId: number): Promise<ResolvedFolder>;
  /** The org's folder under the symlink-resolved content root (nginx follows no symlink below it). */
  orgFolder(org: string): string;
}

export type Warn = (msg: string, fields: Record<string, unknown>) => void;
