/**
 * nginx configuration of the node's websites: one generated file, `lbh-sites.conf` in the agent's
 * nginx folder (included by nginx's http block). It holds one server block for every website on
 * the node and two maps from each domain to its site's document root and its org's folder.
 *
 * Why one server block and maps, not a server block per site: `nginx -t` and every reload parse
 * the whole configuration, and a server block with its locations costs nginx ~0.1–0.2 ms to parse
 * (each carries the configuration of every module), so at 1,000 sites a website write waited
 * ~200 ms more than at 10. A map entry is one hash insertion: a reload of 1,000 sites in maps
 * takes what 10 take (~10 ms). Every site's server block was the same but for its names, root and
 * org folder, and those are exactly what the maps give per request.
 *
 * Changing sites goes through `stage`: the file is rewritten from every site the node serves (kept
 * in memory, set whole by the start's render), `nginx -t` checks the whole configuration (when an
 * nginx binary is configured) and a rejected file is rolled back, so the running nginx — which
 * only rereads files on reload — never sees a configuration that failed validation. nginx runs as
 * an asynchronous child process (with a timeout): the agent's event loop keeps serving meanwhile.
 * Callers serialise staging through config-commits.ts, so no other change to the file interleaves
 * between "file written" and "DB committed".
 */
import fs from "node:fs";
import path from "node:path";
import { commandOutput, runCommand } from "../../workers/commands";
import { ApiFailure } from "../../errors";
import { writeFileAtomic } from "../atomic-write";
import { SITE_CHECK_PATH } from "../site-check";
import { type StepReport, timedStep } from "../steps";
import type { WebsiteTlsRecord } from "../../../../wire";

export const SITES_FILE = "lbh-sites.conf";
/** The one-file-per-site layout of agents before lbh-sites.conf: removed by the first render. */
const LEGACY_SITE_FILE = /^lbh\.[^.]+\.[^.]+\.conf$/;
const NGINX_TIMEOUT_MS = 15_000;
/** The file holds websites' private keys: nginx's master (root) reads it, nobody else may. */
const SITES_FILE_MODE = 0o600;
const MAX_MESSAGE = 2000;

/** One website as nginx serves it. Every value was validated to contain no nginx syntax characters. */
export interface SiteSpec {
  domains: string[];
  /** Absolute, symlink-checked document root. */
  root: string;
  /** The org's folder (content root resolved, then the org's name): nginx follows no symlink out of it. */
  orgFolder: string;
  /** HTTPS: its certificate and key (stored PEM: base64 lines only) and how HTTP is answered. */
  tls?: WebsiteTlsRecord;
}

