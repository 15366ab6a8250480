/**
 * Folders the agent verified are recorded in its database and trusted by the next start's render only:
 * writes always check the file system again, a record holds for the org's Unix id it was made
 * with, and a deleted org's records go. Real SQLite and a real content folder.
 */
import { expect } from "chai";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { OwnedContentFolders } from "../../agent/src/domain/ports";
import { VerifiedFolders } from "../../agent/src/pipeline/verified-folders";
import { ContentRoot } from "../../agent/src/render/content";
import { Store } from "../../agent/src/store/store";

const ACME_ID = 200_101;
const WEB_GID = 33;

/** The real content root, counting the calls that reach the file system. */
function counting(content: ContentRoot): OwnedContentFolders & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    prepare: (org, relative, unixId) => {
      calls.push(`prepare ${org}/${relative}`);
      return content.prepare(org, relative, unixId);
    },
    resolve: (org, relative) => {
      calls.push(`resolve ${org}/${relative}`);
      return content.resolve(org, relative);
    },
    orgFolder: (org) => content.orgFolder(org),
  };
}

describe("agent verified folders", function () {
  let work: string;
  let store: Store;
  let content: ContentRoot;

  beforeEach(function () {
    work = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "lbh-verified-")));
    store = new Store(path.join(work, "agent.db"));
    content = new ContentRoot(path.join(work, "nas"), WEB_GID);
  });

  afterEach(function () {
    store?.close();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it("records what a write prepared, and the next start answers from the record without the file system", async function () {
    const running = counting(content);
    const folders = new VerifiedFolders(running, store, true);
    const prepared = await folders.prepare("acme", "files", ACME_ID);
    expect(prepared).to.deep.equal({ ok: true, path: path.join(work, "nas", "acme", "files") });
    expect(fs.statSync(path.join(work, "nas", "acme", "files"))).to.include({ uid: ACME_ID, gid: WEB_GID });
    // A write checks again every time.
    await folders.prepare("acme", "files", ACME_ID);
    expect(running.calls).to.deep.equal(["prepare acme/files", "prepare acme/files"]);

    const restarted = counting(content);
    const again = new VerifiedFolders(restarted, store, true);
    const atStart = again.atStart(new Map([["acme", ACME_ID]]));
    expect(await atStart.prepare("acme", "files", ACME_ID)).to.deep.equal(prepared);
    expect(await atStart.resolve("acme", "files")).to.deep.equal(prepared);
    // Nothing recorded: checked.
    await atStart.resolve("acme", "www");
    expect(restarted.calls).to.deep.equal(["resolve acme/www"]);
    // The org recreated with another Unix id: its records do not hold.
    const recreated = again.atStart(new Map([["acme", ACME_ID + 1]]));
    await recreated.resolve("acme", "files");
    await recreated.prepare("acme", "files", ACME_ID + 1);
    expect(restarted.calls.slice(1)).to.deep.equal(["resolve acme/files", "prepare acme/files"]);
    // A write checks again.
    await again.prepare("acme", "files", ACME_ID + 1);
    await again.resolve("acme", "files");
    expect(restarted.calls.slice(3)).to.deep.equal(["prepare acme/files", "resolve acme/files"]);
  });

  it("records a document root found missing as such, and nothing for a refused folder", async function () {
    const folders = new VerifiedFolders(content, store, true);
    folders.record("acme", "www", ACME_ID, path.join(work, "nas", "acme", "www"), false);
    fs.mkdirSync(path.join(work, "nas", "acme"), { recursive: true });
    fs.symlinkSync(path.join(work, "elsewhere"), path.join(work, "nas", "acme", "escape"));
    expect((await folders.prepare("acme", "escape", ACME_ID)).ok).to.equal(false);

    const restarted = counting(content);
    const again = new VerifiedFolders(restarted, store, true);
    expect(again.trusted("acme", "www", ACME_ID)).to.deep.include({ present: false });
    expect(again.trusted("acme", "escape", ACME_ID)).to.equal(undefined);
    // A folder missing before is no longer trusted to be where it resolved: resolved again.
    expect(await again.atStart(new Map([["acme", ACME_ID]])).resolve("acme", "www")).to.deep.equal({
      ok: true,
      path: path.join(work, "nas", "acme", "www"),
    });
    expect(restarted.calls).to.deep.equal(["resolve acme/www"]);
  });

  it("forgets an org's folders when the org is deleted, and records nothing where it owns no folder", async function () {
    const folders = new VerifiedFolders(content, store, true);
    await folders.prepare("acme", "files", ACME_ID);
    expect(store.verifiedFolders().map((folder) => folder.relative)).to.deep.equal(["files"]);
    folders.forget("acme");
    expect(store.verifiedFolders()).to.deep.equal([]);

    const configOnly = new VerifiedFolders(new ContentRoot(path.join(work, "plain")), store, false);
    await configOnly.prepare("acme", "files", ACME_ID);
    expect(store.verifiedFolders()).to.deep.equal([]);
  });
});
