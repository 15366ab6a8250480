/** The package version, read at run time so the compiled tree needs no copy of package.json. */
import fs from "node:fs";
import path from "node:path";

export function packageVersion(): string {
  const file = path.resolve(__dirname, "..", "..", "package.json");
  const pkg = JSON.parse(fs.readFileSync(file, "utf8")) as { version?: unknown };
  return typeof pkg.version === "string" ? pkg.version : "0.0.0";
}
