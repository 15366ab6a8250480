/**
 * Run on the server by install.sh: waits until the agent's /v1/health answers with the expected
 * version and prints that answer's name and version as JSON, the install's last stdout line (the
 * node's outputs come from it).   node wait-healthy.cjs <url> <version> <seconds> <cert file> <name>
 * An https URL is asked trusting only the agent's own certificate (the file it serves), which must
 * name <name>, the host of the node's url: the address asked may be loopback.
 */
const fs = require("node:fs");
const http = require("node:http");
const https = require("node:https");
const net = require("node:net");
const tls = require("node:tls");
const [url, version, seconds, certFile, name] = process.argv.slice(2);
const deadline = Date.now() + Number(seconds) * 1000;
const secure = url.startsWith("https:");
const tlsOptions = secure
  ? {
      ca: fs.readFileSync(certFile),
      // The agent's certificate is the trust anchor, whatever CA signed it.
      allowPartialTrustChain: true,
      ...(net.isIP(name) ? {} : { servername: name }),
      checkServerIdentity: (_host, cert) => tls.checkServerIdentity(name, cert),
    }
  : {};
const health = () =>
  new Promise((resolve, reject) => {
    // No keep-alive agent: every attempt makes its own (checked) connection.
    const request = (secure ? https : http).get(url, { agent: false, timeout: 2000, ...tlsOptions }, (answer) => {
      let body = "";
      answer.setEncoding("utf8");
      answer.on("data", (chunk) => (body += chunk));
      answer.on("end", () => {
        try {
          resolve(JSON.parse(body));
        } catch {
          reject(new Error(`HTTP ${answer.statusCode}, not JSON`));
        }
      });
      answer.on("error", reject);
    });
    request.on("timeout", () => request.destroy(new Error("timed out")));
    request.on("error", reject);
  });
let last = "no answer";
(async () => {
  while (Date.now() < deadline) {
    try {
      const answer = await health();
      if (answer.version === version)
        return console.log(JSON.stringify({ name: answer.name, version: answer.version }));
      last = "version " + answer.version;
    } catch (error) {
      last = error.code || error.message;
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  // The TLS failures an operator can fix, said as such.
  const advice = {
    ERR_TLS_CERT_ALTNAME_INVALID: `: the agent's certificate does not name ${name}, the host of the node's url`,
    CERT_HAS_EXPIRED: ": the agent's certificate has expired",
  };
  console.error(
    `no answer from ${url} with version ${version} within ${seconds} s (last: ${last}${advice[last] || ""})`,
  );
  process.exit(1);
})();
