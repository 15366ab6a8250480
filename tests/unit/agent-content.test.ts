/**
 * Content folders resolve inside the org's folder even through symlinks, on a real file system.
 */
import { expect } from "chai";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ContentRoot } from "../../agent/src/render/content";

describe("agent content folders", function () {
  let work: string;
  let root: string;
  let content: ContentRoot;

  beforeEach(function () {
    work = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "lbh-content-")));
    root = path.join(work, "nas");
    fs.mkdirSync(path.join(root, "acme", "www"), { recursive: true });
    fs.mkdirSync(path.join(root, "other", "www"), { recursive: true });
    fs.mkdirSync(path.join(work, "outside"));
    content = new ContentRoot(root);
  });

  afterEach(function () {
    fs.rmSync(work, { recursive: true, force: true });
  });

  it("resolves existing and not-yet-existing folders inside the org", async function () {
    expect(await content.resolve("acme", "www")).to.deep.equal({ ok: true, path: path.join(root, "acme", "www") });
    expect(await content.resolve("acme", "new/deeper")).to.deep.equal({
      ok: true,
      path: path.join(root, "acme", "new", "deeper"),
    });
    expect(await content.resolve("acme", ".")).to.deep.equal({ ok: true, path: path.join(root, "acme") });
    expect(await content.resolve("fresh", "www")).to.deep.equal({ ok: true, path: path.join(root, "fresh", "www") });
  });

  it("follows a symlink that stays inside the org to its target", async function () {
    fs.symlinkSync(path.join(root, "acme", "www"), path.join(root, "acme", "current"));
    expect(await content.resolve("acme", "current")).to.deep.equal({ ok: true, path: path.join(root, "acme", "www") });
  });

  it("refuses symlinks leading out of the org, to another org or out of the root", async function () {
    fs.symlinkSync(path.join(work, "outside"), path.join(root, "acme", "escape"));
    fs.symlinkSync(path.join(root, "other"), path.join(root, "acme", "neighbour"));
    fs.symlinkSync("/", path.join(root, "acme", "rootfs"));
    for (const relative of ["escape", "escape/not-yet", "neighbour/www", "rootfs/etc"]) {
      expect((await content.resolve("acme", relative)).ok, relative).to.equal(false);
    }
    fs.symlinkSync(path.join(work, "outside"), path.join(root, "linked"));
    expect((await content.resolve("linked", "www")).ok).to.equal(false);
  });

  it("refuses a content root whose path nginx configuration could not hold", function () {
    const odd = path.join(work, "with space");
    expect(() => new ContentRoot(odd)).to.throw(/content root/);
  });
});
