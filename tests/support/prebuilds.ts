import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

/**
 * better-sqlite3 builds from source where its prebuilt binary cannot be downloaded (here: about
 * a minute per install). prebuild-install's documented local-prebuilds folder lets a test's
 * "servers" reuse the binary this repository already built: give the folder to npm as
 * `npm_config_better_sqlite3_local_prebuilds`; without it they compile.
 */
export function localPrebuilds(dir: string): string {
  const modulePath = path.dirname(require.resolve("better-sqlite3/package.json"));
  const { version } = JSON.parse(fs.readFileSync(path.join(modulePath, "package.json"), "utf8")) as { version: string };
  const file = `better-sqlite3-v${version}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`;
  fs.mkdirSync(dir, { recursive: true });
  execFileSync("tar", ["-czf", path.join(dir, file), "-C", modulePath, "build/Release/better_sqlite3.node"], {
    timeout: 60_000,
  });
  return dir;
}
