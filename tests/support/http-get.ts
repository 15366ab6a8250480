import * as http from "node:http";
import * as https from "node:https";
import type * as tls from "node:tls";

export interface SiteResponse {
  status: number;
  servedBy: string | undefined;
  body: string;
}

/**
 * GET a site with an explicit Host header (fetch forbids setting Host), as a browser would reach
 * it through DNS. Times out after `timeoutMs`.
 */
export function getSite(url: string, host: string, timeoutMs = 5000): Promise<SiteResponse> {
  return new Promise((resolve, reject) => {
    const request = http.get(url, { headers: { host }, timeout: timeoutMs, agent: false }, (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (body += chunk));
      response.on("end", () => {
        const servedBy = response.headers["x-served-by"];
        resolve({ status: response.statusCode ?? 0, servedBy: Array.isArray(servedBy) ? servedBy[0] : servedBy, body });
      });
      response.on("error", reject);
    });
    request.on("timeout", () => request.destroy(new Error(`no answer from ${url} within ${timeoutMs} ms`)));
    request.on("error", reject);
  });
}

export interface SecureSiteResponse extends SiteResponse {
  headers: http.IncomingHttpHeaders;
  /** SHA-256 of the certificate the server presented, lowercase hex. */
  fingerprint: string;
}

/**
 * GET `path` over HTTPS from `address` ("host:port"), asking for `servername` in the handshake
 * (SNI) and trusting `ca` only, as a browser resolving the name to that address would; `host`
 * is the Host header (default: the same name). Times out after `timeoutMs`; a fresh connection each.
 */
export function getSecureSite(
  address: string,
  servername: string,
  ca: string,
  options: { host?: string; path?: string; timeoutMs?: number } = {},
): Promise<SecureSiteResponse> {
  const timeoutMs = options.timeoutMs ?? 5000;
  const separator = address.lastIndexOf(":");
  return new Promise((resolve, reject) => {
    const request = https.get(
      {
        host: address.slice(0, separator),
        port: Number(address.slice(separator + 1)),
        path: options.path ?? "/",
        servername,
        headers: { host: options.host ?? servername },
        ca,
        timeout: timeoutMs,
        agent: false,
      },
      (response) => {
        const certificate = (response.socket as tls.TLSSocket).getPeerCertificate();
        const fingerprint = certificate.fingerprint256.replace(/:/g, "").toLowerCase();
        let body = "";
        response.setEncoding("utf8");
        response.on("data", (chunk: string) => (body += chunk));
        response.on("end", () => {
          const servedBy = response.headers["x-served-by"];
          resolve({
            status: response.statusCode ?? 0,
            servedBy: Array.isArray(servedBy) ? servedBy[0] : servedBy,
            body,
            headers: response.headers,
            fingerprint,
          });
        });
        response.on("error", reject);
      },
    );
    request.on("timeout", () => request.destroy(new Error(`no answer from ${address} within ${timeoutMs} ms`)));
    request.on("error", reject);
  });
}
