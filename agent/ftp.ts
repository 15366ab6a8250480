/**
 * FTP account material for pure-ftpd's virtual users (wired up by the FTP serving work): per org,
 * `<org>.passwd` in pure-ftpd's passwd format (feed to `pure-pw mkdb`) and `<org>.json` with the
 * same accounts plus what the passwd format cannot say (read-only or writable). One account per
 * (enabled user, enabled FTP service the user has access to); its login is
 * `<username>@<service>.<org>`, unique on the node. Home folders end in "/./" so pure-ftpd chroots
 * there. Files hold password hashes, so they are readable by the owner only.
 */
import fs from "node:fs";
import path from "node:path";
import type { ServiceRecord, UserRecord } from "../sdk/schemas";
import type { ContentRoot } from "./content";

export interface FtpAccount {
  login: string;
  username: string;
  service: string;
  home: string;
  writable: boolean;
}

export interface FtpIds {
  uid: number;
  gid: number;
}

/** The accounts an org's records give, skipping (and reporting) services whose folder is refused. */
function ftpAccounts(
  content: ContentRoot,
  org: string,
  ftpServices: Array<Extract<ServiceRecord, { kind: "ftp" }>>,
  users: UserRecord[],
  skip: (service: string, reason: string) => void,
): Array<FtpAccount & { passwordHash: string }> {
  const accounts: Array<FtpAccount & { passwordHash: string }> = [];
  for (const service of ftpServices) {
    const home = content.resolve(org, service.rootPath);
    if (!home.ok) {
      skip(service.name, home.reason);
      continue;
    }
    for (const user of users) {
      if (!user.enabled || !user.access.includes(service.name)) continue;
      accounts.push({
        login: `${user.username}@${service.name}.${org}`,
        username: user.username,
        service: service.name,
        home: home.path,
        writable: service.writable,
        passwordHash: user.passwordHash,
      });
    }
  }
  return accounts;
}

export class FtpFiles {
  constructor(
    private readonly dir: string,
    private readonly content: ContentRoot,
    private readonly ids: FtpIds,
    private readonly warn: (msg: string, fields: Record<string, unknown>) => void,
  ) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  /**
   * Rewrite one org's files from its records; remove them when the org has no FTP account. Users
   * are read only when the org has an enabled FTP service (most writes to big orgs have none).
   */
  render(org: string, services: ServiceRecord[], users: () => UserRecord[]): void {
    const ftpServices = services.filter(
      (service): service is Extract<ServiceRecord, { kind: "ftp" }> => service.kind === "ftp" && service.enabled,
    );
    const accounts =
      ftpServices.length === 0
        ? []
        : ftpAccounts(this.content, org, ftpServices, users(), (service, reason) =>
            this.warn("ftp service not rendered", { org, service, reason }),
          );
    if (accounts.length === 0) {
      this.remove(org);
      return;
    }
    const { uid, gid } = this.ids;
    const passwd = accounts.map((a) => `${a.login}:${a.passwordHash}:${uid}:${gid}::${a.home}/./::::::::::::\n`);
    const summary = accounts.map(({ login, username, service, home, writable }) => ({
      login,
      username,
      service,
      home,
      writable,
    }));
    writePrivate(path.join(this.dir, `${org}.passwd`), passwd.join(""));
    writePrivate(path.join(this.dir, `${org}.json`), `${JSON.stringify({ org, accounts: summary }, null, 2)}\n`);
  }

  remove(org: string): void {
    fs.rmSync(path.join(this.dir, `${org}.passwd`), { force: true });
    fs.rmSync(path.join(this.dir, `${org}.json`), { force: true });
  }

  /** Remove files of orgs that no longer exist (after a restart). */
  prune(keep: Set<string>): void {
    for (const file of fs.readdirSync(this.dir)) {
      const org = file.replace(/\.(passwd|json)$/, "");
      if (org !== file && !keep.has(org)) fs.rmSync(path.join(this.dir, file), { force: true });
    }
  }
}

function writePrivate(file: string, content: string): void {
  const temp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(temp, content, { mode: 0o600 });
  fs.renameSync(temp, file);
}
