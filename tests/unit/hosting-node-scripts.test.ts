/**
 * HostingNode's server scripts: valid POSIX sh, no secret in them, and settings that could
 * break out of the shell or unit text refused with the field named.
 */
import { execFile, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import { expect } from "chai";
import { versionFromPackageFile } from "../../sdk/hosting-node";
import { agentScripts, localHealthUrl, shellQuote, tlsServerName } from "../../sdk/hosting-node/scripts";
import { checkAgentTls, checkHostingNodeSettings, type AgentInstall } from "../../sdk/hosting-node/settings";
import { makeAgentCa, type AgentCertificate } from "../support/agent-tls";

const install: AgentInstall = {
  name: "web1",
  version: "0.1.0",
  installDir: "/opt/lbhosting/web1",
  dataDir: "/var/lib/lbhosting/web1",
  packageFile: "/opt/lbhosting/web1/packages/lbhosting-agent-0.1.0.tgz",
  packageSha256: "0".repeat(64),
  listen: "0.0.0.0:8443",
  role: "hosting",
  contentRoot: "/mnt/nas",
  nginx: { bin: "/usr/sbin/nginx", httpListen: "10.0.0.11:80" },
  orgIdRange: "300000-399999",
  ftp: { purePwBin: "/usr/bin/pure-pw" },
  purgeData: false,
  healthTimeoutSeconds: 60,
};

const execFileAsync = promisify(execFile);

/** A load-balancer host: the agent next to HAProxy, every HAProxy path left to its default. */
const balancer: AgentInstall = {
  ...install,
  name: "lb1",
  installDir: "/opt/lbhosting/lb1",
  dataDir: "/var/lib/lbhosting/lb1",
  packageFile: "/opt/lbhosting/lb1/packages/lbhosting-agent-0.1.0.tgz",
  role: "load-balancer",
  nginx: undefined,
  ftp: undefined,
  haproxy: { bin: "/usr/sbin/haproxy", httpListen: "203.0.113.10:80" },
};

/** Runs the install script's definitions (everything before install.sh's first step), then `tail`. */
const runDefinitions = (script: string, tail: string) => {
  const definitions = script.split("\numask 077\n")[0];
  return spawnSync("sh", ["-c", `${definitions}\n${tail}`], { encoding: "utf8", timeout: 10_000 });
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
    expect(scripts.install).to.include("'--content-root' '/mnt/nas' '--org-id-range' '300000-399999'");
    // The data folder is the agent's alone, whatever an older install left.
    expect(scripts.install).to.include('chmod 700 "$DATA_DIR"');
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
        ftp: { purePwBin: "/usr/bin/pure-pw", readonlyUid: 0 },
      }),
    ).to.throw(
      /HostingNode web1: name .*; installDir .*; dataDir .*; listen .*; nginx\.bin "nginx" must be an absolute path.*; ftp\.readonlyUid must be a positive integer/,
    );
    expect(() => checkHostingNodeSettings("web1", install)).to.not.throw();
  });

  it("refuses the FTP ids of earlier versions, a bad org id range, and serving without a content root", () => {
    const ftp = { purePwBin: "/usr/bin/pure-pw", uid: 2001, gid: 2001 } as AgentInstall["ftp"];
    expect(() => checkHostingNodeSettings("web1", { ...install, ftp })).to.throw(
      /HostingNode web1: ftp\.uid is gone: .*orgIdRange; ftp\.gid is gone/,
    );
    expect(() => checkHostingNodeSettings("web1", { ...install, orgIdRange: "10-20" })).to.throw(
      /orgIdRange "10-20" must start at 1000 or above/,
    );
    expect(() => checkHostingNodeSettings("web1", { ...install, contentRoot: undefined })).to.throw(
      /contentRoot is required with nginx or ftp/,
    );
    expect(() => checkHostingNodeSettings("web1", { ...install, webGid: 0 })).to.throw(/webGid must be a positive/);
  });

  it("reads the version from npm pack's file name, and asks wildcard listens on loopback", () => {
    expect(versionFromPackageFile("/tmp/lbhosting-agent-1.2.3-rc.1.tgz")).to.equal("1.2.3-rc.1");
    expect(() => versionFromPackageFile("/tmp/agent.tgz")).to.throw(/agentVersion/);
    expect(localHealthUrl("[::]:8443")).to.equal("http://[::1]:8443/v1/health");
    expect(localHealthUrl("10.0.0.11:8443")).to.equal("http://10.0.0.11:8443/v1/health");
  });

  it("pass a node behind the load balancer its FTP listen address, passive range, read-only ids and session limit", () => {
    const ftp = {
      purePwBin: "/usr/bin/pure-pw",
      ftpListen: "10.0.0.11:21",
      passivePorts: [30000, 30099] as [number, number],
      readonlyUid: 2002,
      maxSessions: 50,
      tls: "require" as const,
    };
    const scripts = agentScripts({ ...install, ftp });
    expect(syntaxError(scripts.install)).to.equal("");
    expect(scripts.install).to.include(
      "'--ftp-listen' '10.0.0.11:21' '--ftp-passive-ports' '30000:30099' '--ftp-readonly-uid' '2002' '--ftp-max-sessions' '50' '--ftp-tls' 'require'",
    );
    // A hosting node runs no HAProxy, and stops one it ran as a load balancer before.
    expect(scripts.install).to.not.include("--haproxy");
    expect(scripts.install).to.not.include("start_haproxy()");
    expect(scripts.install).to.include("else remove_haproxy; fi");
  });

  it("set up a load balancer: the agent drives HAProxy, whose main file has the listener-handing stats socket", () => {
    const scripts = agentScripts(balancer);
    expect(syntaxError(scripts.install)).to.equal("");
    expect(syntaxError(scripts.remove)).to.equal("");
    expect(scripts.install).to.include(
      "'--http-listen' '203.0.113.10:80' '--haproxy-bin' '/usr/sbin/haproxy' " +
        "'--haproxy-main-conf' '/opt/lbhosting/lb1/haproxy/haproxy.cfg' " +
        "'--haproxy-master-socket' '/opt/lbhosting/lb1/haproxy/master.sock' " +
        "'--haproxy-conf' '/var/lib/lbhosting/lb1/haproxy/lbhosting.cfg'",
    );
    const https = agentScripts({ ...balancer, haproxy: { ...balancer.haproxy!, httpsListen: "203.0.113.10:443" } });
    expect(https.install).to.include("'--haproxy-bin' '/usr/sbin/haproxy' '--https-listen' '203.0.113.10:443'");
    const mainConf = runDefinitions(scripts.install, 'printf %s "$HAPROXY_MAIN_CONF_TEXT"');
    expect(mainConf.stdout.split("\n").slice(2)).to.deep.equal([
      "global",
      "    stats socket /opt/lbhosting/lb1/haproxy/admin.sock mode 600 level admin expose-fd listeners",
      "    stats timeout 30s",
    ]);
    const unit = runDefinitions(scripts.install, "write_haproxy_unit");
    expect(unit.stderr).to.equal("");
    expect(unit.stdout).to.include("After=network-online.target lbhosting-agent-lb1.service\n");
    expect(unit.stdout).to.include("Type=notify\n");
    expect(unit.stdout).to.include(
      "ExecStart=/usr/sbin/haproxy -Ws -S /opt/lbhosting/lb1/haproxy/master.sock,mode,600 " +
        "-f /opt/lbhosting/lb1/haproxy/haproxy.cfg -f /var/lib/lbhosting/lb1/haproxy/lbhosting.cfg\n",
    );
    const supervised = runDefinitions(scripts.install, 'printf %s "$HAPROXY_ARGS"');
    expect(supervised.stdout).to.equal(
      "-W -db -S /opt/lbhosting/lb1/haproxy/master.sock,mode,600 " +
        "-f /opt/lbhosting/lb1/haproxy/haproxy.cfg -f /var/lib/lbhosting/lb1/haproxy/lbhosting.cfg",
    );
    // HAProxy starts once the agent answered (its routes file exists), never before.
    const body = scripts.install.slice(scripts.install.indexOf("\numask 077\n"));
    expect(body.indexOf('wait-healthy.cjs" "$HEALTH_URL"')).to.be.lessThan(body.indexOf("start_haproxy\n"));
    expect(body.indexOf("write_haproxy_main_conf;")).to.be.lessThan(body.indexOf("write_supervisor >"));
  });

  it("delete stops the supervised agent and HAProxy and removes HAProxy's files; the data stays", async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "lbh-unit-remove-"));
    const installDir = path.join(root, "opt");
    const dataDir = path.join(root, "data");
    fs.mkdirSync(path.join(installDir, "haproxy"), { recursive: true });
    fs.mkdirSync(path.join(dataDir, "haproxy"), { recursive: true });
    const mainConf = path.join(installDir, "haproxy", "haproxy.cfg");
    const outsideMainConf = path.join(root, "haproxy.cfg");
    fs.writeFileSync(outsideMainConf, "global\n");
    fs.writeFileSync(path.join(dataDir, "haproxy", "lbhosting.cfg"), "# routes\n");
    // Stand-ins for the two supervisors, each leading its own process group as setsid makes them.
    const sleeper = (pidFile: string) => {
      const child = spawn("sleep", ["60"], { detached: true, stdio: "ignore" });
      fs.writeFileSync(pidFile, String(child.pid));
      return child;
    };
    const children = [sleeper(path.join(installDir, "agent.pid")), sleeper(path.join(installDir, "haproxy.pid"))];
    // Whether each has exited, waiting at most 5 s for the exit to be reported.
    const exited = children.map(
      (child) =>
        new Promise<boolean>((resolve) => {
          child.once("exit", () => resolve(true));
          setTimeout(() => resolve(child.exitCode !== null || child.signalCode !== null), 5000).unref();
        }),
    );
    try {
      const node = {
        ...balancer,
        installDir,
        dataDir,
        haproxy: { ...balancer.haproxy!, mainConf: outsideMainConf },
      };
      // Asynchronously: the stand-ins are our children, reaped only while our event loop runs.
      const result = await execFileAsync("sh", ["-c", agentScripts(node).remove], { timeout: 30_000 });
      expect(result.stderr).to.equal("");
      expect(await Promise.all(exited), "the agent's and HAProxy's supervisors stopped").to.deep.equal([true, true]);
      expect(fs.existsSync(installDir)).to.equal(false);
      expect(fs.existsSync(outsideMainConf), "HAProxy's main file").to.equal(false);
      expect(fs.existsSync(mainConf)).to.equal(false);
      expect(fs.readFileSync(path.join(dataDir, "haproxy", "lbhosting.cfg"), "utf8")).to.equal("# routes\n");
    } finally {
      for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      fs.rmSync(root, { recursive: true, force: true });
    }
  });

  it("refuses a load balancer without HAProxy or with sites, and HAProxy on a hosting node", () => {
    expect(() => checkHostingNodeSettings("lb1", { ...balancer, haproxy: undefined })).to.throw(
      /HostingNode lb1: haproxy is required with role "load-balancer"/,
    );
    expect(() =>
      checkHostingNodeSettings("lb1", { ...balancer, nginx: install.nginx, ftp: { purePwBin: "/usr/bin/pure-pw" } }),
    ).to.throw(/nginx is for hosting nodes, not role "load-balancer"; ftp is for hosting nodes/);
    expect(() => checkHostingNodeSettings("web1", { ...install, haproxy: balancer.haproxy })).to.throw(
      /HostingNode web1: haproxy needs role "load-balancer"/,
    );
    expect(() => checkHostingNodeSettings("lb1", { ...balancer, role: "balancer" as "hosting" })).to.throw(
      /HostingNode lb1: role "balancer" must be "hosting" or "load-balancer"/,
    );
    expect(() => checkHostingNodeSettings("lb1", balancer)).to.not.throw();
  });

  it("refuses HAProxy and FTP settings that could break out of the scripts or that the agent would refuse", () => {
    expect(() =>
      checkHostingNodeSettings("lb1", {
        ...balancer,
        haproxy: {
          bin: "/usr/sbin/haproxy -d",
          httpListen: "203.0.113.10:80\n    stats socket /tmp/open",
          mainConf: "/etc/haproxy/main.cfg,mode,666",
          masterSocket: "relative.sock",
        },
      }),
    ).to.throw(/HostingNode lb1: haproxy\.bin .*; haproxy\.httpListen .*; haproxy\.mainConf .*; haproxy\.masterSocket/);
    const ftp = { purePwBin: "/usr/bin/pure-pw", passivePorts: [30099, 30000] as [number, number], maxSessions: 0 };
    expect(() => checkHostingNodeSettings("web1", { ...install, ftp: { ...ftp, readonlyUid: 0 } })).to.throw(
      /ftp\.passivePorts must be \[low, high\] with low <= high; ftp\.readonlyUid must be a positive integer; ftp\.maxSessions must be at least 2 \(one session is kept for the load balancer.s health check\)/,
    );
  });
});

