/** Org writes: create (as primary) or replace an org's settings, and remove it. */
import { type OrgRecord, type OrgSettings, type OrgStatus, canonicalJson, normalizeEndpoint } from "../../../wire";
import { ApiFailure } from "../errors";
import type { OrgState } from "../store/org-state";
import type { ChangeLog } from "./change-log";
import { type HostingStore, UNTOUCHED, type WriteQueue } from "./ports";
import { type WriteOptions, orgAfter, orgStatus, rejectOtherOwner, rejectSecondaryWrite, requireOrg } from "./roles";
import type { UnixIdRange } from "../../../wire";
import { allocateUnixId } from "./unix-ids";

export class OrgWrites {
  constructor(
    private readonly store: HostingStore,
    private readonly queue: WriteQueue,
    private readonly log: ChangeLog,
    /** Where a new org's Unix id comes from (`--org-id-range`). */
    private readonly unixIds: UnixIdRange,
  ) {}

  /** Create (as primary) or replace the org's settings (defaults applied by orgSettingsSchema). */
  putOrg(name: string, body: OrgSettings, options: WriteOptions): Promise<{ status: OrgStatus; created: boolean }> {
    const secondaries = body.secondaries.map(normalizeEndpoint);
    if (new Set(secondaries).size !== secondaries.length) {
      throw new ApiFailure(
        400,
        "validation_failed",
        "invalid request: secondaries: must not list the same secondary twice",
        [{ path: "secondaries", message: "must not list the same secondary twice" }],
      );
    }
    const record: OrgRecord = {
      name,
      displayName: body.displayName,
      loadBalanced: body.loadBalanced,
      secondaries,
      managedBy: body.managedBy,
    };
    return this.queue.plain<{ status: OrgStatus; created: boolean }>(name, () => {
      const state = this.store.getOrg(name);
      if (!state) {
        const unixId = allocateUnixId(name, this.unixIds, (id) => this.store.orgWithUnixId(id));
        const fresh: OrgState = {
          record: { ...record, unixId },
          unixId,
          role: "primary",
          primary: null,
          generation: 0,
          digest: "",
          epoch: 0,
          logFloor: 0,
          syncedDigest: null,
          lastSyncedAt: null,
        };
        this.store.saveOrg(fresh); // the row the first log entry refers to
        this.log.record(fresh, { type: "org.put", org: fresh.record });
        return { finish: (after) => ({ status: orgStatus(orgAfter(after)), created: true }), touched: UNTOUCHED };
      }
      rejectSecondaryWrite(state, options);
      // In the write's own transaction: of two stacks creating one org, the second is refused here.
      rejectOtherOwner(`organization "${name}"`, state.record, options);
      // The id stays the org's for its life (its folders are owned by it).
      const unixId = state.record.unixId ?? state.unixId;
      const next: OrgRecord = unixId === undefined ? record : { ...record, unixId };
      if (canonicalJson(state.record) !== canonicalJson(next)) {
        this.log.record({ ...state, record: next }, { type: "org.put", org: next });
      }
      return { finish: (after) => ({ status: orgStatus(orgAfter(after)), created: false }), touched: UNTOUCHED };
    });
  }

  /** Remove the org, its users, services and log (and its rendered configuration; never content). */
  async deleteOrg(name: string, options: WriteOptions): Promise<void> {
    await this.queue.config(name, () => {
      const state = requireOrg(this.store, name);
      rejectSecondaryWrite(state, options);
      this.store.deleteOrg(name);
      return { finish: () => undefined, touched: { sites: true, ftp: true } };
    });
  }
}
