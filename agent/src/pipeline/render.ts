/**
 * Keeps the rendered server configuration in step with the database: an org's nginx sites
 * (validated through config-commits.ts before a write commits), its FTP accounts (rendered after
 * the commit, from the database) and, on start, every org's sites before the first request and
 * every org's accounts in the first FTP round.
 */
import { type UserRecord, type WebsiteTlsRecord, canonicalJson } from "../../../wire";
import { ApiFailure } from "../errors";
import type { HostingStore, OwnedContentFolders, ResolvedFolder, Warn } from "../domain/ports";
import type { FtpFiles } from "../render/ftp/accounts";
import { type NginxSites, type SiteSpec, siteKey, siteScope } from "../render/nginx/sites";
import type { ReloadLive } from "../render/nginx/reload-live";
import { siteCheckText, writeSiteCheck } from "../render/site-check";
import type { NginxScope } from "./config-commits";
import { mapBounded } from "./bounded";
import type { VerifiedFolders } from "./verified-folders";

/** Orgs rendered at once at start: enough to keep libuv's thread pool (4 threads) busy. */
const START_CONCURRENCY = 16;

interface RenderOptions {
  store: HostingStore;
  sites: Pick<NginxSites, "stage">;
  /** Activates site changes and tells when nginx serves them (reload-live.ts). */
  reloads: Pick<ReloadLive, "activate">;
  ftp: Pick<FtpFiles, "has" | "render" | "renderUsers" | "remove" | "removeLegacyFiles" | "publish" | "publishSoon">;
  /** The content folders, those verified before trusted on start. */
  content: Pick<VerifiedFolders, keyof OwnedContentFolders | "atStart" | "trusted" | "record" | "forget">;
  /** Once the start's FTP round has every org's accounts (the extauth server then listens). */
  accountsReady?: () => Promise<void>;
  warn: Warn;
}

/** The key of the start's FTP round (`ftpRound`): every org, whole. Not an org's name. */
export const EVERY_ORG = "*";

type WebsiteRecord = { name: string; domains: string[]; documentRoot: string; tls?: WebsiteTlsRecord };

export class Rendering {
  /**
   * Websites whose document root was missing when their check file was due (org → service → the
   * folder): retried by `retryMissingChecks`, so a site whose content arrives after it was created
   * (by FTP, on the NAS) enters the load balancer's rotation without another write. By org, so an
   * org's render drops its own entries without a pass over every org's.
   */
  private readonly missingChecks = new Map<string, Map<string, string>>();
  private retrying = false;

  constructor(private readonly options: RenderOptions) {}

  /** The org's enabled websites as stored: what its nginx sites are made of. */
  private websites(org: string): WebsiteRecord[] {
    return this.options.store
      .listServices(org)
      .flatMap((service) =>
        service.kind === "website" && service.enabled
          ? [{ name: service.name, domains: service.domains, documentRoot: service.documentRoot, tls: service.tls }]
          : [],
      );
  }

  /**
   * The nginx sites of an org's websites (by site key). A write's (`atStart` undefined) fails on an
   * unsafe content folder (a mutation must not commit what cannot be rendered); the start's skips
   * it with a warning, and trusts the folders verified before (verified-folders.ts).
   */
  private async siteSpecs(
    org: string,
    unixId: number | undefined,
    websites: WebsiteRecord[],
    atStart?: OwnedContentFolders,
  ): Promise<Map<string, SiteSpec>> {
    const { content } = this.options;
    const strict = atStart === undefined;
    if (websites.length > 0 && unixId !== undefined) await this.prepareOrgFolder(org, unixId, atStart ?? content);
    const trusted = websites.map((site) => (strict ? undefined : content.trusted(org, site.documentRoot, unixId)));
    const roots = await Promise.all(
      websites.map((site, i): Promise<ResolvedFolder> | ResolvedFolder => {
        const known = trusted[i];
        return known ? { ok: true, path: known.path } : content.resolve(org, site.documentRoot);
      }),
    );
    const sites = new Map<string, SiteSpec>();
    websites.forEach((service, i) => {
      const root = roots[i];
      if (!root.ok) {
        if (strict) {
          throw new ApiFailure(422, "unsafe_content_path", `service "${service.name}": documentRoot ${root.reason}`, [
            { path: `services.${service.name}.documentRoot`, message: root.reason },
          ]);
        }
        this.options.warn("website not rendered", { org, service: service.name, reason: root.reason });
        return;
      }
      sites.set(siteKey(org, service.name), {
        domains: service.domains,
        root: root.path,
        orgFolder: content.orgFolder(org),
        ...(service.tls && { tls: service.tls }),
      });
    });
    this.missingChecks.delete(org);
    await Promise.all(
      websites.map(async (site, i) => {
        const root = roots[i];
        if (!root.ok) return;
        const known = trusted[i];
        if (known?.present) return;
        // Not there before: the periodic retry writes its check file once it appears.
        if (known) return this.awaitCheck(org, site.name, root.path);
        const found = await this.writeCheck(org, site.name, root);
        if (found) content.record(org, site.documentRoot, unixId, root.path, found === "written");
      }),
    );
    return sites;
  }

