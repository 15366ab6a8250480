/**
 * Content folders already verified, remembered so that a start does not check every org's folders
 * again (at 1,000 orgs that was most of a restart: some 40 file-system calls per org).
 *
 * A folder is recorded once the agent made it the org's (content.ts `prepare`: a real folder,
 * reached through no symlink, owned by the org's Unix id), and a website's document root once
 * resolved inside the org's folder: present (its check file written) or not there yet. Writes
 * always check again: a tenant may have changed a folder since. Only the start's render of every
 * org (its sites, then its FTP accounts, `atStart`) answers from the record, as the running agent itself relies on its last check until
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
  /** What the database records, as last written by this agent: loaded once, on start. */
  private readonly known = new Map<string, Known>();

  /**
   * `records`: whether folders are recorded at all — only where the agent owns them (a node that
   * serves content); elsewhere `prepare` only resolves.
   */
  constructor(
    private readonly content: OwnedContentFolders,
    private readonly store: VerifiedFolderStore,
    private readonly records: boolean,
  ) {
    if (!records) return;
    for (const { org, relative, ...known } of store.verifiedFolders()) this.known.set(keyOf(org, relative), known);
  }

  /** A folder recorded for `unixId`: what the start's render may trust. */
  trusted(org: string, relative: string, unixId: number | undefined): Known | undefined {
    if (unixId === undefined) return undefined;
    const known = this.known.get(keyOf(org, relative));
    return known?.unixId === unixId ? known : undefined;
  }

  /**
   * The folders as the start's render sees them: one recorded as present for the org's Unix id
   * (`unixIds`, as stored) costs no file-system call; anything else is checked (and recorded).
   * Writes use the folders themselves, which always check.
   */
  atStart(unixIds: Map<string, number | undefined>): OwnedContentFolders {
    const present = (org: string, relative: string) => {
      const known = this.trusted(org, relative, unixIds.get(org));
      return known?.present ? { ok: true as const, path: known.path } : undefined;
    };
    return {
      prepare: async (org, relative, unixId) => present(org, relative) ?? this.prepare(org, relative, unixId),
      resolve: async (org, relative) => present(org, relative) ?? this.content.resolve(org, relative),
      orgFolder: (org) => this.content.orgFolder(org),
    };
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
    const prepared = await this.content.prepare(org, relative, unixId);
    if (prepared.ok) this.record(org, relative, unixId, prepared.path, true);
    return prepared;
  }

  resolve(org: string, relative: string): Promise<ResolvedFolder> {
    return this.content.resolve(org, relative);
  }

  orgFolder(org: string): string {
    return this.content.orgFolder(org);
  }
}
