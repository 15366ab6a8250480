/**
 * Run on the server by install-haproxy.sh: waits until HAProxy's master CLI answers `show proc`
 * with a worker, so the agent's next reload reaches it.   node wait-haproxy.cjs <socket> <seconds>
 */
const net = require("node:net");
const [socket, seconds] = process.argv.slice(2);
const deadline = Date.now() + Number(seconds) * 1000;
const hasWorker = () =>
  new Promise((resolve) => {
    let text = "";
    const client = net.createConnection(socket);
    client.setTimeout(2000, () => client.destroy());
    client.on("connect", () => client.end("show proc\n"));
    client.on("data", (chunk) => (text += chunk));
    client.on("error", () => resolve(false));
    client.on("close", () => resolve(/# workers\n\d+/.test(text)));
  });
(async () => {
  while (Date.now() < deadline) {
    if (await hasWorker()) return;
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  console.error(`HAProxy's master socket ${socket} shows no worker within ${seconds} s`);
  process.exit(1);
})();
