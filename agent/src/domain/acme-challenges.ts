/**
 * ACME HTTP-01 answers for a website of this node's copy of an org (primary or secondary): written
 * into the site's document root as this node resolves it, so the node answers whichever of the
 * org's nodes the load balancer sends the ACME server's request to. Not replicated: the provider
 * writes each serving node, and removes the answers once the order is done.
 */
import { ApiFailure, notFound } from "../errors";
import { type ChallengeRefused, removeAcmeChallenge, writeAcmeChallenge } from "../render/acme-challenge";
import type { ContentFolders, HostingStore } from "./ports";
import { requireOrg } from "./roles";

export class AcmeChallenges {
  constructor(
    private readonly store: HostingStore,
    private readonly content: ContentFolders,
  ) {}

  async put(org: string, service: string, token: string, keyAuthorization: string): Promise<void> {
    const root = await this.documentRoot(org, service);
    fail(service, await writeAcmeChallenge(root, token, keyAuthorization));
  }

  async remove(org: string, service: string, token: string): Promise<void> {
    fail(service, await removeAcmeChallenge(await this.documentRoot(org, service), token));
  }

  private async documentRoot(org: string, service: string): Promise<string> {
    requireOrg(this.store, org);
    const record = this.store.getService(org, service);
    if (record?.kind !== "website") throw notFound(`website "${service}" of organization "${org}"`);
    const root = await this.content.resolve(org, record.documentRoot);
    if (!root.ok) throw refused(service, root.reason);
    return root.path;
  }
}

const refused = (service: string, reason: string) =>
  new ApiFailure(422, "acme_challenge_refused", `service "${service}": ACME challenge not written: ${reason}`);

function fail(service: string, problem: ChallengeRefused | undefined): void {
  if (problem === undefined) return;
  throw refused(
    service,
    problem === "no document root" ? "its document root does not exist on this node" : problem.refused,
  );
}
