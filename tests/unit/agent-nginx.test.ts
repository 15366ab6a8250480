/**
 * Site rendering and staging on a real folder, without an nginx binary (validation against a
 * real nginx is in tests/integration/agent-nginx.test.ts).
 */
import { expect } from "chai";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {
  NginxSites,
  SITES_FILE,
  type SiteSpec,
  ownLines,
  renderSites,
  siteKey,
  siteScope,
} from "../../agent/src/render/nginx/sites";

const NODE = { agentName: "web-1", listen: "127.0.1.2:8080", httpsListen: "127.0.1.2:8443" };
const site = (org: string, domains: string[], root = "www"): SiteSpec => ({
  domains,
  root: `/srv/nas/${org}/${root}`,
  orgFolder: `/srv/nas/${org}`,
});

describe("agent nginx sites", function () {
  let dir: string;
  const file = () => path.join(dir, SITES_FILE);
  const text = () => fs.readFileSync(file(), "utf8");

  beforeEach(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "lbh-sites-"));
  });

  afterEach(function () {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("renders one server block for every site: names, maps to each root and org folder, listen, X-Served-By", function () {
    const { text } = renderSites(
      NODE,
      new Map([
        [siteKey("acme", "www"), site("acme", ["www.acme.test", "acme.test"])],
        [siteKey("bravo", "www"), site("bravo", ["bravo.test"], "public")],
      ]),
    );
    expect(text.match(/server \{/g)).to.have.length(1);
    expect(text).to.include("    listen 127.0.1.2:8080;\n");
    expect(text).to.include("    server_name www.acme.test acme.test;\n    server_name bravo.test;\n");
    expect(text).to.include(
      'map $host $lbh_root {\n    default "";\n    www.acme.test "/srv/nas/acme/www";\n' +
        '    acme.test "/srv/nas/acme/www";\n    bravo.test "/srv/nas/bravo/public";\n}\n',
    );
    expect(text).to.include('    bravo.test "/srv/nas/bravo";\n');
    expect(text).to.include("    root $lbh_root;\n");
    // nginx follows a symlink below the org's folder only to what the symlink's owner owns.
    expect(text).to.include("    disable_symlinks if_not_owner from=$lbh_org_folder;\n");
    // A host no site names never gets a root of "" (a path from the file system's root).
    expect(text).to.include('    if ($lbh_root = "") {\n        return 404;\n    }\n');
    expect(text).to.include('    add_header X-Served-By "web-1" always;\n');
    expect(text).to.include("    location = /.well-known/lbhosting/health {\n        access_log off;\n");
  });

  it("adds an HTTPS server block only for sites with TLS: certificate and key chosen by SNI, each PEM line the site's own", function () {
    const pem = (label: string) => `-----BEGIN ${label}-----\nQUJD\n-----END ${label}-----\n`;
    const tls = { certificate: pem("CERTIFICATE"), privateKey: pem("PRIVATE KEY"), httpsRedirect: true, hsts: false };
    expect(renderSites(NODE, new Map([[siteKey("acme", "www"), site("acme", ["acme.test"])]])).text).not.to.include(
      "ssl",
    );
    const rendered = renderSites(
      NODE,
      new Map([
        [siteKey("acme", "www"), { ...site("acme", ["acme.test"]), tls }],
        [siteKey("bravo", "www"), site("bravo", ["bravo.test"])],
      ]),
    );
    const { text, owners } = rendered;
    expect(text.match(/server \{/g)).to.have.length(2);
    expect(text).to.include("    listen 127.0.1.2:8443 ssl http2;\n    server_name acme.test;\n");
    expect(text).to.include(
      'map $ssl_server_name $lbh_tls_key {\n    default "";\n    acme.test "-----BEGIN PRIVATE KEY-----\\nQUJD\\n-----END PRIVATE KEY-----\\n";\n}\n',
    );
    expect(text).to.include('map $host $lbh_https_redirect {\n    default "";\n    acme.test "1";\n}\n');
    expect(text).to.include("    ssl_certificate data:$lbh_tls_certificate;\n");
    const lines = text.split("\n");
    const keyLine = lines.findIndex((line) => line.includes("PRIVATE KEY"));
    expect(owners[keyLine]).to.equal(siteKey("acme", "www"));
    expect(text).not.to.match(/bravo\.test "-----BEGIN/);
  });

  it("renders no server block without sites, and serves a domain listed twice by its first site only", function () {
    expect(renderSites(NODE, new Map()).text).to.not.include("server");
    const { text } = renderSites(
      NODE,
      new Map([
        [siteKey("acme", "b"), site("acme", ["shared.acme.test"], "b")],
        [siteKey("acme", "a"), site("acme", ["shared.acme.test", "a.acme.test"], "a")],
      ]),
    );
    expect(text.match(/ shared\.acme\.test "/g)).to.have.length(2); // once per map
    expect(text).to.include('    shared.acme.test "/srv/nas/acme/a";\n');
    expect(text).to.include("    server_name shared.acme.test a.acme.test;\n");
    expect(text).to.not.include("/srv/nas/acme/b");
  });

  it("tells a tenant only nginx's words about its own sites, never another org's lines, shared lines or values", function () {
    const rendered = renderSites(
      NODE,
      new Map([
        [siteKey("acme", "www"), site("acme", ["acme.test"])],
        [siteKey("bravo", "www"), site("bravo", ["bravo.test"])],
      ]),
    );
    const lineOf = (needle: string) => rendered.text.split("\n").findIndex((line) => line.includes(needle)) + 1;
    const sites = `/var/lib/lbhosting/nginx/${SITES_FILE}`;
    const own = (at: string, line: number) => at === sites && siteScope("acme")(rendered.owners[line - 1]);
    const output = [
      `nginx: [emerg] invalid value in ${sites}:${lineOf("server_name acme.test")}`,
      `nginx: [emerg] invalid value in ${sites}:${lineOf("server_name bravo.test")}`,
      `nginx: [emerg] invalid parameter in ${sites}:${lineOf("listen")}`,
      'nginx: [warn] conflicting server name "www.bravo.test" on 127.0.0.1:80, ignored',
      "nginx: [emerg] could not build map_hash, you should increase map_hash_bucket_size: 64",
    ].join("\n");
    const shown = ownLines(output, own);
    expect(shown.split("\n")).to.deep.equal([
      `nginx: [emerg] invalid value in ${sites}:${lineOf("server_name acme.test")}`,
      "nginx: [emerg] could not build map_hash, you should increase map_hash_bucket_size: 64",
    ]);
    expect(ownLines(output.split("\n")[1], own)).to.equal(
      "the reason names other sites on this node (see the agent's log)",
    );
  });

  it("keys sites so that no two (org, service) pairs collide, and scopes them by org", function () {
    expect(siteKey("a-b", "c")).to.not.equal(siteKey("a", "b-c"));
    expect(siteScope("acme")(siteKey("acme", "www"))).to.equal(true);
    expect(siteScope("acme")(siteKey("acme-2", "www"))).to.equal(false);
    expect(siteScope()(siteKey("acme-2", "www"))).to.equal(true);
  });

  it("stages one org's sites, keeps the others, and can restore the previous file", async function () {
    const sites = new NginxSites(dir, NODE, undefined, () => undefined);
    fs.writeFileSync(path.join(dir, "hand-written.conf"), "mine\n");
    await sites.stage([
      { scope: siteScope(), desired: new Map([[siteKey("other", "www"), site("other", ["other.test"])]]) },
    ]);
    const first = text();
    const staged = await sites.stage([
      { scope: siteScope("acme"), desired: new Map([[siteKey("acme", "www"), site("acme", ["acme.test"])]]) },
    ]);
    expect(staged.changed).to.equal(true);
    expect(text()).to.include("server_name acme.test;").and.include("server_name other.test;");
    await staged.restore();
    expect(text()).to.equal(first);
    expect(fs.readdirSync(dir).sort()).to.deep.equal(["hand-written.conf", SITES_FILE]);
    // The restored sites are what the next write starts from.
    await sites.stage([{ scope: siteScope("bravo"), desired: new Map() }]);
    expect(text()).to.equal(first);
  });

  it("replaces the one-file-per-site layout of earlier agents on its first render", async function () {
    fs.writeFileSync(path.join(dir, "lbh.acme.www.conf"), "server { }\n");
    fs.writeFileSync(path.join(dir, "lbh.gone.www.conf"), "server { }\n");
    const sites = new NginxSites(dir, NODE, undefined, () => undefined);
    const all = { scope: siteScope(), desired: new Map([[siteKey("acme", "www"), site("acme", ["acme.test"])]]) };
    const staged = await sites.stage([all]);
    expect(staged.changed).to.equal(true);
    expect(fs.readdirSync(dir)).to.deep.equal([SITES_FILE]);
    await staged.restore();
    expect(fs.readdirSync(dir).sort()).to.deep.equal(["lbh.acme.www.conf", "lbh.gone.www.conf"]);
  });

  it("reports no change when the file is already as desired, after a restart too", async function () {
    const all = { scope: siteScope(), desired: new Map([[siteKey("acme", "www"), site("acme", ["acme.test"])]]) };
    await new NginxSites(dir, NODE, undefined, () => undefined).stage([all]);
    const restarted = new NginxSites(dir, NODE, undefined, () => undefined);
    expect((await restarted.stage([all])).changed).to.equal(false);
    expect((await restarted.stage([{ ...all, scope: siteScope("acme") }])).changed).to.equal(false);
  });
});
