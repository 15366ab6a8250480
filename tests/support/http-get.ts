import * as http from "node:http";

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
