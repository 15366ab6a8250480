/**
 * ACME HTTP-01 answers in a website's document root (`/.well-known/acme-challenge/<token>`), which
 * nginx serves over plain HTTP even with `httpsRedirect` (sites.ts). The provider writes one on
 * every serving node, so the answer is there whichever node the load balancer picks.
 *
 * The document root is the tenant's: like the check file (site-check.ts) nothing is written through
 * a symlink. Each folder is made one level at a time and must be a plain folder (mkdir never follows
 * a final symlink), the path must resolve to itself, and the file goes to a new temporary name
 * (O_EXCL) renamed over whatever holds the name; removal unlinks only a plain file.
 */
import fs from "node:fs";
import path from "node:path";
import { replaceInTenantFolder } from "./atomic-write";

const CHALLENGE_FOLDER = [".well-known", "acme-challenge"];

export type ChallengeRefused = "no document root" | { refused: string };

/** The challenge folder under `documentRoot`, made if `create`; a refusal when a level is not a plain folder. */
async function challengeFolder(documentRoot: string, create: boolean): Promise<string | ChallengeRefused> {
  const root = await fs.promises.lstat(documentRoot).catch(() => undefined);
  if (!root?.isDirectory()) return "no document root";
  let folder = documentRoot;
  for (const level of CHALLENGE_FOLDER) {
    folder = path.join(folder, level);
    const stat = await fs.promises.lstat(folder).catch(() => undefined);
    if (stat === undefined && create) {
      await fs.promises.mkdir(folder, { mode: 0o755 }).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== "EEXIST") throw error;
      });
    } else if (stat === undefined) {
      return "no document root";
    } else if (!stat.isDirectory()) {
      return { refused: `${path.relative(documentRoot, folder)} is not a folder (a symlink?)` };
    }
  }
  if ((await fs.promises.realpath(folder)) !== folder) {
    return { refused: `${CHALLENGE_FOLDER.join("/")} resolves elsewhere (through a symlink)` };
  }
  return folder;
}

/** Writes the key authorization for `token` into `documentRoot` (absolute, symlink-resolved). */
export async function writeAcmeChallenge(
  documentRoot: string,
  token: string,
  keyAuthorization: string,
): Promise<ChallengeRefused | undefined> {
  const folder = await challengeFolder(documentRoot, true);
  if (typeof folder !== "string") return folder;
  await replaceInTenantFolder(path.join(folder, token), keyAuthorization);
  return undefined;
}

/** Removes the answer for `token` if it is a plain file (a missing one is already removed). */
export async function removeAcmeChallenge(documentRoot: string, token: string): Promise<ChallengeRefused | undefined> {
  const folder = await challengeFolder(documentRoot, false);
  if (folder === "no document root") return undefined;
  if (typeof folder !== "string") return folder;
  const file = path.join(folder, token);
  const stat = await fs.promises.lstat(file).catch(() => undefined);
  if (stat === undefined) return undefined;
  if (!stat.isFile()) return { refused: `the answer for this token is not a plain file` };
  await fs.promises.unlink(file);
  return undefined;
}
