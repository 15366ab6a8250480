/**
 * Content folders resolve inside the org's folder even through symlinks, and the load balancer's
 * check file is written into a document root without following a symlink, on a real file system.
 */
import { expect } from "chai";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ContentRoot } from "../../agent/src/render/content";
import { SITE_CHECK_PATH, siteCheckText, writeSiteCheck } from "../../agent/src/render/site-check";

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

  describe("owned by the org's Unix id with the web group", function () {
    // The agent's own ids when it cannot chown (not root); else an org's id and a web group.
    const root0 = process.getuid?.() === 0;
    const ORG_ID = root0 ? 200_123 : (process.getuid?.() ?? 1000);
    const WEB_GID = root0 ? 33 : (process.getgid?.() ?? 1000);
    let owned: ContentRoot;

    beforeEach(function () {
      owned = new ContentRoot(root, WEB_GID);
    });

    it("makes the org's folder and the folders on the way, mode 2750; folders the org made stay as they are", async function () {
      fs.mkdirSync(path.join(root, "acme", "mine"), { mode: 0o755 });
      const prepared = await owned.prepare("acme", "mine/drop/box", ORG_ID);
      expect(prepared).to.deep.equal({ ok: true, path: path.join(root, "acme", "mine", "drop", "box") });
      for (const folder of ["acme", "acme/mine/drop", "acme/mine/drop/box"]) {
        const stat = fs.statSync(path.join(root, folder));
        expect(stat, folder).to.include({ uid: ORG_ID, gid: WEB_GID });
        expect(stat.mode & 0o7777, folder).to.equal(0o2750);
      }
      expect(fs.statSync(path.join(root, "acme", "mine")).mode & 0o7777).to.equal(0o755);
      expect(owned.orgFolder("acme")).to.equal(path.join(root, "acme"));
    });

    it("refuses a folder that is a symlink, or reached through one, and changes nothing there", async function () {
      const other = path.join(root, "other", "www");
      const before = fs.statSync(other);
      fs.symlinkSync(other, path.join(root, "acme", "swapped"));
      fs.symlinkSync(path.join(root, "other"), path.join(root, "acme", "via"));
      expect(await owned.prepare("acme", "swapped", ORG_ID)).to.include({ ok: false });
      expect(await owned.prepare("acme", "via/www", ORG_ID)).to.include({ ok: false });
      const after = fs.statSync(other);
      expect({ uid: after.uid, gid: after.gid, mode: after.mode }).to.deep.equal({
        uid: before.uid,
        gid: before.gid,
        mode: before.mode,
      });
    });

    it("only resolves where the agent owns nothing (no web group)", async function () {
      expect(await content.prepare("acme", "not-yet", ORG_ID)).to.deep.equal({
        ok: true,
        path: path.join(root, "acme", "not-yet"),
      });
      expect(fs.existsSync(path.join(root, "acme", "not-yet"))).to.equal(false);
    });
  });

  it("refuses a content root whose path nginx configuration could not hold", function () {
    const odd = path.join(work, "with space");
    expect(() => new ContentRoot(odd)).to.throw(/content root/);
  });

  describe("the load balancer's check file", function () {
    const checkFile = (folder: string) => path.join(folder, SITE_CHECK_PATH);

    it("is written into an existing document root, and rewritten when it differs", async function () {
      const www = path.join(root, "acme", "www");
      expect(await writeSiteCheck(www, siteCheckText("acme", "www"))).to.equal(undefined);
      expect(fs.readFileSync(checkFile(www), "utf8")).to.equal("lbhosting acme www\n");
      fs.writeFileSync(checkFile(www), "edited\n");
      await writeSiteCheck(www, siteCheckText("acme", "www"));
      expect(fs.readFileSync(checkFile(www), "utf8")).to.equal("lbhosting acme www\n");
      expect(fs.readdirSync(path.dirname(checkFile(www)))).to.deep.equal(["health"]);
    });

    it("is not written where the document root is missing (an unmounted NAS must fail the check)", async function () {
      const missing = path.join(root, "acme", "not-yet");
      expect(await writeSiteCheck(missing, "x\n")).to.equal("no document root");
      expect(fs.existsSync(missing)).to.equal(false);
    });

    it("never follows a symlink a tenant planted at its folder or its name", async function () {
      const www = path.join(root, "acme", "www");
      const victim = path.join(work, "outside", "victim");
      fs.writeFileSync(victim, "precious\n");
      fs.mkdirSync(path.join(www, ".well-known"));
      fs.symlinkSync(path.join(work, "outside"), path.join(www, ".well-known", "lbhosting"));
      expect(await writeSiteCheck(www, "x\n"))
        .to.have.property("refused")
        .that.matches(/symlink/);
      expect(fs.readdirSync(path.join(work, "outside"))).to.deep.equal(["victim"]);

      fs.rmSync(path.join(www, ".well-known", "lbhosting"));
      fs.mkdirSync(path.join(www, ".well-known", "lbhosting"));
      fs.symlinkSync(victim, checkFile(www));
      expect(await writeSiteCheck(www, "x\n")).to.equal(undefined);
      expect(fs.lstatSync(checkFile(www)).isFile(), "the symlink is replaced, not followed").to.equal(true);
      expect(fs.readFileSync(victim, "utf8")).to.equal("precious\n");
    });
  });
});
