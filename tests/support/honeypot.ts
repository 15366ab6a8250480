/**
 * An HTTP server that answers nothing useful and remembers who called it: the address a hostile
 * tenant slips into an org's record, to prove that no token or snapshot is ever sent there.
 */
import http from "node:http";

export interface Honeypot {
  readonly url: string;
  /** Every request received: method, path and whether it carried an Authorization header. */
  readonly requests: { method: string; path: string; authorization: boolean }[];
  close(): Promise<void>;
}

export async function startHoneypot(host: string): Promise<Honeypot> {
  const requests: Honeypot["requests"] = [];
  const server = http.createServer((request, response) => {
    requests.push({
      method: request.method ?? "",
      path: request.url ?? "",
      authorization: request.headers.authorization !== undefined,
    });
    request.resume();
    response.writeHead(404, { "content-type": "application/json" }).end('{"error":"not_found","message":"no"}');
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, resolve);
  });
  const { port } = server.address() as { port: number };
  return {
    url: `http://${host}:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
