/**
 * Replication as a secondary copy takes it (what a primary's sync calls): a whole snapshot, a
 * delta of consecutive changes, removal (demotion); and failover, which makes a copy the primary
 * at a raised epoch. The epoch fences: nothing from a primary at a lower epoch is applied.
 */
import {
  type OrgStatus,
  type PromoteBody,
  type ReplicaBody,
  type ReplicaChangesBody,
  normalizeEndpoint,
} from "../../../wire";
import { ApiFailure } from "../errors";
import { contentDigest } from "../store/digest";
import type { OrgState } from "../store/org-state";
import type { ChangeLog } from "./change-log";
import { type HostingStore, type Mutation, UNTOUCHED, type WriteQueue } from "./ports";
import { orgAfter, orgStatus, rejectDomainElsewhere, rejectPrimary, rejectStaleEpoch, requireOrg } from "./roles";
import type { UnixIdRange } from "../../../wire";
import { allocateUnixId, rejectUnixIdTaken } from "./unix-ids";

const invalid = (path: string, message: string, summary = `${path}: ${message}`): ApiFailure =>
  new ApiFailure(400, "validation_failed", `invalid request: ${summary}`, [{ path, message }]);

export class Replication {
  constructor(
    private readonly store: HostingStore,
    private readonly queue: WriteQueue,
    private readonly log: ChangeLog,
    /** Where a copy's id comes from when its primary's record carries none (an older primary). */
    private readonly unixIds: UnixIdRange,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** Replace this node's secondary copy of the org wholesale with a primary's snapshot. */
  importReplica(name: string, body: ReplicaBody): Promise<OrgStatus> {
    if (body.org.name !== name) throw invalid("org.name", "must equal the organization in the URL");
    const duplicate = (values: string[]) => new Set(values).size !== values.length;
    if (duplicate(body.users.map((user) => user.username)) || duplicate(body.services.map((service) => service.name))) {
      const path = duplicate(body.users.map((user) => user.username)) ? "users" : "services";
      throw invalid(path, "must not hold the same name twice");
    }
    if (contentDigest(body.org, body.users, body.services) !== body.digest) {
      throw new ApiFailure(400, "digest_mismatch", "the snapshot's content does not match its digest", [
        { path: "digest", message: "must be the digest of the snapshot's content" },
      ]);
    }
    return this.queue.config(name, () => {
      const existing = this.store.getOrg(name);
      if (existing) {
        rejectStaleEpoch(existing, body.epoch);
        // A primary at a lower epoch was superseded (failover, move): a snapshot demotes it.
        if (existing.epoch === body.epoch) rejectPrimary(existing);
        this.store.clearOrgContent(name);
      }
      // The primary's id, which must be free here; else (an older primary) ours, kept or allocated.
      const unixId =
        body.org.unixId ?? existing?.unixId ?? allocateUnixId(name, this.unixIds, (id) => this.store.orgWithUnixId(id));
      rejectUnixIdTaken(this.store, name, unixId, "org.unixId");
      const state: OrgState = {
        unixId,
        record: body.org,
        role: "secondary",
        primary: normalizeEndpoint(body.primary),
        generation: body.generation,
        digest: body.digest,
        epoch: body.epoch,
        logFloor: body.generation,
        syncedDigest: body.digest,
        lastSyncedAt: this.now().toISOString(),
      };
      this.store.saveOrg(state);
      for (const user of body.users) this.store.putUser(name, user);
      body.services.forEach((service, index) =>
        rejectDomainElsewhere(this.store, name, service, `services.${index}.domains`),
      );
      for (const service of body.services) this.store.putService(name, service);
      if (this.store.computeDigest(name) !== body.digest) {
        throw new Error("stored replica digest differs from the verified snapshot digest");
      }
      return { finish: (after) => orgStatus(orgAfter(after)), touched: { sites: true, ftp: true } };
    });
  }

  /** Apply a delta to a secondary copy that is exactly at `baseGeneration` and undrifted. */
  applyChanges(name: string, body: ReplicaChangesBody): Promise<OrgStatus> {
    body.changes.forEach((change, index) => {
      if (change.generation !== body.baseGeneration + 1 + index) {
        throw invalid(
          `changes.${index}.generation`,
          `must be ${body.baseGeneration + 1 + index}`,
          "changes must have consecutive generations",
        );
      }
      if (change.type === "org.put" && change.org.name !== name) {
        throw invalid(
          `changes.${index}.org.name`,
          "must equal the organization in the URL",
          "a change names another organization",
        );
      }
    });
    // Most deltas change users only: those commit at once, without the nginx queue.
    const sites = body.changes.some((change) => change.type === "service.put" || change.type === "service.delete");
    const apply = (): Mutation<OrgStatus> => {
      const state = requireOrg(this.store, name);
      rejectStaleEpoch(state, body.epoch);
      rejectPrimary(state);
      this.checkBase(state, body);
      // From a higher epoch the copy follows the new primary: the base and digest checks still hold.
      const reparent = body.epoch > state.epoch && body.primary !== undefined;
      const next: OrgState = {
        ...state,
        epoch: body.epoch,
        ...(reparent ? { primary: normalizeEndpoint(body.primary as string) } : {}),
      };
      for (const [index, change] of body.changes.entries()) {
        if (change.type === "org.put") {
          if (change.org.unixId !== undefined) {
            rejectUnixIdTaken(this.store, name, change.org.unixId, `changes.${index}.org.unixId`);
            next.unixId = change.org.unixId;
          }
          next.record = change.org;
        } else if (change.type === "user.put") this.store.putUser(name, change.user);
        else if (change.type === "user.delete") this.store.deleteUser(name, change.username);
        else if (change.type === "service.put") {
          rejectDomainElsewhere(this.store, name, change.service, `changes.${index}.service.domains`);
          this.store.putService(name, change.service);
        } else this.store.deleteService(name, change.name);
        this.store.appendChange(name, change);
      }
      next.generation = body.baseGeneration + body.changes.length;
      next.logFloor = this.log.trim(name, next.generation, state.logFloor);
      this.store.saveOrg(next);
      next.digest = this.store.computeDigest(name);
      if (next.digest !== body.digest) {
        throw new ApiFailure(
          409,
          "digest_mismatch",
          `after the changes the copy of organization "${name}" does not have the expected digest; send a snapshot`,
        );
      }
      next.syncedDigest = next.digest;
      next.lastSyncedAt = this.now().toISOString();
      this.store.saveOrg(next);
      // Service changes render the org's FTP accounts whole; user changes only those users'.
      const users = body.changes.flatMap((change) =>
        change.type === "user.put" ? [change.user.username] : change.type === "user.delete" ? [change.username] : [],
      );
      return { finish: (after) => orgStatus(orgAfter(after)), touched: { sites, ftp: sites || [...new Set(users)] } };
    };
    return sites ? this.queue.config(name, apply) : this.queue.plain(name, apply);
  }

  /** A delta applies only to the copy it was made for: same primary, same generation, no local edit. */
  private checkBase(state: OrgState, body: ReplicaChangesBody): void {
    const name = state.record.name;
    const reparent = body.epoch > state.epoch;
    if (!reparent && body.primary !== undefined && state.primary !== normalizeEndpoint(body.primary)) {
      throw new ApiFailure(
        409,
        "other_primary",
        `the copy of organization "${name}" comes from ${state.primary ?? "unknown"}, not ${normalizeEndpoint(body.primary)}; send a snapshot`,
      );
    }
    if (state.generation !== body.baseGeneration) {
      throw new ApiFailure(
        409,
        "stale_base",
        `the copy of organization "${name}" is at generation ${state.generation}, not ${body.baseGeneration}; send a snapshot`,
      );
    }
    if (state.digest !== state.syncedDigest) {
      throw new ApiFailure(409, "drifted", `the copy of organization "${name}" was edited locally; send a snapshot`);
    }
  }

  /**
   * Remove this node's secondary copy (demotion). With `epoch` (the org's current epoch), a node
   * that still holds the org as primary at a lower epoch — a former primary — loses it too, and a
   * copy that follows a higher epoch than the caller's is kept (409 stale_epoch).
   */
  async deleteReplica(name: string, epoch?: number): Promise<void> {
    await this.queue.config(name, () => {
      const state = requireOrg(this.store, name);
      if (epoch !== undefined) rejectStaleEpoch(state, epoch);
      if (epoch === undefined || state.epoch >= epoch) rejectPrimary(state);
      this.store.deleteOrg(name);
      return { finish: () => undefined, touched: { sites: true, ftp: true } };
    });
  }

  /**
   * Failover: this node's secondary copy becomes the org's primary, at the copy's generation and
   * digest (no content changes, no log entry), with the raised `epoch`. Repeating a promotion that
   * happened answers the same; promoting a copy that changed since the caller looked is refused.
   */
  promote(name: string, body: PromoteBody): Promise<OrgStatus> {
    return this.queue.plain(name, () => {
      const state = requireOrg(this.store, name);
      const done = { finish: (after: OrgState | undefined) => orgStatus(orgAfter(after)), touched: UNTOUCHED };
      if (state.role === "primary" && state.epoch === body.epoch) return done;
      if (body.epoch <= state.epoch) {
        throw new ApiFailure(
          409,
          "stale_epoch",
          `organization "${name}" is at epoch ${state.epoch} on this node; a promotion must raise it (not ${body.epoch})`,
        );
      }
      rejectPrimary(state);
      if (state.generation !== body.generation || state.digest !== body.digest) {
        throw new ApiFailure(
          409,
          "copy_changed",
          `the copy of organization "${name}" is at generation ${state.generation} (digest ${state.digest.slice(0, 12)}), ` +
            `not ${body.generation} (digest ${body.digest.slice(0, 12)}); look again before promoting it`,
        );
      }
      this.store.saveOrg({
        ...state,
        role: "primary",
        primary: null,
        epoch: body.epoch,
        syncedDigest: null,
        lastSyncedAt: null,
      });
      return done;
    });
  }
}
