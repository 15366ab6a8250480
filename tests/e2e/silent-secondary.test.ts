/**
 * `pulumi up` changing 20 passwords while a secondary falls silent, with the real CLI: the
 * secondary's agent runs in a network namespace made here (lbh-i26-sec, veth lbhi26s/lbhi26t,
 * 169.254.226.16/30 on that pair only) and an iptables DROP rule inside it swallows every packet.
 * The `up` fails naming the secondary after about one timeout (not one per user), the primary keeps
 * every change, the stack's outputs (a SyncCheck after the users, `up --continue-on-error`) say the
 * secondary is unreachable rather than in sync, a preview shows work left, and the first `up` once
 * the host is back converges. Needs root, iproute2, iptables and the Pulumi CLI.
 */
import * as pulumi from "@pulumi/pulumi";
import { expect } from "chai";
import { AgentClient } from "../../provider/client";
import { LoadBalancedOrganization, OrgUser, SyncCheck } from "../../sdk";
import type { SecondarySyncStatus } from "../../sdk/outputs";
import { startAgentProcess, type AgentProcess } from "../support/agent-process";
import { createNamespaceHost, type NamespaceHost } from "../support/netns";
import { createTestStack, requirePulumi } from "../support/pulumi";

const TOKEN = "silent-secondary-e2e-token-0123456789";
const USERS = 20;
const TIMEOUT_MS = 3000;

describe("e2e fault: pulumi up with a silent secondary", function () {
  let bin: string;
  let host: NamespaceHost | undefined;
  let primary: AgentProcess | undefined;
  let secondary: AgentProcess | undefined;
  let dropped = false;

  before(async function () {
    bin = requirePulumi(this);
    host = createNamespaceHost(this, {
      name: "lbh-i26-sec",
      rootLink: "lbhi26s",
      hostLink: "lbhi26t",
      rootAddress: "169.254.226.17",
      hostAddress: "169.254.226.18",
    });
    [primary, secondary] = await Promise.all([
      startAgentProcess({ host: "127.0.36.1", name: "web1", token: TOKEN }),
      startAgentProcess({ host: host.address, name: "web2", token: TOKEN, runUnder: host.exec }),
    ]);
  });

  after(async function () {
    if (host && dropped) host.undrop();
    for (const agent of [primary, secondary]) {
      if (!agent) continue;
      await agent.stop();
      agent.cleanup();
    }
    host?.remove();
  });

  it("fails naming the secondary in about one timeout; the outputs say it is not in sync; the next up converges", async function () {
    const primaryUrl = (primary as AgentProcess).url;
    const secondaryUrl = (secondary as AgentProcess).url;
    let round = 1;
    const testStack = await createTestStack(bin, {
      projectName: "silent-secondary",
      config: {
        "lbhosting:token": { value: TOKEN, secret: true },
        "lbhosting:timeoutMs": { value: String(TIMEOUT_MS) },
      },
      program: async () => {
        const org = new LoadBalancedOrganization("org", {
          name: "steady",
          primary: primaryUrl,
          secondaries: [secondaryUrl],
          loadBalanced: true,
        });
        const users = Array.from({ length: USERS }, (_, index) => {
          const username = `user${index}`;
          return new OrgUser(username, {
            organization: org,
            username,
            password: pulumi.secret(`${username}-password-${round}`),
          });
        });
        const check = new SyncCheck("sync", { organization: org, after: users });
        return { generation: check.generation, inSync: check.inSync, syncStatus: check.syncStatus };
      },
    });
    const outputs = async () => {
      const all = await testStack.stack.outputs();
      return {
        generation: all.generation.value as number,
        inSync: all.inSync.value as boolean,
        secondary: (all.syncStatus.value as SecondarySyncStatus[]).find((entry) => entry.endpoint === secondaryUrl),
      };
    };
    const primaryClient = new AgentClient(primaryUrl, TOKEN, { retries: 0 });
    try {
      expect((await testStack.stack.up()).summary.result).to.equal("succeeded");
      expect(await outputs()).to.deep.include({ inSync: true });

      (host as NamespaceHost).drop();
      dropped = true;
      round = 2;
      const started = Date.now();
      const failure = await testStack.stack.up({ continueOnError: true }).then(
        () => "succeeded",
        (error: Error) => error.message,
      );
      const elapsed = Date.now() - started;
      console.log(`      up of ${USERS} password changes with a secondary dropped: failed after ${elapsed} ms`);
      expect(failure).to.include(`${secondaryUrl} is unreachable: no connection within ${TIMEOUT_MS} ms`);
      // Every change is on the primary; the outputs say where the secondary stands, not "in sync".
      const after = await outputs();
      expect(after.generation).to.equal((await primaryClient.getOrg("steady")).generation);
      expect(after.inSync).to.equal(false);
      expect(after.secondary).to.include({ state: "unreachable" });
      const pending = await testStack.stack.preview();
      expect(pending.changeSummary.update ?? 0, "a preview shows work left").to.be.greaterThan(0);

      (host as NamespaceHost).undrop();
      dropped = false;
      expect((await testStack.stack.up()).summary.result).to.equal("succeeded");
      const healed = await outputs();
      expect(healed).to.deep.include({ inSync: true, generation: (await primaryClient.getOrg("steady")).generation });
      expect(healed.secondary).to.include({ state: "in-sync" });
      await testStack.stack.preview({ expectNoChanges: true });
      await testStack.stack.destroy();
    } finally {
      testStack.cleanup();
    }
  });
});
