/**
 * Issue 9, points 1 and 2, through the real CLI: a refresh of an unchanged stack leaves every
 * resource's stored inputs exactly as the program wrote them (so the next `up` rewrites nothing),
 * and a password change is named in the CLI's output — which user, which field, never the secret.
 */
import { expect } from "chai";
import { LoadBalancedOrganization, OrgUser, WebService, type OrgUserArgs } from "../../sdk";
import { verifyPassword } from "../../common/password";
import { AgentClient } from "../../provider/client";
import { canonical } from "../../provider/inputs";
import { startAgentProcess, type AgentProcess } from "../support/agent-process";
import { createTestStack, requirePulumi, type TestStack } from "../support/pulumi";

const TOKEN = "e2e-shape-token-0123456789abcdef";
const ORG = "shape";
const PASSWORDS = { alice: "alice-password-1", aliceNew: "alice-password-2", bob: "bob-password-1" };

interface Deployment {
  resources: Array<{ urn: string; inputs?: Record<string, unknown> }>;
}

describe("e2e: refresh keeps the program's shape; preview names a password change", function () {
  let primary: AgentProcess;
  let secondary: AgentProcess;
  let testStack: TestStack;
  const users: Record<string, Omit<OrgUserArgs, "organization">> = {
    // bob sets no optional field at all: nothing the agent defaults may appear in his inputs.
    alice: { username: "alice", password: PASSWORDS.alice, displayName: "Alice", access: ["files"] },
    bob: { username: "bob", password: PASSWORDS.bob },
  };

  /** Every resource's stored inputs, by URN, in canonical form (secrets in plain text: test only). */
  async function storedInputs(): Promise<Record<string, string>> {
    const { deployment } = (await testStack.stack.exportStack()) as unknown as { deployment: Deployment };
    return Object.fromEntries(deployment.resources.map((resource) => [resource.urn, canonical(resource.inputs ?? {})]));
  }

  before(async function () {
    const bin = requirePulumi(this);
    [primary, secondary] = await Promise.all([
      startAgentProcess({ host: "127.0.20.11", name: "shape-primary", token: TOKEN }),
      startAgentProcess({ host: "127.0.20.12", name: "shape-secondary", token: TOKEN }),
    ]);
    testStack = await createTestStack(bin, {
      projectName: "shape",
      config: { "lbhosting:token": { value: TOKEN, secret: true } },
      program: async () => {
        const org = new LoadBalancedOrganization("org", {
          name: ORG,
          primary: primary.url,
          secondaries: [secondary.url],
          loadBalanced: true,
        });
        new WebService("www", {
          organization: org,
          name: "www",
          kind: "website",
          domains: ["www.shape.test"],
          documentRoot: "www",
        });
        new WebService("files", { organization: org, name: "files", kind: "ftp", rootPath: "files" });
        for (const [name, user] of Object.entries(users)) new OrgUser(name, { organization: org, ...user });
      },
    });
  });

  after(async () => {
    for (const agent of [primary, secondary]) {
      await agent?.stop();
      agent?.cleanup();
    }
    testStack?.cleanup();
  });

  it("refresh of an unchanged stack changes no stored input, and preview then shows no change", async () => {
    expect((await testStack.stack.up()).summary.result).to.equal("succeeded");
    const before = await storedInputs();
    const refresh = await testStack.stack.refresh({ expectNoChanges: true });
    expect(refresh.summary.result).to.equal("succeeded");
    expect(await storedInputs()).to.deep.equal(before);
    const preview = await testStack.stack.preview();
    const resources = Object.keys(before).filter((urn) => !urn.includes("::pulumi:providers:"));
    expect(preview.changeSummary).to.deep.equal({ same: resources.length });
  });

  it("a password change right after a refresh updates exactly one resource and says so, secret unshown", async () => {
    users.alice = { ...users.alice, password: PASSWORDS.aliceNew };
    let previewOutput = "";
    const preview = await testStack.stack.preview({ onOutput: (text) => (previewOutput += text) });
    let upOutput = "";
    const up = await testStack.stack.up({ onOutput: (text) => (upOutput += text) });
    for (const output of [previewOutput, upOutput]) {
      expect(output).to.include("OrgUser alice: password changes");
      expect(output).not.to.include("OrgUser bob");
      expect(output, "a phantom field").not.to.match(/\[diff: [^\]]*(enabled|access|writable|loadBalanced)/);
      for (const secret of Object.values(PASSWORDS)) expect(output.includes(secret), "a secret").to.equal(false);
    }
    expect(preview.changeSummary).to.deep.include({ update: 1 });
    expect(up.summary.resourceChanges).to.deep.include({ update: 1 });
    expect(Object.values(up.summary.resourceChanges ?? {}).reduce((a, b) => a + b, 0) - 1).to.equal(
      up.summary.resourceChanges?.same,
    );
    const copy = await new AgentClient(secondary.url, TOKEN, { timeoutMs: 10_000, retries: 0 }).getUser(ORG, "alice");
    expect(verifyPassword(PASSWORDS.aliceNew, copy.passwordHash)).to.equal(true);
  });

  it("a password changed on the primary behind Pulumi's back is drift, found without the old password", async () => {
    await new AgentClient(primary.url, TOKEN).putUser(ORG, "bob", { password: "set-by-hand-1" });
    let output = "";
    const failure = await testStack.stack
      .refresh({ expectNoChanges: true, onOutput: (text) => (output += text) })
      .then(() => "")
      .catch((error: unknown) => String(error));
    expect(failure).to.match(/no changes were expected/);
    expect(output).to.include("OrgUser bob: password changes");
    expect((await testStack.stack.destroy()).summary.result).to.equal("succeeded");
  });
});
