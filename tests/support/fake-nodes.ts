/**
 * In-memory stand-ins for agents, for unit tests of the sync rooms: each answers the calls a sync
 * makes (provider/sync/transfer.ts ReplicationClient) from a status it holds, and records them.
 */
import { AgentError, AgentUnreachableError } from "../../provider/client";
import type { ReplicationClient } from "../../provider/sync";
import type { Change, OrgStatus, ReplicaBody, ReplicaChangesBody, Snapshot } from "../../wire";

export const ORG = "acme";
export const digestAt = (generation: number) => generation.toString(16).padStart(64, "0");

export const userChange = (generation: number): Extract<Change, { type: "user.put" }> => ({
  generation,
  type: "user.put",
  user: {
    username: `u${generation}`,
    passwordHash: "$6$salt$" + "x".repeat(86),
    displayName: "",
    email: "",
    enabled: true,
    access: [],
    managedBy: "",
  },
});

export function orgStatus(overrides: Partial<OrgStatus> = {}): OrgStatus {
  return {
    name: ORG,
    displayName: "",
    role: "secondary",
    secondaries: [],
    loadBalanced: true,
    generation: 0,
    digest: digestAt(0),
    epoch: 0,
    drifted: false,
    managedBy: "",
    ...overrides,
  };
}

export class FakeNode implements ReplicationClient {
  readonly calls: string[] = [];
  /** What GET /v1/orgs/{org} answers; undefined: 404. */
  status: OrgStatus | undefined;
  /** The node does not answer. */
  down = false;
  /** A primary's change log. */
  log: Change[] = [];

  constructor(
    readonly endpoint: string,
    status?: OrgStatus,
  ) {
    this.status = status;
  }

  async getOrg(): Promise<OrgStatus> {
    return { ...this.held("getOrg") };
  }

  async snapshot(): Promise<Snapshot> {
    const status = this.held("snapshot");
    const org = { name: ORG, displayName: "", loadBalanced: true, secondaries: status.secondaries, managedBy: "" };
    return { generation: status.generation, digest: status.digest, epoch: status.epoch, org, users: [], services: [] };
  }

  async changesSince(_org: string, since: number) {
    const status = this.held("changesSince");
    const changes = this.log.filter((change) => change.generation > since);
    return { generation: status.generation, digest: status.digest, epoch: status.epoch, changes };
  }

  async putReplica(_org: string, body: ReplicaBody): Promise<OrgStatus> {
    this.reach("putReplica");
    const { generation, digest, epoch, primary } = body;
    this.status = orgStatus({ generation, digest, epoch, primary });
    return { ...this.status };
  }

  async applyReplicaChanges(_org: string, body: ReplicaChangesBody): Promise<OrgStatus> {
    const status = this.held("applyReplicaChanges");
    if (status.generation !== body.baseGeneration) {
      throw new AgentError(this.endpoint, 409, "base_mismatch", "the copy is elsewhere (HTTP 409 base_mismatch)");
    }
    const generation = body.changes.at(-1)?.generation ?? status.generation;
    this.status = { ...status, generation, digest: body.digest, epoch: body.epoch };
    return { ...this.status };
  }

  private reach(call: string): void {
    this.calls.push(call);
    if (this.down) throw new AgentUnreachableError(this.endpoint, "ECONNREFUSED");
  }

  private held(call: string): OrgStatus {
    this.reach(call);
    if (!this.status)
      throw new AgentError(this.endpoint, 404, "not_found", "no such organization (HTTP 404 not_found)");
    return this.status;
  }
}

/** A primary at `generation` with `secondaries`, whose log holds every change up to it. */
export function primaryAt(generation: number, secondaries: string[], epoch = 0): FakeNode {
  const node = new FakeNode(
    "http://primary",
    orgStatus({ role: "primary", generation, digest: digestAt(generation), epoch, secondaries }),
  );
  node.log = Array.from({ length: generation }, (_, index) => userChange(index + 1));
  return node;
}

/** A client factory over a set of fake nodes. */
export const factoryOf =
  (...nodes: FakeNode[]) =>
  (endpoint: string): FakeNode => {
    const node = nodes.find((candidate) => candidate.endpoint === endpoint);
    if (!node) throw new Error(`no fake node ${endpoint}`);
    return node;
  };
