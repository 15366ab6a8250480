/**
 * Where an org's content lives on disk: `<content-root>/<org>/<relative path>`. Schemas already
 * reject "..", absolute and hidden paths; this module adds the check only the file system can
 * answer: after resolving symlinks, the folder must still be inside the org's own folder.
 *
 * On a node that serves content it also owns the folders: the org's folder, and the folders it
 * prepares in it, belong to the org's Unix id with the web group, mode 2750 — the org writes, nginx
 * (and read-only FTP accounts) read, other orgs get nothing; setgid keeps new files in the web
 * group. Ownership is set through a handle opened without following a symlink, and only once the
 * handle's own path (/proc/self/fd) is the expected one: a folder swapped for a symlink meanwhile
 * is refused, never chowned, so no org can make the agent hand it another org's folder.
 */
import fs from "node:fs";
import path from "node:path";

/** Characters the agent accepts in a content root, because that path is written into nginx and FTP files. */
const SAFE_ABSOLUTE_PATH = /^\/[A-Za-z0-9._/-]*$/;

export type Resolved = { ok: true; path: string } | { ok: false; reason: string };

/** Org folders and the folders the agent makes in them: owner rwx, web group r-x (setgid), others nothing. */
const OWNED_FOLDER_MODE = 0o2750;

/** realpath of the deepest existing ancestor, with the not-yet-existing rest appended. */
async function resolveExisting(target: string): Promise<string> {
  const missing: string[] = [];
  let current = target;
  for (;;) {
    try {
      return path.join(await fs.promises.realpath(current), ...missing.reverse());
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
      const parent = path.dirname(current);
      if (parent === current) throw error;
      missing.push(path.basename(current));
      current = parent;
    }
  }
}

const isInside = (child: string, parent: string): boolean =>
  child === parent || child.startsWith(parent.endsWith("/") ? parent : `${parent}/`);

export class ContentRoot {
  /** The content root as given, made absolute and checked for characters safe in config files. */
  readonly root: string;
  /** The same, symlinks resolved (on start). */
  private readonly real: string;

  /**
   * On start only: creates the root and checks it (synchronously, before the first request).
   * `webGid`: the group of org folders; without it (a node that serves nothing) folders are not owned.
   */
  constructor(
    root: string,
    private readonly webGid?: number,
  ) {
    this.root = path.resolve(root);
    fs.mkdirSync(this.root, { recursive: true });
    const real = fs.realpathSync(this.root);
    this.real = real;
    for (const candidate of [this.root, real]) {
      if (!SAFE_ABSOLUTE_PATH.test(candidate)) {
        throw new Error(
          `content root ${JSON.stringify(candidate)} may contain only letters, digits, '.', '_', '-' and '/'`,
        );
      }
    }
  }

  /**
   * The absolute, symlink-resolved folder for `relative` inside `org`'s folder, or why it is refused.
   * A folder that does not exist yet resolves to where it will be (content may be uploaded later).
   */
  async resolve(org: string, relative: string): Promise<Resolved> {
    const rootReal = await fs.promises.realpath(this.root);
    const orgReal = await resolveExisting(path.join(this.root, org));
    if (!isInside(orgReal, rootReal) || orgReal === rootReal) {
      return { ok: false, reason: "the organization's folder resolves outside the content root" };
    }
    const target = await resolveExisting(path.join(orgReal, relative));
    if (!isInside(target, orgReal)) {
      return { ok: false, reason: "resolves outside the organization's folder (through a symlink)" };
    }
    if (!SAFE_ABSOLUTE_PATH.test(target)) {
      return { ok: false, reason: "resolves to a path with characters not allowed in server configuration" };
    }
    return { ok: true, path: target };
  }

  /** Whether the agent owns the org folders it prepares (a node that serves content). */
  get ownsFolders(): boolean {
    return this.webGid !== undefined;
  }

  orgFolder(org: string): string {
    return path.join(this.real, org);
  }

  /**
   * Make `relative` inside `org`'s folder, and the org's folder, real folders owned by `unixId`
   * with the web group (mode 2750): the org's folder and the last one always, folders it creates on
   * the way too; folders the org made on the way stay as they are. Without a web group, resolves only.
   * (A folder on the way swapped for a symlink between two steps gets the next one made where the
   * symlink leads, empty and root's, and refused: nothing there changes owner.)
   */
  async prepare(org: string, relative: string, unixId: number): Promise<Resolved> {
    const webGid = this.webGid;
    if (webGid === undefined) return this.resolve(org, relative);
    const parts = [org, ...relative.split("/").filter((part) => part !== "" && part !== ".")];
    let current = await fs.promises.realpath(this.root);
    for (const [index, part] of parts.entries()) {
      current = path.join(current, part);
      let created = true;
      try {
        await fs.promises.mkdir(current, { mode: 0o700 });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
        created = false;
      }
      // Every folder on the way is checked before the next is made in it; only ours are owned.
      const own = created || index === 0 || index === parts.length - 1;
      const refused = await checkFolder(current, own ? { uid: unixId, gid: webGid } : undefined);
      if (refused) return { ok: false, reason: refused };
    }
    return this.resolve(org, relative);
  }
}

/**
 * Refused (nothing changed) unless `folder` is a folder reached through no symlink: opened without
 * following one, the handle's own path must be `folder`. With `owner`, it is then given to
 * owner.uid:owner.gid, mode 2750, through that handle.
 */
async function checkFolder(folder: string, owner?: { uid: number; gid: number }): Promise<string | undefined> {
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(folder, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ELOOP" || code === "ENOTDIR") return "is not a folder of the organization (a symlink or a file)";
    throw error;
  }
  try {
    if ((await fs.promises.readlink(`/proc/self/fd/${handle.fd}`)) !== folder) {
      return "resolves outside the organization's folder (through a symlink)";
    }
    if (owner === undefined) return undefined;
    const { uid, gid } = owner;
    const stat = await handle.stat();
    if (stat.uid !== uid || stat.gid !== gid) await handle.chown(uid, gid);
    if ((stat.mode & 0o7777) !== OWNED_FOLDER_MODE || stat.uid !== uid || stat.gid !== gid) {
      await handle.chmod(OWNED_FOLDER_MODE); // after chown, which may clear setgid
    }
    return undefined;
  } finally {
    await handle.close();
  }
}
