/**
 * Reading secondaries without changing anything: what `pulumi refresh`, `lbhosting status` and
 * the first step of a sync see.
 */
import { activeSecondaries, type OrgStatus } from "../../wire";
import type { SecondaryState, SecondarySyncStatus } from "../../sdk/outputs";
import { AgentUnreachableError, unlessNotFound, type AgentClient } from "../client";
import { classify, refusal, type Head } from "./classify";
import { splitNamed, type EndpointFilter } from "./named";

/** What reading an org needs of a client (a fake in unit tests). */
export type OrgReader = Pick<AgentClient, "endpoint" | "getOrg">;

export interface SecondaryInspection {
  endpoint: string;
  state: SecondaryState;
  copy?: OrgStatus;
  /** What is wrong, as the org's output shows it. */
  error?: string;
  /** The same without the endpoint (a message that names the endpoint already says it). */
  reason?: string;
}

/** Reads one secondary's copy of an org without changing anything. */
export async function inspectSecondary(client: OrgReader, org: string, primary: Head): Promise<SecondaryInspection> {
  try {
    const copy = await unlessNotFound(client.getOrg(org));
    if (!copy) return { endpoint: client.endpoint, state: "missing" };
    const why = refusal(primary, copy);
    return { endpoint: client.endpoint, state: classify(primary, copy), copy, error: why, reason: why };
  } catch (error) {
    if (!(error instanceof AgentUnreachableError)) throw error;
    return { endpoint: client.endpoint, state: "unreachable", error: error.message, reason: error.reason };
  }
}

export function toSyncStatus(inspection: SecondaryInspection): SecondarySyncStatus {
  return {
    endpoint: inspection.endpoint,
    state: inspection.state,
    generation: inspection.copy?.generation ?? 0,
    digest: inspection.copy?.digest ?? "",
    lastSyncedAt: inspection.copy?.lastSyncedAt ?? "",
    ...(inspection.error ? { error: inspection.error } : {}),
  };
}

/**
 * Inspects every active secondary of an org the caller names: what `pulumi refresh` and
 * `lbhosting status` show. The others the primary lists are returned as `unexpected`, unread.
 */
export async function inspectOrg(
  primary: OrgReader,
  org: string,
  clientFor: (endpoint: string) => OrgReader,
  isNamed?: EndpointFilter,
): Promise<{ primary: OrgStatus; secondaries: SecondaryInspection[]; unexpected: string[] }> {
  const status = await primary.getOrg(org);
  const { named, unexpected } = splitNamed(activeSecondaries(status), isNamed);
  const secondaries = await Promise.all(named.map((endpoint) => inspectSecondary(clientFor(endpoint), org, status)));
  return { primary: status, secondaries, unexpected };
}
