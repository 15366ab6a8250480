import fs from "node:fs";
import os from "node:os";
import path from "node:path";

/**
 * A content folder standing in for the NAS, holding `files` (`{ "acme/www/index.html": "…" }`).
 * Searchable by everyone, as a real one must be: nginx's workers and the FTP accounts are not root.
 * The caller removes it.
 */
export function nasFolder(name: string, files: Record<string, string>): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `lbh-${name}-nas-`));
  fs.chmodSync(root, 0o755);
  for (const [file, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    fs.writeFileSync(path.join(root, file), text);
  }
  return root;
}
