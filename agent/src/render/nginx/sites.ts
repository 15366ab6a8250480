/**
 * nginx site configuration: one server block per enabled website service, in files named
 * `lbh.<org>.<service>.conf` (a '.' cannot occur in either DNS label, so names never collide).
 *
 * Changing files goes through `stage`: the new files are written, `nginx -t` checks the whole
 * configuration (when an nginx binary is configured) and a rejected set is rolled back, so the
 * running nginx — which only rereads files on reload — never sees a configuration that failed
 * validation. The agent's files are listed once, on the first stage (the start's render), and
 * kept in memory from then on: a write reads and writes only its own org's files, never the
 * whole folder of a thousand orgs. nginx runs as an asynchronous child process (with a timeout): the agent's event loop
 * keeps serving meanwhile. Callers serialise staging through config-commits.ts, so no other
 * change to these files interleaves between "files written" and "DB committed".
 */
import fs from "node:fs";
import path from "node:path";
import { commandOutput, runCommand } from "../../workers/commands";
import { ApiFailure } from "../../errors";
import { writeFileAtomic } from "../atomic-write";
import { SITE_CHECK_PATH } from "../site-check";
import { type StepReport, timedStep } from "../steps";

const SITE_PREFIX = "lbh.";
const NGINX_TIMEOUT_MS = 15_000;
const MAX_MESSAGE = 2000;

interface SiteSpec {
  agentName: string;
  /** The nginx `listen` parameter, e.g. "127.0.1.2:8080" or "80". */
  listen: string;
  org: string;
  service: string;
  domains: string[];
  /** Absolute, symlink-checked document root. */
  root: string;
  /** The org's folder (content root resolved, then the org's name): nginx follows no symlink out of it. */
  orgFolder: string;
}

export interface NginxBinary {
  bin: string;
  /** Main configuration file (`-c`); nginx's compiled-in default when absent. */
  mainConf?: string;
  /** Prefix (`-p`); nginx's compiled-in default when absent. */
  prefix?: string;
  /** The master's pid file, to signal a reload and see it live; default: the main conf's `pid`. */
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
    // A symlink below the org's folder is followed only to what the symlink's owner owns: the org's
    // files (its Unix id owns them, content.ts), never /etc, another org's folder or the agent's data,
    // and a document root swapped for a symlink after the agent checked it serves nothing. Checked
    // by nginx at each request, so no race with the check the agent made when it rendered the file.
    `    disable_symlinks if_not_owner from=${site.orgFolder};`,
    "    index index.html index.htm;",
    `    add_header X-Served-By "${site.agentName}" always;`,
    "    location / {",
    "        try_files $uri $uri/ =404;",
    "    }",
    // Dotfiles and dot-folders (.env, .git/, .htpasswd) are a tenant's secrets, not its site; only
    // /.well-known/ (ACME challenges, security.txt, the load balancer's check) is served.
    "    location ~ /\\.(?!well-known(?:/|$)) {",
    "        return 404;",
    "    }",
    // The load balancer's check, every second: the agent's file in the document root (site-check.ts).
    `    location = ${SITE_CHECK_PATH} {`,
    "        access_log off;",
    "        default_type text/plain;",
    "    }",
    "}",
    "",
  ].join("\n");
}

/**
 * What of nginx's refusal a tenant may read: lines about its own site files, and lines naming no
 * file and quoting nothing (e.g. "could not build server_names_hash, you should increase …"). A line
 * about another org's file, or quoting a value (a domain, a path), may show another tenant's
 * configuration: it stays in the agent's log.
 */
export function ownLines(output: string, own: (file: string) => boolean): string {
  const shown = output
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "")
    .filter((line) => {
      const file = / in (\/\S+):\d+$/.exec(line)?.[1];
      return file === undefined ? !/["']/.test(line) : own(file);
    });
  return shown.length > 0 ? shown.join("\n") : "the reason names other sites on this node (see the agent's log)";
}

/** The files one scope must hold. */
export interface SiteChange {
  scope: (file: string) => boolean;
  desired: Map<string, string>;
}

/** A set of site files written but not yet activated. */
export interface StagedSites {
  /** Whether any file changed (so nginx needs a reload). */
  readonly changed: boolean;
  /**
   * `nginx -s reload` if anything changed (reload-live.ts signals the master itself when it knows
   * it); false when the reload failed. Never rejects: a failed reload is logged, the files stay valid.
   */
  activate(): Promise<boolean>;
  /** Put the previous files back (the caller's transaction failed after staging). */
  restore(): Promise<void>;
}

