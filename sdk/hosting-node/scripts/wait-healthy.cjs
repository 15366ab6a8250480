/**
 * Run on the server by install.sh: waits until the agent's /v1/health answers with the expected
 * version and prints that answer's name and version as JSON, the install's last stdout line (the
 * node's outputs come from it).   node wait-healthy.cjs <url> <version> <seconds>
 */
const [url, version, seconds] = process.argv.slice(2);
const deadline = Date.now() + Number(seconds) * 1000;
let last = "no answer";
(async () => {
  while (Date.now() < deadline) {
    try {
      const health = await (await fetch(url, { signal: AbortSignal.timeout(2000) })).json();
      if (health.version === version)
        return console.log(JSON.stringify({ name: health.name, version: health.version }));
      last = "version " + health.version;
    } catch (error) {
      last = (error.cause && error.cause.code) || error.message;
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  console.error(`no answer from ${url} with version ${version} within ${seconds} s (last: ${last})`);
  process.exit(1);
})();