/** What every site of the node shares. */
export interface SitesNode {
  agentName: string;
  /** The nginx `listen` parameter, e.g. "127.0.1.2:8080" or "80". */
  listen: string;
  /** The nginx `listen` parameter of HTTPS, e.g. "127.0.1.2:8443" or "443". */
  httpsListen: string;
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

/** A site's key: neither name can contain '/'. */
export const siteKey = (org: string, service: string): string => `${org}/${service}`;

/** Sites of one org, or of every org when `org` is undefined. */
export const siteScope =
  (org?: string) =>
  (key: string): boolean =>
    org === undefined || key.startsWith(`${org}/`);

/** The file's text, and which site each line belongs to (by line number, from 1; "" for shared lines). */
export interface RenderedSites {
  text: string;
  owners: string[];
}

/** HSTS as HTTPS answers send it when a site asks: a year, the usual value. */
const HSTS = "max-age=31536000";

/** PEM as one nginx string: its newlines written `\n`, which nginx's parser turns back into newlines. */
const pemValue = (pem: string): string => pem.replace(/\n/g, "\\n");

/**
 * What a server block serves, the same for HTTP and HTTPS: the document root and org folder the
 * maps give for the request's host, dotfiles refused, and the load balancer's check file.
 * `redirect`: plain HTTP of a site that asked for it goes to HTTPS, except its ACME challenges and
 * the load balancer's check, which must answer over HTTP.
 */
function servedLocations(node: SitesNode, redirect: boolean): string[] {
  return [
    // Unreachable (only the maps' domains are this server's names) unless this server becomes
    // the listen address's default: then an empty root would map a path to the whole file system.
    '    if ($lbh_root = "") {',
    "        return 404;",
    "    }",
    "    root $lbh_root;",
    // A symlink below the org's folder is followed only to what the symlink's owner owns: the org's
    // files (its Unix id owns them, content.ts), never /etc, another org's folder or the agent's data,
    // and a document root swapped for a symlink after the agent checked it serves nothing. Checked
    // by nginx at each request, so no race with the check the agent made when it rendered the file.
    "    disable_symlinks if_not_owner from=$lbh_org_folder;",
    "    index index.html index.htm;",
    `    add_header X-Served-By "${node.agentName}" always;`,
    "    location / {",
    ...(redirect
      ? ["        if ($lbh_https_redirect) {", "            return 301 https://$host$request_uri;", "        }"]
      : []),
    "        try_files $uri $uri/ =404;",
    "    }",
    "    location ^~ /.well-known/acme-challenge/ {",
    "        try_files $uri =404;",
    "    }",
    // Dotfiles and dot-folders (.env, .git/, .htpasswd) are a tenant's secrets, not its site; only
    // /.well-known/ (ACME challenges, security.txt, the load balancer's check) is served.
    "    location ~ /\\.(?!well-known(?:/|$)) {",
    "        return 404;",
    "    }",
    // The load balancer's check: the agent's file in the document root (site-check.ts).
    `    location = ${SITE_CHECK_PATH} {`,
    "        access_log off;",
    "        default_type text/plain;",
    "    }",
  ];
}

/** The sites file for `sites` (key → site), in key order so that equal sites render equal text. */
export function renderSites(node: SitesNode, sites: Map<string, SiteSpec>): RenderedSites {
  const lines: Array<[text: string, owner: string]> = [
    [`# Managed by the lbhosting agent "${node.agentName}": every website on this node.`, ""],
    ["# Rewritten from the agent's database on every change; local edits are lost.", ""],
  ];
  const ordered = [...sites].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  // Another org's domain is refused by the agent; one listed by two websites of an org is served
  // by the first, as nginx did with two server blocks of one name (a map refuses a duplicate key).
  const seen = new Set<string>();
  const served = ordered.flatMap(([key, site]) => {
    const domains = site.domains.filter((domain) => !seen.has(domain) && seen.add(domain));
    return domains.length === 0 ? [] : [{ key, site, domains }];
  });
  const secure = served.filter(({ site }) => site.tls !== undefined);
  const map = (
    source: "$host" | "$ssl_server_name",
    variable: string,
    value: (site: SiteSpec) => string | undefined,
  ) => {
    lines.push([`map ${source} ${variable} {`, ""], ['    default "";', ""]);
    for (const { key, site, domains } of served) {
      const given = value(site);
      if (given !== undefined) for (const domain of domains) lines.push([`    ${domain} "${given}";`, key]);
    }
    lines.push(["}", ""]);
  };
  const shared = (text: string[]) => {
    for (const line of text) lines.push([line, ""]);
  };
  if (served.length > 0) {
    map("$host", "$lbh_root", (site) => site.root);
    map("$host", "$lbh_org_folder", (site) => site.orgFolder);
    if (secure.length > 0) map("$host", "$lbh_https_redirect", (site) => (site.tls?.httpsRedirect ? "1" : undefined));
    lines.push(["server {", ""], [`    listen ${node.listen};`, ""]);
    for (const { key, domains } of served) lines.push([`    server_name ${domains.join(" ")};`, key]);
    shared([...servedLocations(node, secure.length > 0), "}"]);
  }
  if (secure.length > 0) {
    // The certificate is chosen by the name the client asked for in its handshake (SNI) and read
    // from the map for each handshake: nginx's master reads this file (0600), so the keys need no
    // file its workers could read. A name no map holds gets no certificate: the handshake fails.
    map("$ssl_server_name", "$lbh_tls_certificate", (site) => site.tls && pemValue(site.tls.certificate));
    map("$ssl_server_name", "$lbh_tls_key", (site) => site.tls && pemValue(site.tls.privateKey));
    map("$ssl_server_name", "$lbh_tls_org_folder", (site) => site.tls && site.orgFolder);
    map("$host", "$lbh_hsts", (site) => (site.tls?.hsts ? HSTS : undefined));
    lines.push(["server {", ""], [`    listen ${node.httpsListen} ssl http2;`, ""]);
    for (const { key, domains } of secure) lines.push([`    server_name ${domains.join(" ")};`, key]);
    shared([
      "    ssl_certificate data:$lbh_tls_certificate;",
      "    ssl_certificate_key data:$lbh_tls_key;",
      "    ssl_protocols TLSv1.2 TLSv1.3;",
      "    ssl_session_cache shared:lbh_tls:10m;",
      "    ssl_session_timeout 1h;",
      // A connection made for one org's name may not ask for another org's site (HTTP/2 reuses a
      // connection for any name its certificate covers): 421 makes the client connect again.
      "    if ($lbh_tls_org_folder != $lbh_org_folder) {",
      "        return 421;",
      "    }",
      "    add_header Strict-Transport-Security $lbh_hsts always;",
      ...servedLocations(node, false),
      "}",
    ]);
  }
  return { text: `${lines.map(([text]) => text).join("\n")}\n`, owners: lines.map(([, owner]) => owner) };
}

/**
 * What of nginx's refusal a tenant may read: lines about its own sites, and lines naming no file
 * and quoting nothing (e.g. "could not build map_hash, you should increase …"). A line about
 * another org's site or a shared line, or quoting a value (a domain, a path), may show another
 * tenant's configuration: it stays in the agent's log.
 */
export function ownLines(output: string, own: (file: string, line: number) => boolean): string {
  const shown = output
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "")
    .filter((line) => {
      const place = / in (\/\S+):(\d+)$/.exec(line);
      return place === null ? !/["']/.test(line) : own(place[1], Number(place[2]));
    });
  return shown.length > 0 ? shown.join("\n") : "the reason names other sites on this node (see the agent's log)";
}

/** The sites one scope must hold (key → site). */
export interface SiteChange {
  scope: (key: string) => boolean;
  desired: Map<string, SiteSpec>;
}

/** A change of the sites file written but not yet activated. */
export interface StagedSites {
  /** Whether the file changed (so nginx needs a reload). */
  readonly changed: boolean;
  /**
   * `nginx -s reload` if anything changed (reload-live.ts signals the master itself when it knows
   * it); false when the reload failed. Never rejects: a failed reload is logged, the file stays valid.
   */
  activate(): Promise<boolean>;
  /** Put the previous sites back (the caller's transaction failed after staging). */
  restore(): Promise<void>;
}

/** The agent's files in its nginx folder. */
interface OnDisk {
  /** The sites file's text; undefined when there is none. */
  text: string | undefined;
  /** Files of the one-file-per-site layout, by name. */
  legacy: Map<string, string>;
}

export class NginxSites {
  private readonly file: string;
  /** Every site the node serves: set whole by the first stage (the start's render), then kept in step. */
  private sites: Map<string, SiteSpec> | undefined;
  /** The folder as the agent left it: read on the first stage, then known from memory. */
  private disk: OnDisk | undefined;

