/**
 * The load-balancer route as rendered, and where the agent finds nginx's master pid to await a
 * reload (routing and draining through a real nginx are in tests/integration/agent-balancer.test.ts).
 */
import { expect } from "chai";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { renderBalancer } from "../../agent/balancer";
import { nginxPidFile } from "../../agent/reload-drain";

describe("agent load balancer: rendering and the nginx pid file", function () {
  let dir: string;
  const mainConf = (text: string) => {
    const file = path.join(dir, "nginx.conf");
    fs.writeFileSync(file, text);
    return file;
  };

  beforeEach(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "lbh-drain-"));
  });

  afterEach(function () {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("takes --nginx-pid-file as given", function () {
    expect(nginxPidFile({ bin: "nginx", pidFile: "/run/x.pid", mainConf: mainConf("pid /run/y.pid;\n") })).to.equal(
      "/run/x.pid",
    );
  });

  it("reads the main configuration's pid directive, relative to the prefix", function () {
    const conf = mainConf("# pid /commented/out.pid;\nuser www-data;\n  pid   logs/nginx.pid ;\nevents {}\n");
    expect(nginxPidFile({ bin: "nginx", mainConf: conf, prefix: "/srv/nginx" })).to.equal("/srv/nginx/logs/nginx.pid");
    expect(nginxPidFile({ bin: "nginx", mainConf: conf })).to.equal(undefined);
    expect(nginxPidFile({ bin: "nginx", mainConf: mainConf('pid "/run/nginx.pid";\n') })).to.equal("/run/nginx.pid");
  });

  it("knows no pid file without a main configuration or pid directive", function () {
    expect(nginxPidFile({ bin: "nginx" })).to.equal(undefined);
    expect(nginxPidFile({ bin: "nginx", mainConf: mainConf("events {}\n") })).to.equal(undefined);
    expect(nginxPidFile({ bin: "nginx", mainConf: path.join(dir, "missing.conf") })).to.equal(undefined);
  });

  it("renders a route as one upstream and one proxying server block", function () {
    const text = renderBalancer("lb-1", "127.0.8.3:80", "acme", {
      domains: ["www.acme.test", "acme.test"],
      backends: ["127.0.8.1:8080", "web-b.internal:80"],
    });
    expect(text).to.include("upstream lbh-balancer-acme {\n");
    expect(text).to.include("    server 127.0.8.1:8080 max_fails=1 fail_timeout=2s;\n");
    expect(text).to.include("    server web-b.internal:80 max_fails=1 fail_timeout=2s;\n");
    expect(text).to.include("    listen 127.0.8.3:80;\n");
    expect(text).to.include("    server_name www.acme.test acme.test;\n");
    expect(text).to.include("        proxy_pass http://lbh-balancer-acme;\n");
    expect(text).to.include("        proxy_next_upstream error timeout http_502 http_503 http_504;\n");
    expect(text.match(/server \{/g)).to.have.length(1);
  });
});