describe("HostingNode scripts for an HTTPS agent", function () {
  this.timeout(30_000); // openssl, and node on the server side
  /** A loopback address of this suite's own (tests' range). */
  const HOST = "127.0.80.1";
  let dir: string;
  let cert: AgentCertificate;
  let otherKey: string;
  /** A certificate of another CA's. */
  let stranger: AgentCertificate;
  let tlsInstall: AgentInstall;

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "lbh-unit-node-tls-"));
    const ca = makeAgentCa(dir, "unit");
    cert = ca.issue("web1", HOST);
    otherKey = ca.issue("web2", "127.0.80.2").privateKey;
    stranger = makeAgentCa(dir, "other").issue("web1", HOST);
    tlsInstall = {
      ...install,
      installDir: path.join(dir, "opt"),
      listen: `${HOST}:8443`,
      tls: { certificate: cert.certificate, url: `https://${HOST}:8443` },
    };
  });

  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("start the agent with --tls-cert/--tls-key next to its token and ask its health over HTTPS; the key is not in them", () => {
    const scripts = agentScripts(tlsInstall);
    expect(syntaxError(scripts.install)).to.equal("");
    expect(scripts.install).to.include(`'--tls-cert' '${dir}/opt/tls-cert.pem' '--tls-key' '${dir}/opt/tls-key.pem'`);
    expect(scripts.install).to.include(`'https://${HOST}:8443/v1/health'`);
    expect(scripts.install).to.include(`TLS_NAME='${HOST}'`);
    expect(scripts.install).to.include(cert.certificate.trim());
    expect(scripts.install).to.not.include(cert.privateKey.split("\n")[1]);
    // Plain HTTP stays as it was.
    expect(agentScripts(install).install).to.not.include("--tls-cert");
    expect(tlsServerName("https://[2001:db8::1]:8443")).to.equal("2001:db8::1");
    expect(tlsServerName("https://node1.example.com:8443/")).to.equal("node1.example.com");
  });

  it("write the token and the key from stdin into 0600 files, and nothing of them to the output", () => {
    // Everything up to the npm install, stopped by a missing nginx after the stdin was read.
    const node = { ...tlsInstall, nginx: { bin: "/nonexistent/nginx" }, ftp: undefined };
    const checks = agentScripts(node).install.split("\numask 022")[0];
    const result = spawnSync("sh", ["-c", checks], {
      input: `the-token\n${cert.privateKey}`,
      encoding: "utf8",
      timeout: 30_000,
    });
    expect(result.stderr).to.match(/nginx is not installed at \/nonexistent\/nginx/);
    expect(result.stdout + result.stderr).to.not.include("the-token");
    const token = path.join(dir, "opt", "token.next");
    const key = path.join(dir, "opt", "tls-key.pem.next");
    expect(fs.readFileSync(token, "utf8")).to.equal("the-token\n");
    expect(fs.readFileSync(key, "utf8")).to.equal(cert.privateKey);
    for (const file of [token, key]) expect(fs.statSync(file).mode & 0o777, file).to.equal(0o600);

    const keyless = spawnSync("sh", ["-c", checks], { input: "the-token\n", encoding: "utf8", timeout: 30_000 });
    expect(keyless.stderr.trim()).to.match(/: the TLS key is empty$/);
  });

  it("the health poller trusts the agent's own certificate for its url's host, and nothing else", async () => {
    const poller = path.join(__dirname, "..", "..", "sdk", "hosting-node", "scripts", "wait-healthy.cjs");
    const server = https.createServer({ cert: cert.certificate, key: cert.privateKey }, (_request, answer) =>
      answer.end(JSON.stringify({ name: "web1", version: "0.1.0" })),
    );
    await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
    const url = `https://${HOST}:${(server.address() as AddressInfo).port}/v1/health`;
    const poll = (certFile: string, name: string) =>
      execFileAsync("node", [poller, url, "0.1.0", "2", certFile, name], { timeout: 20_000 }).then(
        (done) => done.stdout.trim(),
        (error: { stderr: string }) => error.stderr.trim(),
      );
    try {
      expect(await poll(cert.certificateFile, HOST)).to.equal('{"name":"web1","version":"0.1.0"}');
      // Another certificate as the anchor, or a name the certificate does not carry: no answer.
      expect(await poll(stranger.certificateFile, HOST)).to.match(
        /within 2 s \(last: UNABLE_TO_GET_ISSUER_CERT_LOCALLY\)$/,
      );
      expect(await poll(cert.certificateFile, "node1.example.com")).to.match(
        /\(last: ERR_TLS_CERT_ALTNAME_INVALID: the agent's certificate does not name node1\.example\.com, the host of the node's url\)$/,
      );
    } finally {
      server.close();
    }
  });

  it("refuses a certificate or key that is not PEM, one without the other, a key not the certificate's, without quoting them", () => {
    const refusal = (tls: { certificate?: string; privateKey?: string }) => {
      try {
        checkAgentTls("web1", tls);
        return "accepted";
      } catch (error) {
        return (error as Error).message;
      }
    };
    expect(refusal({ certificate: cert.certificate, privateKey: cert.privateKey })).to.equal("accepted");
    const broken = refusal({ certificate: "not a certificate", privateKey: "secret-material-123" });
    expect(broken).to.equal(
      'HostingNode web1: tls.certificate must be PEM certificates ("-----BEGIN CERTIFICATE-----"): the agent\'s first, then its chain; ' +
        'tls.privateKey must be an unencrypted PEM private key ("-----BEGIN PRIVATE KEY-----", or RSA/EC)',
    );
    const truncated = cert.privateKey.slice(0, 120);
    expect(refusal({ certificate: cert.certificate, privateKey: truncated })).to.match(/tls\.privateKey must be/);
    expect(refusal({ certificate: cert.certificate })).to.equal(
      "HostingNode web1: tls.privateKey is required with tls.certificate",
    );
    expect(refusal({ privateKey: cert.privateKey })).to.equal(
      "HostingNode web1: tls.certificate is required with tls.privateKey",
    );
    const mismatch = refusal({ certificate: cert.certificate, privateKey: otherKey });
    expect(mismatch).to.equal("HostingNode web1: tls.privateKey is not the key of tls.certificate");
    for (const message of [broken, mismatch]) {
      expect(message).to.not.include("secret-material");
      expect(message).to.not.include(otherKey.split("\n")[1]);
    }
    // The install's url must be https with tls; the certificate is not quoted either.
    expect(() =>
      checkHostingNodeSettings("web1", { ...tlsInstall, tls: { certificate: "junk", url: "http://10.0.0.1:8443" } }),
    ).to.throw(
      /^HostingNode web1: tls\.certificate must be PEM certificates .*; url must be an https:\/\/ URL with tls$/,
    );
  });
});
