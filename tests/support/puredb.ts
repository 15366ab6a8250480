/**
 * Reading the FTP accounts an agent serves back out of its PureDB (`<data>/ftp/pureftpd.pdb`), as
 * the passwd lines they were built from (layout: agent/src/render/ftp/puredb.ts).
 */
import fs from "node:fs";
import { pdbOf } from "./pureftpd";

const RECORDS_AT = 4 + 256 * 4; // after "PDB2" and 256 bucket offsets: the offset of the first record

/** Every account of a PDB as its passwd line ("login:rest\n"), in the order they were built. */
export function pureDbLines(pdb: Buffer): string[] {
  const lines: string[] = [];
  for (let at = pdb.readUInt32BE(RECORDS_AT); at < pdb.length;) {
    const keyLength = pdb.readUInt32BE(at);
    const key = pdb.subarray(at + 4, at + 4 + keyLength);
    at += 4 + keyLength;
    const contentLength = pdb.readUInt32BE(at);
    const content = pdb.subarray(at + 4, at + 4 + contentLength);
    at += 4 + contentLength;
    lines.push(`${key.toString("utf8")}:${content.toString("utf8")}\n`);
  }
  return lines;
}

/** The passwd lines of one org's accounts (logins `user@service.<org>`) in an agent's PDB; "" when none. */
export function orgAccounts(dataDir: string, org: string): string {
  const file = pdbOf(dataDir);
  if (!fs.existsSync(file)) return "";
  const login = new RegExp(`^[^@:]+@[^.:]+\\.${org}:`);
  return pureDbLines(fs.readFileSync(file))
    .filter((line) => login.test(line))
    .join("");
}

/**
 * `orgAccounts` once the PDB holds `login`: an agent that answers pure-ftpd itself (extauth)
 * builds its PDB a moment after the write. Bounded: "" when it never does within `timeoutMs`.
 */
export async function publishedAccounts(
  dataDir: string,
  org: string,
  login: string,
  timeoutMs = 10_000,
): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const accounts = orgAccounts(dataDir, org);
    if (accounts.includes(`${login}:`) || Date.now() > deadline) return accounts;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
