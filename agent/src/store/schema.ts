/** The agent's SQLite tables, their schema version, and every statement the store runs. */
import type Database from "better-sqlite3";

export interface OrgRow {
  name: string;
  record: string;
  role: string;
  primary_endpoint: string | null;
  generation: number;
  digest: string;
  epoch: number;
  log_floor: number;
  synced_digest: string | null;
  last_synced_at: string | null;
}

/**
 * 2: `orgs.epoch` (version 1 databases get the column, every org at epoch 0).
 * 3: digest format 2 and `content_sums` (filled from the rows; digests recomputed, see `migrateDigests`).
 */
export const SCHEMA_VERSION = 3;

export const SCHEMA = `
CREATE TABLE IF NOT EXISTS orgs (
  name TEXT PRIMARY KEY,
  record TEXT NOT NULL,
  record_hash TEXT NOT NULL,
  role TEXT NOT NULL CHECK (role IN ('primary', 'secondary')),
  primary_endpoint TEXT,
  generation INTEGER NOT NULL,
  digest TEXT NOT NULL,
  epoch INTEGER NOT NULL DEFAULT 0,
  log_floor INTEGER NOT NULL,
  synced_digest TEXT,
  last_synced_at TEXT
) STRICT;
CREATE TABLE IF NOT EXISTS users (
  org TEXT NOT NULL REFERENCES orgs(name) ON DELETE CASCADE,
  username TEXT NOT NULL,
  record TEXT NOT NULL,
  record_hash TEXT NOT NULL,
  PRIMARY KEY (org, username)
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS services (
  org TEXT NOT NULL REFERENCES orgs(name) ON DELETE CASCADE,
  name TEXT NOT NULL,
  record TEXT NOT NULL,
  record_hash TEXT NOT NULL,
  PRIMARY KEY (org, name)
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS changes (
  org TEXT NOT NULL REFERENCES orgs(name) ON DELETE CASCADE,
  generation INTEGER NOT NULL,
  change TEXT NOT NULL,
  PRIMARY KEY (org, generation)
) STRICT, WITHOUT ROWID;
-- Per org, the set sums (digest.ts) of its users' and of its services' record hashes (no row: the
-- empty set): a row of its own each, in a rowid table, so a 2 KB sum fits in its page and a write
-- rewrites one page.
CREATE TABLE IF NOT EXISTS content_sums (
  org TEXT NOT NULL REFERENCES orgs(name) ON DELETE CASCADE,
  kind TEXT NOT NULL CHECK (kind IN ('users', 'services')),
  sum BLOB NOT NULL,
  PRIMARY KEY (org, kind)
) STRICT;
-- Load-balancer routes are node-local, not org content: no foreign key, no digest, no change log.
-- Added without a version bump: older agents simply ignore the table.
CREATE TABLE IF NOT EXISTS balancer_routes (
  org TEXT PRIMARY KEY,
  route TEXT NOT NULL
) STRICT, WITHOUT ROWID;
`;

