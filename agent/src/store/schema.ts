/** The agent's SQLite tables and their schema version (the store migrates older databases, store.ts). */
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
  unix_id: number | null;
}

/**
 * 2: `orgs.epoch` (version 1 databases get the column, every org at epoch 0).
 * 3: digest format 2 and `content_sums` (filled from the rows; digests recomputed, see `migrateDigests`).
 * 4: `orgs.unix_id`, unique (older orgs get theirs on start: domain/unix-ids.ts `assignMissingUnixIds`).
 */
export const SCHEMA_VERSION = 4;

/** One org per Unix id on a node (made after the column exists: version 3 databases get it added). */
export const UNIX_ID_INDEX = "CREATE UNIQUE INDEX IF NOT EXISTS orgs_unix_id ON orgs (unix_id)";

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
  last_synced_at TEXT,
  unix_id INTEGER
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
-- Organization tokens: only a SHA-256 of each secret (domain/org-tokens.ts says why a fast hash
-- suffices). Node-local, and not tied to an org row: an admin issues a token before the tenant's
-- stack creates the org. Added without a version bump, like balancer_routes.
CREATE TABLE IF NOT EXISTS org_tokens (
  id TEXT PRIMARY KEY,
  org TEXT NOT NULL,
  label TEXT NOT NULL,
  secret_hash BLOB NOT NULL UNIQUE,
  created_at TEXT NOT NULL
) STRICT;
-- The nodes an admin registered with this load balancer: the only backends a route may name.
CREATE TABLE IF NOT EXISTS registered_backends (
  name TEXT PRIMARY KEY,
  addresses TEXT NOT NULL
) STRICT, WITHOUT ROWID;
-- Content folders the agent verified: made the org's and reached through no symlink, or a
-- website's document root as resolved (present: holding its check file; or not there yet). A start
-- trusts them instead of checking every org's folders again (pipeline/verified-folders.ts).
-- Node-local; added without a version bump. No foreign key: a write renders before it commits (a
-- replica's first import creates the org), and a record outliving its org is only trusted for the
-- Unix id it was made with.
CREATE TABLE IF NOT EXISTS verified_folders (
  org TEXT NOT NULL,
  relative TEXT NOT NULL,
  unix_id INTEGER NOT NULL,
  path TEXT NOT NULL,
  present INTEGER NOT NULL CHECK (present IN (0, 1)),
  PRIMARY KEY (org, relative)
) STRICT, WITHOUT ROWID;
`;
