/**
 * Pebble, Let's Encrypt's test ACME server (Debian package `pebble`), with pebble-challtestsrv as
 * its DNS: every name resolves to `resolveTo` (the load balancer's loopback address), and Pebble
 * validates HTTP-01 on `httpPort` (the load balancer's HTTP port), so the challenge goes through
 * HAProxy like Let's Encrypt's would. Pebble's own HTTPS uses a certificate made here; its
 * issuing root is at its management endpoint (`/roots/0`).
 *
 *   const pebble = await startPebble(this, { host: "127.0.85.10", resolveTo: "127.0.85.3", httpPort: 8080, dir });
 *   ... tls: { acme: { email, directory: pebble.directory } }, config lbhosting:acmeCaCertificate = pebble.apiCa
 *   await pebble.stop();
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import https from "node:https";
import path from "node:path";
import { canConnect, freePort } from "./ports";
import { findBinary, spawnServer, stopProcessTree } from "./processes";
import { requireTool } from "./requirements";

export interface PebbleOptions {
  /** Loopback address Pebble and challtestsrv listen on. */
  host: string;
  /** The address every name resolves to. */
  resolveTo: string;
  /** Where Pebble sends HTTP-01 validations. */
  httpPort: number;
  /** A folder for its configuration and certificate. */
  dir: string;
}

export interface Pebble {
  /** The ACME directory URL. */
  directory: string;
  /** The CA (self-signed) of Pebble's own HTTPS: what lbhosting:acmeCaCertificate trusts. */
  apiCa: string;
  /** The root Pebble issues certificates under (fetched from its management endpoint). */
  root(): Promise<string>;
  /** Makes `name` resolve to `address` instead (a domain that does not point at the load balancer). */
  resolve(name: string, address: string): Promise<void>;
  stop(): Promise<void>;
}

const binaries = () => {
  const pebble = findBinary("PEBBLE_BIN", "pebble", ["/usr/bin/pebble"]);
  const challtestsrv = findBinary("PEBBLE_CHALLTESTSRV_BIN", "pebble-challtestsrv", ["/usr/bin/pebble-challtestsrv"]);
  return pebble && challtestsrv ? { pebble, challtestsrv } : undefined;
};

/** Pebble's binaries, or the suite skips (fails under CI=true). */
export const pebbleOrSkip = (context: Mocha.Context) =>
  requireTool(context, "pebble", binaries, "apt-get install -y pebble, or set PEBBLE_BIN and PEBBLE_CHALLTESTSRV_BIN");

/** GET over HTTPS trusting `ca` only, with a timeout. */
function httpsText(url: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const request = https.get(url, { ca, timeout: 5000, agent: false }, (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (body += chunk));
      response.on("end", () =>
        response.statusCode === 200 ? resolve(body) : reject(new Error(`${url}: HTTP ${response.statusCode}`)),
      );
    });
    request.on("timeout", () => request.destroy(new Error(`${url}: timed out`)));
    request.on("error", reject);
  });
}

/** POST JSON to challtestsrv's management API, with a timeout. */
function postJson(url: string, body: unknown): Promise<void> {
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method: "POST", timeout: 5000 }, (response) => {
      response.resume();
      response.on("end", () =>
        response.statusCode === 200 ? resolve() : reject(new Error(`${url}: HTTP ${response.statusCode}`)),
      );
    });
    request.on("timeout", () => request.destroy(new Error(`${url}: timed out`)));
    request.on("error", reject);
    request.end(JSON.stringify(body));
  });
}

export async function startPebble(
  binaries: { pebble: string; challtestsrv: string },
  options: PebbleOptions,
): Promise<Pebble> {
  const { host, dir } = options;
  const [cert, key] = [path.join(dir, "pebble-api.pem"), path.join(dir, "pebble-api.key")];
  execFileSync(
    "openssl",
    ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2"]
      .concat(["-subj", "/CN=pebble test API", "-addext", `subjectAltName=IP:${host}`])
      .concat(["-keyout", key, "-out", cert]),
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  const [acmePort, managementPort, dnsPort, dnsManagementPort] = [
    await freePort(host),
    await freePort(host),
    await freePort(host),
    await freePort(host),
  ];
  const config = path.join(dir, "pebble-config.json");
  fs.writeFileSync(
    config,
    JSON.stringify({
      pebble: {
        listenAddress: `${host}:${acmePort}`,
        managementListenAddress: `${host}:${managementPort}`,
        certificate: cert,
        privateKey: key,
        httpPort: options.httpPort,
        tlsPort: options.httpPort,
        ocspResponderURL: "",
        externalAccountBindingRequired: false,
      },
    }),
  );
  const dns = await spawnServer(
    binaries.challtestsrv,
    ["-defaultIPv4", options.resolveTo, "-defaultIPv6", "", "-dns01", `${host}:${dnsPort}`].concat([
      "-http01",
      "",
      "-https01",
      "",
      "-tlsalpn01",
      "",
      "-management",
      `${host}:${dnsManagementPort}`,
    ]),
    "pebble-challtestsrv",
    () => canConnect(host, dnsManagementPort),
  );
  let pebble: Awaited<ReturnType<typeof spawnServer>>;
  try {
    pebble = await spawnServer(
      binaries.pebble,
      ["-config", config, "-dnsserver", `${host}:${dnsPort}`],
      "pebble",
      () => canConnect(host, acmePort),
      // No random sleeps before validations; no nonces refused at random (acme-client retries, but slower).
      { ...process.env, PEBBLE_VA_NOSLEEP: "1", PEBBLE_WFE_NONCEREJECT: "0" },
    );
  } catch (error) {
    await stopProcessTree(dns.child, "SIGTERM");
    throw error;
  }
  const apiCa = fs.readFileSync(cert, "utf8");
  return {
    directory: `https://${host}:${acmePort}/dir`,
    apiCa,
    root: () => httpsText(`https://${host}:${managementPort}/roots/0`, apiCa),
    resolve: (name, address) =>
      postJson(`http://${host}:${dnsManagementPort}/add-a`, { host: `${name}.`, addresses: [address] }),
    async stop() {
      await stopProcessTree(pebble.child, "SIGTERM");
      await stopProcessTree(dns.child, "SIGTERM");
    },
  };
}