const UNCHANGED: StagedSites = { changed: false, activate: async () => true, restore: async () => undefined };

export class NginxSites {
  constructor(
    private readonly confDir: string,
    private readonly nginx: NginxBinary | undefined,
    private readonly warn: (msg: string, fields: Record<string, unknown>) => void,
    private readonly report?: StepReport,
  ) {
    fs.mkdirSync(confDir, { recursive: true }); // on start
  }

  /** The agent's files in the folder and their text: read once, then kept in step by `replace`. */
  private index: Promise<Map<string, string>> | undefined;

  private async listFolder(): Promise<Map<string, string>> {
    const names = (await fs.promises.readdir(this.confDir)).filter(siteScope()).sort();
    const contents = await Promise.all(
      names.map((file) => fs.promises.readFile(path.join(this.confDir, file), "utf8")),
    );
    return new Map(names.map((file, i) => [file, contents[i]]));
  }

  private async files(): Promise<Map<string, string>> {
    this.index ??= this.listFolder();
    try {
      return await this.index;
    } catch (error) {
      this.index = undefined; // listed again by the next stage
      throw error;
    }
  }

  private async readFiles(scope: (file: string) => boolean): Promise<Map<string, string>> {
    return new Map([...(await this.files())].filter(([file]) => scope(file)));
  }

  private async replace(scope: (file: string) => boolean, desired: Map<string, string>): Promise<void> {
    const files = await this.files();
    const stale = [...(await this.readFiles(scope)).keys()].filter((file) => !desired.has(file));
    // The index follows each file as it is done; a file whose change failed is listed again next time.
    const track = async (file: string, change: Promise<void>, text: string | undefined) => {
      try {
        await change;
      } catch (error) {
        this.index = undefined;
        throw error;
      }
      if (text === undefined) files.delete(file);
      else files.set(file, text);
    };
    await Promise.all([
      ...stale.map((file) => track(file, fs.promises.rm(path.join(this.confDir, file), { force: true }), undefined)),
      ...[...desired].map(([file, content]) =>
        track(file, writeFileAtomic(path.join(this.confDir, file), content, 0o644), content),
      ),
    ]);
  }

  /** nginx with `args`, reported as `step`; without an nginx binary nothing runs and it is ok. */
  private async run(step: string, args: string[]): Promise<{ ok: boolean; output: string }> {
    const nginx = this.nginx;
    if (!nginx) return { ok: true, output: "" };
    const base = [...(nginx.prefix ? ["-p", nginx.prefix] : []), ...(nginx.mainConf ? ["-c", nginx.mainConf] : [])];
    const result = await timedStep(
      this.report,
      step,
      () => runCommand(nginx.bin, [...base, ...args], NGINX_TIMEOUT_MS),
      (ended) => ended.ok,
    );
    return { ok: result.ok, output: commandOutput(result, MAX_MESSAGE) };
  }

  /**
   * Make the files of each scope exactly as desired, validated by `nginx -t`. Rejects with a 422
   * `nginx_rejected` ApiFailure (after restoring the previous files) when nginx refuses them.
   */
  async stage(changes: SiteChange[]): Promise<StagedSites> {
    const previous = await Promise.all(changes.map((change) => this.readFiles(change.scope)));
    const same = changes.every(({ desired }, i) => {
      const before = previous[i];
      return before.size === desired.size && [...desired].every(([file, content]) => before.get(file) === content);
    });
    if (same) return UNCHANGED;

    const restore = async () => {
      for (const [i, change] of changes.entries()) await this.replace(change.scope, previous[i]);
    };
    for (const change of changes) await this.replace(change.scope, change.desired);
    const test = await this.run("validate", ["-t", "-q"]);
    if (!test.ok) {
      await restore();
      this.warn("nginx rejected a configuration", { output: test.output });
      const own = (file: string) =>
        path.dirname(file) === this.confDir && changes.some((c) => c.scope(path.basename(file)));
      throw new ApiFailure(
        422,
        "nginx_rejected",
        `nginx rejected the new configuration: ${ownLines(test.output, own)}`,
      );
    }
    return {
      changed: true,
      restore,
      activate: async () => {
        const reload = await this.run("reload", ["-s", "reload"]);
        if (!reload.ok) this.warn("nginx reload failed", { output: reload.output });
        return reload.ok;
      },
    };
  }
}
