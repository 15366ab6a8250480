/**
 * The one rule for tests that need something from the machine (a server binary, root, the Pulumi
 * CLI): found, it is returned; missing, the suite skips with the reason printed — except under
 * CI=true, where a missing tool fails the run, so CI cannot go green by skipping.
 *
 *   const bin = requireTool(this, "nginx", findNginx, "apt-get install -y nginx, or set NGINX_BIN");
 */
export function requireTool<T>(context: Mocha.Context, name: string, probe: () => T | undefined, howToGet: string): T {
  const found = probe();
  if (found !== undefined) return found;
  const reason = `${name} is not available (${howToGet})`;
  if (process.env.CI === "true") throw new Error(`${reason}; under CI=true a missing tool fails the run`);
  console.log(`      skipped: ${reason}`);
  context.skip();
}
