/**
 * HostingNode's server scripts: valid POSIX sh, no secret in them, and settings that could
 * break out of the shell or unit text refused with the field named.
 */
import { spawnSync } from "node:child_process";
import { expect } from "chai";
import { versionFromPackageFile } from "../../sdk/hosting-node";
import { agentScripts, localHealthUrl, shellQuote } from "../../sdk/hosting-node/scripts";
import { checkHostingNodeSettings, type AgentInstall } from "../../sdk/hosting-node/settings";

const install: AgentInstall = {
  name: "web1",
  version: "0.1.0",
  installDir: "/opt/lbhosting/web1",
  dataDir: "/var/lib/lbhosting/web1",
  packageFile: "/opt/lbhosting/web1/packages/lbhosting-agent-0.1.0.tgz",
  packageSha256: "0".repeat(64),
  listen: "0.0.0.0:8443",
  contentRoot: "/mnt/nas",
  nginx: { bin: "/usr/sbin/nginx", httpListen: "10.0.0.11:80" },
  ftp: { purePwBin: "/usr/bin/pure-pw", uid: 2001, gid: 2001 },
  purgeData: false,
  healthTimeoutSeconds: 60,
};

const syntaxError = (script: string): string => {
  const result = spawnSync("sh", ["-n"], { input: script, encoding: "utf8", timeout: 10_000 });
  return result.status === 0 ? "" : result.stderr;
};

describe("HostingNode scripts", () => {
  it("are valid sh, pass the agent its token only as a file, and keep dataDir unless purgeData", () => {
    const scripts = agentScripts(install);
    expect(syntaxError(scripts.install)).to.equal("");
    expect(syntaxError(scripts.remove)).to.equal("");
    expect(scripts.install).to.include("--token-file' '/opt/lbhosting/web1/token'");
    expect(scripts.install).to.include("'--nginx-bin' '/usr/sbin/nginx'");
    expect(scripts.install).to.include("'--ftp-uid' '2001'");
    expect(scripts.install).to.include("'http://127.0.0.1:8443/v1/health'");
    expect(scripts.install).to.not.match(/LBHOSTING_AGENT_TOKEN/);
    expect(scripts.remove).to.not.include('rm -rf "$DATA_DIR"');
    expect(agentScripts({ ...install, purgeData: true }).remove).to.include('rm -rf "$DATA_DIR"');
  });

  it("a failed prerequisite names the server and what to install", function () {
    this.timeout(30_000); // runs node twice for the version check
    const missing = { ...install, nginx: { bin: "/nonexistent/nginx" }, ftp: undefined };
    // Everything up to the npm install: the token from stdin, then the prerequisite checks.
    const checks = agentScripts({ ...missing, installDir: "/tmp/lbh-unit-hosting-node" }).install.split(
      "\numask 022",
    )[0];
    const result = spawnSync("sh", ["-c", checks], {
      input: "a-token-for-the-unit-test",
      encoding: "utf8",
      env: { ...process.env, SSH_CONNECTION: "127.0.0.9 50000 192.0.2.11 22" },
      timeout: 30_000,
    });
    expect(result.status).to.equal(1);
    expect(result.stderr.trim()).to.equal(
      "HostingNode web1 on 192.0.2.11:22: nginx is not installed at /nonexistent/nginx: install it (apt-get install nginx)",
    );
    spawnSync("rm", ["-rf", "/tmp/lbh-unit-hosting-node"]);
  });

  it("quotes any word for sh", () => {
    const word = `it's "$HOME" \`id\``;
    const result = spawnSync("sh", ["-c", `printf %s ${shellQuote(word)}`], { encoding: "utf8", timeout: 10_000 });
    expect(result.stdout).to.equal(word);
  });

  it("refuses settings that could break out of the scripts, naming each field", () => {
    expect(() =>
      checkHostingNodeSettings("web1", {
        ...install,
        name: "web1; reboot",
        installDir: "/opt/$(id)",
        dataDir: "/var/lib/../etc",
        listen: "0.0.0.0:8443\nExecStartPre=/bin/sh",
        nginx: { bin: "nginx" },
        ftp: { purePwBin: "/usr/bin/pure-pw", uid: 0 },
      }),
    ).to.throw(
      /HostingNode web1: name .*; installDir .*; dataDir .*; listen .*; nginx\.bin "nginx" must be an absolute path.*; ftp\.uid must be a positive integer/,
    );
    expect(() => checkHostingNodeSettings("web1", install)).to.not.throw();
  });

  it("refuses an FTP uid without a gid, which would leave accounts in root's group", () => {
    const ftp = { purePwBin: "/usr/bin/pure-pw", uid: 2001 };
    expect(() => checkHostingNodeSettings("web1", { ...install, ftp })).to.throw(
      /HostingNode web1: ftp\.gid .*must be given together with ftp\.uid/,
    );
  });

  it("reads the version from npm pack's file name, and asks wildcard listens on loopback", () => {
    expect(versionFromPackageFile("/tmp/lbhosting-agent-1.2.3-rc.1.tgz")).to.equal("1.2.3-rc.1");
    expect(() => versionFromPackageFile("/tmp/agent.tgz")).to.throw(/agentVersion/);
    expect(localHealthUrl("[::]:8443")).to.equal("http://[::1]:8443/v1/health");
    expect(localHealthUrl("10.0.0.11:8443")).to.equal("http://10.0.0.11:8443/v1/health");
  });
});