  constructor(
    private readonly confDir: string,
    private readonly node: SitesNode,
    private readonly nginx: NginxBinary | undefined,
    private readonly warn: (msg: string, fields: Record<string, unknown>) => void,
    private readonly report?: StepReport,
  ) {
    fs.mkdirSync(confDir, { recursive: true }); // on start
    this.file = path.join(confDir, SITES_FILE);
  }

  private async readDisk(): Promise<OnDisk> {
    const names = (await fs.promises.readdir(this.confDir)).filter((name) => LEGACY_SITE_FILE.test(name));
    const read = (name: string) => fs.promises.readFile(path.join(this.confDir, name), "utf8");
    const legacy = new Map(
      await Promise.all(names.map(async (name): Promise<[string, string]> => [name, await read(name)])),
    );
    let text: string | undefined;
    try {
      text = await read(SITES_FILE);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
    return { text, legacy };
  }

  /** Makes the folder hold `target`; what it held is read again next time if this fails. */
  private async write(target: OnDisk, current: OnDisk): Promise<void> {
    this.disk = undefined;
    const removed = [...current.legacy.keys()].filter((name) => !target.legacy.has(name));
    await Promise.all([
      target.text === undefined
        ? fs.promises.rm(this.file, { force: true })
        : writeFileAtomic(this.file, target.text, SITES_FILE_MODE),
      ...removed.map((name) => fs.promises.rm(path.join(this.confDir, name), { force: true })),
      ...[...target.legacy].map(([name, text]) => writeFileAtomic(path.join(this.confDir, name), text, 0o644)),
    ]);
    this.disk = target;
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
   * Make the sites of each scope exactly as desired, validated by `nginx -t`. Rejects with a 422
   * `nginx_rejected` ApiFailure (after restoring the previous file) when nginx refuses them.
   */
  async stage(changes: SiteChange[]): Promise<StagedSites> {
    const current = this.disk ?? (await this.readDisk());
    this.disk = current;
    const before = this.sites;
    const after = new Map([...(before ?? [])].filter(([key]) => !changes.some((change) => change.scope(key))));
    for (const change of changes) for (const [key, site] of change.desired) after.set(key, site);
    const rendered = renderSites(this.node, after);
    this.sites = after;
    // The start's render (nothing known before) keeps what the database holds even when nginx
    // refuses it, so a later write renders every site, not only its own.
    const restoreSites = () => void (this.sites = before ?? after);
    if (rendered.text === current.text && current.legacy.size === 0) {
      return { changed: false, activate: async () => true, restore: async () => restoreSites() };
    }

    await this.write({ text: rendered.text, legacy: new Map() }, current);
    const restore = async () => {
      restoreSites();
      await this.write(current, this.disk ?? (await this.readDisk()));
    };
    const test = await this.run("validate", ["-t", "-q"]);
    if (!test.ok) {
      await restore();
      this.warn("nginx rejected a configuration", { output: test.output });
      const own = (file: string, line: number) => {
        const owner = rendered.owners[line - 1];
        return file === this.file && Boolean(owner) && changes.some((change) => change.scope(owner));
      };
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
