/**
 * Test fixture: a TCP proxy on a loopback address in front of an agent that can make it slow.
 * Requests reach the agent at once (it does the work); its answers are held back `delayMs`
 * before they go on, as from a server that answers late. Stopped by `stop()`, which closes
 * every connection.
 *
 *   const proxy = await startSlowProxy({ host: "127.0.34.3", target: agent.url });
 *   proxy.setDelay(4000);  // answers arrive 4 s late from now on
 */
import net from "node:net";

export interface SlowProxy {
  /** The proxy's base URL, to use instead of the agent's. */
  readonly url: string;
  setDelay(ms: number): void;
  stop(): Promise<void>;
}

export async function startSlowProxy(options: { host: string; target: string }): Promise<SlowProxy> {
  const target = new URL(options.target);
  let delayMs = 0;
  const sockets = new Set<net.Socket>();
  const track = (socket: net.Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
  };
  const server = net.createServer((client) => {
    const upstream = net.connect({ host: target.hostname, port: Number(target.port) });
    track(client);
    track(upstream);
    client.pipe(upstream);
    // Each chunk waits the delay in force when it arrived; timers of one delay fire in order.
    const later = (action: () => void) => (delayMs > 0 ? setTimeout(action, delayMs) : action());
    upstream.on("data", (chunk: Buffer) => later(() => client.destroyed || client.write(chunk)));
    upstream.on("end", () => later(() => client.end()));
    upstream.on("close", () => later(() => client.destroy()));
    client.on("close", () => upstream.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, options.host, () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `${target.protocol}//${options.host}:${port}`,
    setDelay: (ms) => (delayMs = ms),
    stop: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
