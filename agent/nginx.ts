/**
 * nginx site configuration: one server block per enabled website service, in files named
 * `lbh.<org>.<service>.conf` (a '.' cannot occur in either DNS label, so names never collide).
 *
 * Changing files goes through `stage`: the new files are written, `nginx -t` checks the whole
 * configuration (when an nginx binary is configured) and a rejected set is rolled back before the
 * caller's transaction aborts, so the running nginx — which only rereads files on reload — never
 * sees a configuration that failed validation. nginx runs synchronously (spawnSync, with a
 * timeout) on purpose: it keeps staging inside the caller's single SQLite transaction, so no
 * other request can interleave between "files written" and "DB committed".
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { ApiFailure } from "./errors";

export const SITE_PREFIX = "lbh.";
const NGINX_TIMEOUT_MS = 15_000;
const MAX_MESSAGE = 2000;

export interface SiteSpec {
  agentName: string;
  /** The nginx `listen` parameter, e.g. "127.0.1.2:8080" or "80". */
  listen: string;
  org: string;
  service: string;
  domains: string[];
  /** Absolute, symlink-checked document root. */
  root: string;
}

export interface NginxBinary {
  bin: string;
  /** Main configuration file (`-c`); nginx's compiled-in default when absent. */
  mainConf?: string;
  /** Prefix (`-p`); nginx's compiled-in default when absent. */
  prefix?: string;
  /** The master's pid file, to wait for old workers after a reload; default: the main conf's `pid`. */
  pidFile?: string;
}

export const siteFileName = (org: string, service: string): string => `${SITE_PREFIX}${org}.${service}.conf`;

/** Files of one org, or of every org when `org` is undefined. */
export const siteScope =
  (org?: string) =>
  (file: string): boolean =>
    file.endsWith(".conf") && file.startsWith(org === undefined ? SITE_PREFIX : `${SITE_PREFIX}${org}.`);

/** One server block. Every interpolated value was validated to contain no nginx syntax characters. */
export function renderSite(site: SiteSpec): string {
  return [
    `# Managed by the lbhosting agent "${site.agentName}": org ${site.org}, service ${site.service}.`,
    "# Rewritten from the agent's database on every change; local edits are lost.",
    "server {",
    `    listen ${site.listen};`,
    `    server_name ${site.domains.join(" ")};`,
    `    root "${site.root}";`,
    "    index index.html index.htm;",
    `    add_header X-Served-By "${site.agentName}" always;`,
    "    location / {",
    "        try_files $uri $uri/ =404;",
    "    }",
    "}",
    "",
  ].join("\n");
}

function writeAtomic(file: string, content: string): void {
  const temp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(temp, content, { mode: 0o644 });
  fs.renameSync(temp, file);
}

/** A set of site files written but not yet activated. */
export interface StagedSites {
  /** Whether any file changed (so nginx needs a reload). */
  readonly changed: boolean;
  /**
   * Reload nginx if anything changed; false when the reload failed. Never throws: a failed reload
   * is logged, the files stay valid.
   */
  activate(): boolean;
  /** Put the previous files back (the caller's transaction failed after staging). */
  restore(): void;
}

export class NginxSites {
  constructor(
    private readonly confDir: string,
    private readonly nginx: NginxBinary | undefined,
    private readonly warn: (msg: string, fields: Record<string, unknown>) => void,
  ) {
    fs.mkdirSync(confDir, { recursive: true });
  }

  private readFiles(scope: (file: string) => boolean): Map<string, string> {
    const files = new Map<string, string>();
    for (const file of fs.readdirSync(this.confDir).filter(scope).sort()) {
      files.set(file, fs.readFileSync(path.join(this.confDir, file), "utf8"));
    }
    return files;
  }

  private replace(scope: (file: string) => boolean, desired: Map<string, string>): void {
    for (const file of this.readFiles(scope).keys()) {
      if (!desired.has(file)) fs.rmSync(path.join(this.confDir, file), { force: true });
    }
    for (const [file, content] of desired) writeAtomic(path.join(this.confDir, file), content);
  }

  private run(args: string[]): { ok: boolean; output: string } {
    if (!this.nginx) return { ok: true, output: "" };
    const base = [
      ...(this.nginx.prefix ? ["-p", this.nginx.prefix] : []),
      ...(this.nginx.mainConf ? ["-c", this.nginx.mainConf] : []),
    ];
    const result = spawnSync(this.nginx.bin, [...base, ...args], { encoding: "utf8", timeout: NGINX_TIMEOUT_MS });
    if (result.error) return { ok: false, output: result.error.message };
    const output = `${result.stderr ?? ""}${result.stdout ?? ""}`.trim().slice(0, MAX_MESSAGE);
    return { ok: result.status === 0, output };
  }

  /**
   * Make the files matching `scope` exactly `desired`, validated by `nginx -t`. Throws a 422
   * `nginx_rejected` ApiFailure (after restoring the previous files) when nginx refuses them.
   */
  stage(scope: (file: string) => boolean, desired: Map<string, string>): StagedSites {
    const previous = this.readFiles(scope);
    const same =
      previous.size === desired.size && [...desired].every(([file, content]) => previous.get(file) === content);
    if (same) return { changed: false, activate: () => true, restore: () => undefined };

    const restore = () => this.replace(scope, previous);
    this.replace(scope, desired);
    const test = this.run(["-t", "-q"]);
    if (!test.ok) {
      restore();
      throw new ApiFailure(422, "nginx_rejected", `nginx rejected the new configuration: ${test.output}`);
    }
    return {
      changed: true,
      restore,
      activate: () => {
        const reload = this.run(["-s", "reload"]);
        if (!reload.ok) this.warn("nginx reload failed", { output: reload.output });
        return reload.ok;
      },
    };
  }
}
