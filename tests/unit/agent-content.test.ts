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