  /**
   * The org's folder, made and owned by its Unix id (where the agent serves content), before its
   * sites are rendered: nginx follows a symlink below it only to a file of the symlink's owner.
   * A failure (a NAS that squashes root) is reported; the sites are still rendered.
   */
  private async prepareOrgFolder(org: string, unixId: number, folders: OwnedContentFolders): Promise<void> {
    try {
      const prepared = await folders.prepare(org, ".", unixId);
      if (!prepared.ok) this.options.warn("organization folder not prepared", { org, reason: prepared.reason });
    } catch (error) {
      this.options.warn("organization folder not prepared", { org, reason: (error as Error).message });
    }
  }

  /**
   * The load balancer's check file in a website's document root. Not written (a failing check, so
   * the node leaves the rotation) where the folder is missing — silently: before content is
   * uploaded, and on a config-only node, that is the normal case — or refused; never fails the render.
   */
  private async writeCheck(
    org: string,
    service: string,
    root: { path: string },
  ): Promise<"written" | "missing" | undefined> {
    try {
      const skipped = await writeSiteCheck(root.path, siteCheckText(org, service));
      if (skipped === undefined) return "written";
      if (skipped === "no document root") {
        this.awaitCheck(org, service, root.path);
        return "missing";
      }
      this.options.warn("site check file not written", { org, service, reason: skipped.refused });
    } catch (error) {
      this.options.warn("site check file not written", { org, service, reason: (error as Error).message });
    }
    return undefined;
  }

  /** The site's check file waits for its document root (`retryMissingChecks`). */
  private awaitCheck(org: string, service: string, root: string): void {
    const services = this.missingChecks.get(org) ?? new Map<string, string>();
    this.missingChecks.set(org, services.set(service, root));
  }

  /**
   * Writes the check files of websites whose document root has appeared since (one lstat for each
   * still missing). An org's render replaces its entries, so a removed site leaves the list.
   */
  async retryMissingChecks(): Promise<void> {
    if (this.retrying) return; // the previous round is still going (a slow NAS): no pile-up
    this.retrying = true;
    try {
      await this.retryEachMissingCheck();
    } finally {
      this.retrying = false;
    }
  }

  private async retryEachMissingCheck(): Promise<void> {
    const waiting = [...this.missingChecks].flatMap(([org, services]) =>
      [...services].map(([service, root]) => ({ org, service, root })),
    );
    for (const { org, service, root } of waiting) {
      try {
        const skipped = await writeSiteCheck(root, siteCheckText(org, service));
        if (skipped === "no document root") continue;
        if (skipped) this.options.warn("site check file not written", { org, service, reason: skipped.refused });
      } catch (error) {
        this.options.warn("site check file not written", { org, service, reason: (error as Error).message });
      }
      const services = this.missingChecks.get(org);
      if (services?.get(service) !== root) continue; // rendered again meanwhile
      services.delete(service);
      if (services.size === 0) this.missingChecks.delete(org);
    }
  }

  /** The nginx sites of one org, from the database as a write's transaction leaves it. */
  sitesOf(org: string): NginxScope {
    return {
      key: `sites:${org}`,
      scope: siteScope(org),
      read: () => {
        const websites = this.websites(org);
        const unixId = this.options.store.getOrg(org)?.unixId;
        return { basis: canonicalJson(websites), render: () => this.siteSpecs(org, unixId, websites) };
      },
    };
  }

