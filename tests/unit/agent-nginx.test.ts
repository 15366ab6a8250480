/**
 * Site rendering and staging on a real folder, without an nginx binary (validation against a
 * real nginx is in tests/integration/agent-nginx.test.ts).
 */
import { expect } from "chai";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { NginxSites, ownLines, renderSite, siteFileName, siteScope } from "../../agent/src/render/nginx/sites";

describe("agent nginx sites", function () {
  let dir: string;

  beforeEach(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "lbh-sites-"));
  });

  afterEach(function () {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("renders one server block with the names, root, listen address and X-Served-By", function () {
    const text = renderSite({
      agentName: "web-1",
      listen: "127.0.1.2:8080",
      org: "acme",
      service: "www",
      domains: ["www.acme.test", "acme.test"],
      root: "/srv/nas/acme/www",
      orgFolder: "/srv/nas/acme",
    });
    expect(text).to.include("    listen 127.0.1.2:8080;\n");
    expect(text).to.include("    server_name www.acme.test acme.test;\n");
    expect(text).to.include('    root "/srv/nas/acme/www";\n');
    // nginx follows a symlink below the org's folder only to what the symlink's owner owns.
    expect(text).to.include("    disable_symlinks if_not_owner from=/srv/nas/acme;\n");
    expect(text).to.include('    add_header X-Served-By "web-1" always;\n');
    expect(text).to.include("    location = /.well-known/lbhosting/health {\n        access_log off;\n");
    expect(text.match(/server \{/g)).to.have.length(1);
  });

  it("tells a tenant only nginx's words about its own sites, never another org's file or values", function () {
    const own = (file: string) => file.startsWith("/var/lib/lbhosting/nginx/lbh.acme.");
    const output = [
      'nginx: [emerg] unknown directive "x" in /var/lib/lbhosting/nginx/lbh.acme.www.conf:5',
      "nginx: [emerg] a duplicate listen 127.0.0.1:80 in /var/lib/lbhosting/nginx/lbh.bravo.www.conf:3",
      'nginx: [warn] conflicting server name "www.bravo.test" on 127.0.0.1:80, ignored',
      "nginx: [emerg] could not build server_names_hash, you should increase server_names_hash_bucket_size: 64",
    ].join("\n");
    const shown = ownLines(output, own);
    expect(shown).to.include("lbh.acme.www.conf:5").and.include("server_names_hash_bucket_size");
    expect(shown).to.not.include("bravo");
    expect(ownLines(output.split("\n")[1], own)).to.equal(
      "the reason names other sites on this node (see the agent's log)",
    );
  });

  it("names files so that no two (org, service) pairs collide", function () {
    expect(siteFileName("a--b", "c")).to.not.equal(siteFileName("a", "b--c"));
    expect(siteScope("acme")(siteFileName("acme", "www"))).to.equal(true);
    expect(siteScope("acme")(siteFileName("acme-2", "www"))).to.equal(false);
    expect(siteScope()("unrelated.conf")).to.equal(false);
  });

  it("stages exactly the desired files of one org, leaves others alone, and can restore", async function () {
    const sites = new NginxSites(dir, undefined, () => undefined);
    fs.writeFileSync(path.join(dir, "lbh.acme.old.conf"), "old\n");
    fs.writeFileSync(path.join(dir, "lbh.other.www.conf"), "other\n");
    fs.writeFileSync(path.join(dir, "hand-written.conf"), "mine\n");
    const staged = await sites.stage([
      { scope: siteScope("acme"), desired: new Map([["lbh.acme.www.conf", "new\n"]]) },
    ]);
    expect(staged.changed).to.equal(true);
    expect(fs.readdirSync(dir).sort()).to.deep.equal(["hand-written.conf", "lbh.acme.www.conf", "lbh.other.www.conf"]);
    await staged.restore();
    expect(fs.readdirSync(dir).sort()).to.deep.equal(["hand-written.conf", "lbh.acme.old.conf", "lbh.other.www.conf"]);
    expect(fs.readFileSync(path.join(dir, "lbh.acme.old.conf"), "utf8")).to.equal("old\n");
  });

  it("lists the folder once: later stages touch only their scope's files, known from memory", async function () {
    fs.writeFileSync(path.join(dir, "lbh.other.www.conf"), "other\n");
    const sites = new NginxSites(dir, undefined, () => undefined);
    const change = { scope: siteScope("acme"), desired: new Map([["lbh.acme.www.conf", "acme\n"]]) };
    expect((await sites.stage([change])).changed).to.equal(true);
    // A file the agent did not write, after its start: a write does not list the folder, so it
    // neither sees nor removes it (the next start's render does).
    fs.writeFileSync(path.join(dir, "lbh.acme.stray.conf"), "stray\n");
    expect((await sites.stage([change])).changed).to.equal(false);
    expect(fs.readdirSync(dir).sort()).to.deep.equal([
      "lbh.acme.stray.conf",
      "lbh.acme.www.conf",
      "lbh.other.www.conf",
    ]);
    const restarted = new NginxSites(dir, undefined, () => undefined);
    expect((await restarted.stage([change])).changed).to.equal(true);
    expect(fs.readdirSync(dir).sort()).to.deep.equal(["lbh.acme.www.conf", "lbh.other.www.conf"]);
  });

  it("reports no change when the files are already as desired", async function () {
    const sites = new NginxSites(dir, undefined, () => undefined);
    const change = { scope: siteScope("acme"), desired: new Map([["lbh.acme.www.conf", "same\n"]]) };
    await sites.stage([change]);
    expect((await sites.stage([change])).changed).to.equal(false);
  });
});
