/**
 * The load balancer's web check asks each node for a small file inside the website's own document
 * root, so a node whose nginx cannot read the org's content (a folder its workers may not read, an
 * unmounted NAS) fails the check and leaves the rotation, instead of answering 403/404 while UP.
 *
 * The agent writes that file into tenant-controlled folders, so it never follows a symlink there:
 * the folders must resolve to themselves once created, the file is written to a new temporary name
 * (O_EXCL: a planted symlink makes it fail) and renamed over whatever holds the name.
 */
import fs from "node:fs";
import path from "node:path";
import { replaceInTenantFolder } from "./atomic-write";

/** The URL path of the check: served by nginx (sites.ts) and requested by HAProxy (haproxy/config.ts). */
export const SITE_CHECK_PATH = "/.well-known/lbhosting/health";

/** What the check file holds: which site it is (nothing secret), so a reader knows whose it is. */
export const siteCheckText = (org: string, service: string): string => `lbhosting ${org} ${service}\n`;

const isDirectory = async (folder: string): Promise<boolean> =>
  fs.promises.lstat(folder).then(
    (stat) => stat.isDirectory(),
    () => false,
  );

/** The file's content when it is a plain file already, else undefined (missing, a symlink, unreadable). */
async function currentText(file: string): Promise<string | undefined> {
  try {
    const handle = await fs.promises.open(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    try {
      return await handle.readFile("utf8");
    } finally {
      await handle.close();
    }
  } catch {
    return undefined;
  }
}

/** Why no check file was written: the document root is missing (normal until content is uploaded), or refused. */
export type SiteCheckSkipped = "no document root" | { refused: string };

/**
 * Writes the check file into `documentRoot` (absolute and symlink-resolved, see content.ts) unless
 * it already holds `text`. A missing document root gets none (it is not created: over an unmounted
 * NAS the check must fail). Returns why nothing was written, or undefined.
 */
export async function writeSiteCheck(documentRoot: string, text: string): Promise<SiteCheckSkipped | undefined> {
  if (!(await isDirectory(documentRoot))) return "no document root";
  const folder = path.join(documentRoot, path.dirname(SITE_CHECK_PATH));
  const file = path.join(documentRoot, SITE_CHECK_PATH);
  await fs.promises.mkdir(folder, { recursive: true, mode: 0o755 });
  if ((await fs.promises.realpath(folder)) !== folder) {
    return { refused: `${path.dirname(SITE_CHECK_PATH)} resolves elsewhere (through a symlink)` };
  }
  if ((await currentText(file)) === text) return undefined;
  await replaceInTenantFolder(file, text);
  return undefined;
}
