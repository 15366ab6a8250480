/**
 * Organization tokens: credentials an admin issues for one org on this node (http/scope.ts says
 * what they may reach). The secret is shown once, when issued; the store keeps only its SHA-256.
 * A fast hash is the right one here, unlike for passwords: the secret is 32 random bytes, so no
 * dictionary or brute force can find it from its hash, and a fast hash costs nothing per request.
 */
import { createHash, randomBytes } from "node:crypto";
import type { IssuedOrgToken, OrgToken, RevokedOrgToken } from "../../../wire";
import { notFound } from "../errors";
import type { OrgTokenRow } from "../store/store";

/** What the token rules need from the store (store/store.ts). */
export interface OrgTokenStore {
  insertOrgToken(token: OrgTokenRow & { secretHash: Buffer }): void;
  orgTokens(org: string): OrgTokenRow[];
  orgOfSecret(secretHash: Buffer): string | undefined;
  deleteOrgToken(org: string, id: string): boolean;
  /** Make the commits so far durable. */
  flush(): Promise<void>;
}

const PREFIX = "lbo_";
const ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";

const secretHash = (token: string): Buffer => createHash("sha256").update(token, "utf8").digest();

/** 16 random lowercase letters or digits (orgTokenIdSchema); bytes from 252 (7 × 36) up are skipped, so none is likelier. */
function randomId(): string {
  let id = "";
  while (id.length < 16) {
    for (const byte of randomBytes(32)) {
      if (byte < 252 && id.length < 16) id += ID_ALPHABET[byte % 36];
    }
  }
  return id;
}

const listed = (row: OrgTokenRow): OrgToken => ({
  id: row.id,
  org: row.org,
  label: row.label,
  createdAt: row.created_at,
});

export class OrgTokens {
  constructor(
    private readonly store: OrgTokenStore,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** A new token for `org` (which need not exist on this node yet): its secret is in this answer only. */
  async issue(org: string, label: string): Promise<IssuedOrgToken> {
    const id = randomId();
    const token = `${PREFIX}${id}_${randomBytes(32).toString("base64url")}`;
    const row: OrgTokenRow = { id, org, label, created_at: this.now().toISOString() };
    this.store.insertOrgToken({ ...row, secretHash: secretHash(token) });
    await this.store.flush();
    return { ...listed(row), token };
  }

  list(org: string): OrgToken[] {
    return this.store.orgTokens(org).map(listed);
  }

  /** Answers once the revocation is durable: a revoked token does not come back after a crash. */
  async revoke(org: string, id: string): Promise<RevokedOrgToken> {
    if (!this.store.deleteOrgToken(org, id)) throw notFound(`token "${id}" of organization "${org}"`);
    await this.store.flush();
    return { id, org, revoked: true };
  }

  /**
   * The org a presented token acts for, or undefined. Looked up by the hash of what was presented:
   * the lookup's timing can reveal only hash prefixes, from which no secret can be worked out.
   * Read on every request, so a revoked token is refused from the next one on.
   */
  orgOf(presented: string): string | undefined {
    if (!presented.startsWith(PREFIX)) return undefined;
    return this.store.orgOfSecret(secretHash(presented));
  }
}
