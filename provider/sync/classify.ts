/**
 * Where a secondary's copy stands against its primary: pure decisions on the states the agents
 * report, no requests.
 */
import type { OrgStatus } from "../../wire";
import type { SecondaryState } from "../../sdk/outputs";

/** A primary's position: what a copy is compared with. */
export interface Head {
  generation: number;
  digest: string;
  epoch: number;
}

/** Where a secondary's copy stands against the primary. */
export function classify(primary: Head, copy: OrgStatus | undefined): Exclude<SecondaryState, "unreachable"> {
  if (!copy) return "missing";
  // A node that is a primary, or follows one at a higher epoch, refuses this primary: it is stale.
  if (copy.role !== "secondary" || copy.drifted || copy.epoch > primary.epoch) return "drifted";
  if (copy.generation === primary.generation && copy.digest === primary.digest) {
    // The same content from an earlier primary (failover, move): an empty delta makes it follow this one.
    return copy.epoch === primary.epoch ? "in-sync" : "behind";
  }
  if (copy.generation < primary.generation) return "behind";
  return "drifted";
}

/** Why a node that should hold a copy refuses this primary, or undefined. */
export function refusal(primary: Head, copy: OrgStatus): string | undefined {
  if (copy.role === "primary") return `the node holds this organization as a primary (epoch ${copy.epoch})`;
  if (copy.epoch > primary.epoch) {
    return (
      `the copy follows a primary at epoch ${copy.epoch}, newer than this primary's epoch ${primary.epoch}: ` +
      `this primary is stale (fenced)`
    );
  }
  return undefined;
}

/** The head an org status describes. */
export const headOf = (status: Head): Head => ({
  generation: status.generation,
  digest: status.digest,
  epoch: status.epoch,
});