/** Every statement the store runs, prepared once. */
export function prepareStatements(db: Database.Database) {
  return {
    getOrg: db.prepare<[string], OrgRow>("SELECT * FROM orgs WHERE name = ?"),
    orgNames: db.prepare<[], { name: string }>("SELECT name FROM orgs ORDER BY name"),
    upsertOrg: db.prepare(
      `INSERT INTO orgs (name, record, record_hash, role, primary_endpoint, generation, digest, epoch, log_floor,
         synced_digest, last_synced_at)
       VALUES (@name, @record, @record_hash, @role, @primary_endpoint, @generation, @digest, @epoch, @log_floor,
         @synced_digest, @last_synced_at)
       ON CONFLICT (name) DO UPDATE SET record = excluded.record, record_hash = excluded.record_hash,
         role = excluded.role, primary_endpoint = excluded.primary_endpoint, generation = excluded.generation,
         digest = excluded.digest, epoch = excluded.epoch, log_floor = excluded.log_floor,
         synced_digest = excluded.synced_digest, last_synced_at = excluded.last_synced_at`,
    ),
    deleteOrg: db.prepare<[string]>("DELETE FROM orgs WHERE name = ?"),
    orgHash: db.prepare<[string], { record_hash: string }>("SELECT record_hash FROM orgs WHERE name = ?"),
    userHashes: db.prepare<[string], string>("SELECT record_hash FROM users WHERE org = ?").pluck(),
    serviceHashes: db.prepare<[string], string>("SELECT record_hash FROM services WHERE org = ?").pluck(),
    getUser: db.prepare<[string, string], string>("SELECT record FROM users WHERE org = ? AND username = ?").pluck(),
    listUsers: db.prepare<[string], string>("SELECT record FROM users WHERE org = ? ORDER BY username").pluck(),
    putUser: db.prepare<[string, string, string, string]>(
      `INSERT INTO users (org, username, record, record_hash) VALUES (?, ?, ?, ?)
       ON CONFLICT (org, username) DO UPDATE SET record = excluded.record, record_hash = excluded.record_hash`,
    ),
    deleteUser: db.prepare<[string, string]>("DELETE FROM users WHERE org = ? AND username = ?"),
    deleteUsers: db.prepare<[string]>("DELETE FROM users WHERE org = ?"),
    getService: db.prepare<[string, string], string>("SELECT record FROM services WHERE org = ? AND name = ?").pluck(),
    listServices: db.prepare<[string], string>("SELECT record FROM services WHERE org = ? ORDER BY name").pluck(),
    putService: db.prepare<[string, string, string, string]>(
      `INSERT INTO services (org, name, record, record_hash) VALUES (?, ?, ?, ?)
       ON CONFLICT (org, name) DO UPDATE SET record = excluded.record, record_hash = excluded.record_hash`,
    ),
    deleteService: db.prepare<[string, string]>("DELETE FROM services WHERE org = ? AND name = ?"),
    deleteServices: db.prepare<[string]>("DELETE FROM services WHERE org = ?"),
    appendChange: db.prepare<[string, number, string]>(
      "INSERT INTO changes (org, generation, change) VALUES (?, ?, ?)",
    ),
    changesSince: db
      .prepare<[string, number], string>(
        "SELECT change FROM changes WHERE org = ? AND generation > ? ORDER BY generation",
      )
      .pluck(),
    trimChanges: db.prepare<[string, number]>("DELETE FROM changes WHERE org = ? AND generation <= ?"),
    deleteChanges: db.prepare<[string]>("DELETE FROM changes WHERE org = ?"),
    getRoute: db.prepare<[string], string>("SELECT route FROM balancer_routes WHERE org = ?").pluck(),
    listRoutes: db.prepare<[], { org: string; route: string }>("SELECT * FROM balancer_routes ORDER BY org"),
    putRoute: db.prepare<[string, string]>(
      "INSERT INTO balancer_routes (org, route) VALUES (?, ?) ON CONFLICT (org) DO UPDATE SET route = excluded.route",
    ),
    deleteRoute: db.prepare<[string]>("DELETE FROM balancer_routes WHERE org = ?"),
    getSum: db.prepare<[string, string], Buffer>("SELECT sum FROM content_sums WHERE org = ? AND kind = ?").pluck(),
    putSum: db.prepare<[string, string, Buffer]>(
      "INSERT INTO content_sums (org, kind, sum) VALUES (?, ?, ?) ON CONFLICT (org, kind) DO UPDATE SET sum = excluded.sum",
    ),
    deleteSums: db.prepare<[string]>("DELETE FROM content_sums WHERE org = ?"),
    setDigest: db.prepare<[string, string]>("UPDATE orgs SET digest = ? WHERE name = ?"),
    setGeneration: db.prepare<[number, number, string]>("UPDATE orgs SET generation = ?, log_floor = ? WHERE name = ?"),
    userHash: db
      .prepare<[string, string], string>("SELECT record_hash FROM users WHERE org = ? AND username = ?")
      .pluck(),
    serviceHash: db
      .prepare<[string, string], string>("SELECT record_hash FROM services WHERE org = ? AND name = ?")
      .pluck(),
  };
}

export type Statements = ReturnType<typeof prepareStatements>;
