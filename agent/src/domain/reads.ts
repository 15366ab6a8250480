/** What the agent answers about its orgs: records, snapshots and the change log since a generation. */
import {
  type ChangesResult,
  type OrgStatus,
  type ServiceView,
  type Snapshot,
  type UserRecord,
  serviceView,
} from "../../../wire";
import { ApiFailure, notFound } from "../errors";
import type { HostingStore } from "./ports";
import { orgStatus, requireOrg } from "./roles";

export class Reads {
  constructor(private readonly store: HostingStore) {}

  orgStatus(name: string): OrgStatus {
    return orgStatus(requireOrg(this.store, name));
  }

  listOrgs(): OrgStatus[] {
    return this.store.orgNames().map((name) => this.orgStatus(name));
  }

  listUsers(org: string): UserRecord[] {
    requireOrg(this.store, org);
    return this.store.listUsers(org);
  }

  getUser(org: string, username: string): UserRecord {
    requireOrg(this.store, org);
    const user = this.store.getUser(org, username);
    if (!user) throw notFound(`user "${username}" of organization "${org}"`);
    return user;
  }

  listServices(org: string): ServiceView[] {
    requireOrg(this.store, org);
    return this.store.listServices(org).map(serviceView);
  }

  getService(org: string, name: string): ServiceView {
    requireOrg(this.store, org);
    const service = this.store.getService(org, name);
    if (!service) throw notFound(`service "${name}" of organization "${org}"`);
    return serviceView(service);
  }

  /** The org's whole replicated content; read in one transaction so it is one consistent generation. */
  snapshot(name: string): Snapshot {
    return this.store.transaction(() => {
      const state = requireOrg(this.store, name);
      return {
        generation: state.generation,
        digest: state.digest,
        epoch: state.epoch,
        org: state.record,
        users: this.store.listUsers(name),
        services: this.store.listServices(name),
      };
    });
  }

  changesSince(name: string, since: number): ChangesResult {
    return this.store.transaction(() => {
      const state = requireOrg(this.store, name);
      if (since > state.generation) {
        throw new ApiFailure(
          410,
          "log_unavailable",
          `organization "${name}" is at generation ${state.generation}, before ${since}; take a full snapshot`,
        );
      }
      if (since < state.logFloor) {
        throw new ApiFailure(
          410,
          "log_unavailable",
          `the change log of organization "${name}" starts after generation ${state.logFloor}, not ${since}; take a full snapshot`,
        );
      }
      return {
        generation: state.generation,
        digest: state.digest,
        epoch: state.epoch,
        changes: this.store.changesSince(name, since),
      };
    });
  }
}
