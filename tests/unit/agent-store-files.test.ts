/**
 * The agent's database files hold every org's password hashes: only the agent reads them (0600),
 * whatever the umask, new or left by an older agent with wider modes.
 */
import { expect } from "chai";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Store } from "../../agent/src/store/store";

const modeOf = (file: string): string => (fs.statSync(file).mode & 0o777).toString(8);

describe("the agent's database files", function () {
  let dir: string;
  let umask: number;

  beforeEach(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "lbh-store-files-"));
    umask = process.umask(0); // the widest: every file would be world-writable
  });

  afterEach(function () {
    process.umask(umask);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("are 0600: the database, its WAL and its shared-memory file, created under umask 0", function () {
    const file = path.join(dir, "agent.db");
    const store = new Store(file);
    try {
      for (const each of [file, `${file}-wal`, `${file}-shm`]) expect(modeOf(each), each).to.equal("600");
    } finally {
      store.close();
    }
  });

  it("are narrowed to 0600 on start when an older agent left them readable by others", function () {
    const file = path.join(dir, "agent.db");
    new Store(file).close();
    for (const each of [file, `${file}-wal`, `${file}-shm`]) {
      if (fs.existsSync(each)) fs.chmodSync(each, 0o644);
    }
    const store = new Store(file);
    try {
      for (const each of [file, `${file}-wal`, `${file}-shm`]) expect(modeOf(each), each).to.equal("600");
    } finally {
      store.close();
    }
  });
});
