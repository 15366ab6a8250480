/** The ways the agent replaces a file it renders, off the event loop. */
import { randomBytes } from "node:crypto";
import fs from "node:fs";

let written = 0;

/**
 * Replace `file` whole with `content`: written to a temporary file beside it, synced, then renamed
 * over it, so a reader (nginx, HAProxy, pure-ftpd) sees the old or the new content, never half, and
 * a crash right after leaves one of them on disk. `mode` applies to a file this call creates.
 */
export async function writeFileAtomic(file: string, content: string | Buffer, mode: number): Promise<void> {
  // Unique per call: two renders of the same file in flight must not share a temporary file.
  const temp = `${file}.tmp-${process.pid}-${written++}`;
  const handle = await fs.promises.open(temp, "w", mode);
  try {
    await handle.writeFile(content);
    await handle.datasync();
  } catch (error) {
    await handle.close();
    await fs.promises.rm(temp, { force: true });
    throw error;
  }
  await handle.close();
  await fs.promises.rename(temp, file);
}

/**
 * Replace `file`, in a folder a tenant can write, with a new file holding `text` (0644): written
 * to a temporary name the tenant cannot guess, created exclusively (`wx`: never through a symlink
 * placed there), then renamed over whatever holds the name.
 */
export async function replaceInTenantFolder(file: string, text: string): Promise<void> {
  const temp = `${file}.tmp-${randomBytes(6).toString("hex")}`;
  await fs.promises.writeFile(temp, text, { flag: "wx", mode: 0o644 });
  try {
    await fs.promises.rename(temp, file);
  } catch (error) {
    await fs.promises.rm(temp, { force: true });
    throw error;
  }
}
