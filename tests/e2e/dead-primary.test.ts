/**
 * `pulumi refresh` of a 50-user org whose primary falls silent, with the real CLI: the agent runs
 * in a network namespace made here (lbh-i26-e2e, veth lbhi26e/lbhi26f, 169.254.226.8/30 on that
 * pair only) and an iptables DROP rule inside it swallows every packet. The provider process
 * waits for one timeout, not one per resource (before: about 31 s each, ~8 at a time), names the
 * silent host once in a summary line; an `up` changing every password fails the same way, in
 * about one timeout; and the next refresh after the host is back converges.
 * Needs root, iproute2, iptables and the Pulumi CLI (under CI=true they must be there).
 */
import { expect } from "chai";
import { LoadBalancedOrganization, OrgUser } from "../../sdk";
import { startAgentProcess, type AgentProcess } from "../support/agent-process";
import { createNamespaceHost, type NamespaceHost } from "../support/netns";
import { createTestStack, requirePulumi } from "../support/pulumi";

const TOKEN = "dead-primary-e2e-token-0123456789";
const USERS = 50;
const TIMEOUT_MS = 3000;

describe("e2e fault: pulumi refresh with a silent primary", function () {
  let bin: string;
  let host: NamespaceHost | undefined;
  let agent: AgentProcess | undefined;
  let dropped = false;

  before(async function () {
    bin = requirePulumi(this);
    host = createNamespaceHost(this, {
      name: "lbh-i26-e2e",
      rootLink: "lbhi26e",
      hostLink: "lbhi26f",
      rootAddress: "169.254.226.9",
      hostAddress: "169.254.226.10",
    });
    agent = await startAgentProcess({ host: host.address, token: TOKEN, runUnder: host.exec });
  });

  after(async function () {
    if (host && dropped) host.undrop();
    if (agent) {
      await agent.stop();
      agent.cleanup();
    }
    host?.remove();
  });

  it(`finishes in about one timeout for ${USERS} users, one error each, and converges once the host is back`, async function () {
    const primary = (agent as AgentProcess).url;
    let round = 1;
    const testStack = await createTestStack(bin, {
      projectName: "dead-primary",
      config: {
        "lbhosting:token": { value: TOKEN, secret: true },
        "lbhosting:timeoutMs": { value: String(TIMEOUT_MS) },
      },
      program: async () => {
        const org = new LoadBalancedOrganization("org", { name: "quiet", primary });
        for (let index = 0; index < USERS; index++) {
          const username = `user${index}`;
          new OrgUser(username, { organization: org, username, password: `${username}-password-${round}` });
        }
        return {};
      },
    });
    try {
      expect((await testStack.stack.up()).summary.result).to.equal("succeeded");

      (host as NamespaceHost).drop();
      dropped = true;
      const output: string[] = [];
      const started = Date.now();
      const failure = await testStack.stack.refresh({ onOutput: (text) => output.push(text) }).then(
        () => "succeeded",
        (error: Error) => error.message,
      );
      const elapsed = Date.now() - started;
      const printed = output.join("");
      const plain = `${primary} is unreachable: no connection within ${TIMEOUT_MS} ms`;
      const remembered = printed.split(`${plain}, first at `).length - 1;
      console.log(
        `      refresh of ${USERS + 1} resources with the primary dropped: ${elapsed} ms; ` +
          `${remembered} lines with the remembered silence`,
      );
      expect(failure).to.not.equal("succeeded");
      expect(printed, "the summary line").to.include(`lbhosting: ${plain}, first at `);
      expect(printed).to.include("its other operations fail at once");
      // Most resources failed at once with the remembered silence; the rest were already waiting.
      expect(remembered).to.be.at.least(USERS - 20);

      // An up changing every password while the primary is still silent: one timeout, not one per user.
      round = 2;
      const upStarted = Date.now();
      const upFailure = await testStack.stack.up().then(
        () => "succeeded",
        (error: Error) => error.message,
      );
      console.log(
        `      up changing ${USERS} passwords with the primary dropped: failed after ${Date.now() - upStarted} ms`,
      );
      expect(upFailure).to.include(plain);

      (host as NamespaceHost).undrop();
      dropped = false;
      round = 1;
      await testStack.stack.refresh({ expectNoChanges: true });
    } finally {
      testStack.cleanup();
    }
  });
});
