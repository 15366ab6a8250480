/**
 * Where an org's content lives on disk: `<content-root>/<org>/<relative path>`. Schemas already
 * reject "..", absolute and hidden paths; this module adds the check only the file system can
 * answer: after resolving symlinks, the folder must still be inside the org's own folder.
 */
import fs from "node:fs";
import path from "node:path";

/** Characters the agent accepts in a content root, because that path is written into nginx and FTP files. */
const SAFE_ABSOLUTE_PATH = /^\/[A-Za-z0-9._/-]*$/;

export type Resolved = { ok: true; path: string } | { ok: false; reason: string };

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

  /** On start only: creates the root and checks it (synchronously, before the first request). */
  constructor(root: string) {
    this.root = path.resolve(root);
    fs.mkdirSync(this.root, { recursive: true });
    const real = fs.realpathSync(this.root);
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
}
