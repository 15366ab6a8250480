/**
 * Content folders already verified, remembered so that a start does not check every org's folders
 * again (at 1,000 orgs that was most of a restart: some 40 file-system calls per org).
 *
 * A folder is recorded once the agent made it the org's (content.ts `prepare`: a real folder,
 * reached through no symlink, owned by the org's Unix id), and a website's document root once
 * resolved inside the org's folder: present (its check file written) or not there yet. Writes
 * always check again: a tenant may have changed a folder since. Only the start, which renders
 * every org, answers from the record, as the running agent itself relies on its last check until
 * the org's next write; nginx's `disable_symlinks if_not_owner` still guards every request. A
 * record holds for the org's Unix id it was made with; an org's deletion removes its records.
 */
import type { OwnedContentFolders, ResolvedFolder } from "../domain/ports";
import type { VerifiedFolder } from "../store/store";

/** Where verified folders are kept (the agent's database). */
export interface VerifiedFolderStore {
  verifiedFolders(): VerifiedFolder[];
  putVerifiedFolder(folder: VerifiedFolder): void;
  deleteVerifiedFolders(org: string): void;
}

/** A recorded folder: where it is, and whether it was there. */
export type Known = Pick<VerifiedFolder, "unixId" | "path" | "present">;

const keyOf = (org: string, relative: string): string => `${org}\0${relative}`;

export class VerifiedFolders implements OwnedContentFolders {
  /** What the database records, as last written by this agent. */
  private readonly known = new Map<string, Known>();
  private trusting = false;

  /**
   * `records`: whether folders are recorded at all — only where the agent owns them (a node that
   * serves content); elsewhere `prepare` only resolves.
   */
  constructor(
    private readonly content: OwnedContentFolders,
    private readonly store: VerifiedFolderStore,
    private readonly records: boolean,
  ) {}

  /**
   * Runs the start's render of every org, answering from the folders verified before: a folder
   * recorded for the org's current Unix id costs no file-system call.
   */
  async duringStart<T>(render: () => Promise<T>): Promise<T> {
    this.known.clear();
    if (this.records) {
      for (const { org, relative, ...known } of this.store.verifiedFolders())
        this.known.set(keyOf(org, relative), known);
    }
    this.trusting = true;
    try {
      return await render();
    } finally {
      this.trusting = false;
    }
  }

  /** On start, a folder recorded for `unixId`. */
  trusted(org: string, relative: string, unixId: number | undefined): Known | undefined {
    if (!this.trusting || unixId === undefined) return undefined;
    const known = this.known.get(keyOf(org, relative));
    return known?.unixId === unixId ? known : undefined;
  }

  /** Records what a write's render just found of `relative` in `org`'s folder. */
  record(org: string, relative: string, unixId: number | undefined, path: string, present: boolean): void {
    if (!this.records || unixId === undefined) return;
    const key = keyOf(org, relative);
    const known = this.known.get(key);
    if (known?.unixId === unixId && known.path === path && known.present === present) return;
    this.store.putVerifiedFolder({ org, relative, unixId, path, present });
    this.known.set(key, { unixId, path, present });
  }

  /** The org is gone: nothing of it is known any more. */
  forget(org: string): void {
    if (this.records) this.store.deleteVerifiedFolders(org);
    for (const key of this.known.keys()) if (key.startsWith(keyOf(org, ""))) this.known.delete(key);
  }

  async prepare(org: string, relative: string, unixId: number): Promise<ResolvedFolder> {
    const known = this.trusted(org, relative, unixId);
    if (known?.present) return { ok: true, path: known.path };
    const prepared = await this.content.prepare(org, relative, unixId);
    if (prepared.ok) this.record(org, relative, unixId, prepared.path, true);
    return prepared;
  }

  /** On start, a folder recorded as present resolves to where it was; anything else is resolved now. */
  async resolve(org: string, relative: string): Promise<ResolvedFolder> {
    const known = this.trusting ? this.known.get(keyOf(org, relative)) : undefined;
    return known?.present ? { ok: true, path: known.path } : this.content.resolve(org, relative);
  }

  orgFolder(org: string): string {
    return this.content.orgFolder(org);
  }
}