  /**
   * FTP accounts are not validated by a server, so they are rendered after the commit, from the
   * database: those of `usernames` only when given (and the org was rendered whole before), else the
   * org's whole.
   */
  private async renderFtp(org: string, usernames?: string[]): Promise<void> {
    const { ftp, store } = this.options;
    try {
      const state = store.getOrg(org);
      if (!state) {
        this.options.content.forget(org);
        return ftp.remove(org);
      }
      const users = usernames?.map((username): [string, UserRecord | undefined] => [
        username,
        store.getUser(org, username),
      ]);
      if (users && ftp.has(org) && (await ftp.renderUsers(org, users))) return;
      await this.renderAccounts(org, state.unixId);
    } catch (error) {
      this.ftpNotWritten(org, error);
    }
  }

  /** The org's FTP accounts, whole (the start's: with the folders it trusts). */
  private async renderAccounts(org: string, unixId: number | undefined, atStart?: OwnedContentFolders): Promise<void> {
    const { ftp, store } = this.options;
    try {
      if (unixId === undefined) throw new Error("the organization has no Unix id yet");
      await ftp.render(org, unixId, store.listServices(org), () => store.listUsers(org), atStart);
    } catch (error) {
      this.ftpNotWritten(org, error);
    }
  }

  private ftpNotWritten(org: string, error: unknown): void {
    // The database is the truth and the next start re-renders; the write itself succeeded.
    this.options.warn("ftp files not written", { org, reason: (error as Error).message });
  }

  /**
   * One FTP round: the accounts of `keys` ("org" whole, or "org/username"; EVERY_ORG: the start's)
   * rendered from the database, then the node's accounts published (with extauth, later:
   * accounts.ts `publishSoon`). Rounds run one at a time (pipeline/writes.ts).
   */
  async ftpRound(keys: Set<string>): Promise<void> {
    if (keys.has(EVERY_ORG)) return this.renderEveryAccount(); // every org whole covers any other key
    const rounds = new Map<string, string[] | undefined>(); // org → usernames, undefined: whole
    for (const key of keys) {
      const [org, username] = key.split("/");
      if (username === undefined) rounds.set(org, undefined);
      else if (!rounds.has(org)) rounds.set(org, [username]);
      else rounds.get(org)?.push(username);
    }
    for (const [org, usernames] of rounds) await this.renderFtp(org, usernames);
    try {
      await this.options.ftp.publishSoon();
    } catch (error) {
      // The previous PDB keeps serving; the next change (or the next start) rebuilds it.
      this.options.warn("ftp accounts not published", { reason: (error as Error).message });
    }
  }

  /**
   * On start, before the first request: every org's sites from the database (heals a crash between
   * a commit and its render). Folders verified before are trusted: the running agent relies on
   * them until the next write too.
   */
  async renderSites(): Promise<void> {
    const unixIds = this.options.store.orgUnixIds();
    const orgs = [...unixIds.keys()];
    const atStart = this.options.content.atStart(unixIds);
    const desired = new Map<string, SiteSpec>();
    const orgSites = await mapBounded(orgs, START_CONCURRENCY, (org) =>
      this.siteSpecs(org, unixIds.get(org), this.websites(org), atStart),
    );
    for (const sites of orgSites) for (const [key, site] of sites) desired.set(key, site);
    try {
      await this.options.reloads.activate(await this.options.sites.stage([{ scope: siteScope(), desired }]));
    } catch (error) {
      if (!(error instanceof ApiFailure)) throw error;
      this.options.warn("rendered configuration kept as it was", { reason: error.message });
    }
  }

  /**
   * The start's FTP round, the write pipeline's first (a write's round runs after it): every org's
   * accounts from the database, then `accountsReady`, then the PDB published now (kept when it
   * already holds them). A failure to publish rejects (pure-pw missing or misconfigured).
   */
  private async renderEveryAccount(): Promise<void> {
    const unixIds = this.options.store.orgUnixIds();
    const atStart = this.options.content.atStart(unixIds);
    await mapBounded([...unixIds.keys()], START_CONCURRENCY, (org) =>
      this.renderAccounts(org, unixIds.get(org), atStart),
    );
    await this.options.accountsReady?.();
    await this.options.ftp.removeLegacyFiles();
    await this.options.ftp.publish();
  }
}
