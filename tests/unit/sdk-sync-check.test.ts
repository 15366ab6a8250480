/**
 * The SDK's SyncCheck (issue 24, defect 6): its `after` input is ONE short value that waits for
 * every member, carries no dependency per member (state the same size for a thousand users), and
 * is unknown in a preview while a member is being created.
 */
import * as pulumi from "@pulumi/pulumi";
import { expect } from "chai";
import { OrgUser } from "../../sdk/user";
import { SyncCheck, digestOfMembers } from "../../sdk/sync-check";

interface Registration {
  type: string;
  inputs: Record<string, unknown>;
  dependencies: string[];
}

const ORG = { name: "acme", primary: "http://127.0.0.1:8080" };

/** Pulumi's mocks, recording each registration's inputs and the dependencies the SDK sent. */
async function mockRun(
  preview: boolean,
  program: () => void,
  failing = new Set<string>(),
): Promise<Map<string, Registration>> {
  const registrations = new Map<string, Registration>();
  let checkRegistered: () => void = () => {};
  const checked = new Promise<void>((resolve) => (checkRegistered = resolve));
  await pulumi.runtime.setMocks(
    {
      newResource: (args) => {
        registrations.set(args.name, { type: args.type, inputs: args.inputs, dependencies: [] });
        if (args.name === "check") checkRegistered();
        if (failing.has(args.name)) throw new Error(`${args.name} failed`);
        // In a preview a created resource's id is unknown (the SDK reads "" as unknown).
        return { id: preview ? "" : `${args.name}-id`, state: args.inputs };
      },
      call: (args) => args.inputs,
    },
    "project",
    "stack",
    preview,
  );
  const monitor = pulumi.runtime.getMonitor() as unknown as {
    registerResource(request: { getName(): string; getDependenciesList(): string[] }, callback: unknown): unknown;
  };
  const register = monitor.registerResource.bind(monitor);
  const dependencies = new Map<string, string[]>();
  monitor.registerResource = (request, callback) => {
    dependencies.set(request.getName(), request.getDependenciesList());
    return register(request, callback);
  };
  program();
  await checked;
  for (const [name, registration] of registrations) registration.dependencies = dependencies.get(name) ?? [];
  return registrations;
}

const users = (count: number) =>
  Array.from(
    { length: count },
    (_, index) =>
      new OrgUser(`user${index}`, { organization: ORG, username: `user${index}`, password: "a-long-enough-password" }),
  );

describe("SyncCheck (SDK)", function () {
  it("digestOfMembers: the same members in any order give the same short value; another member another", function () {
    expect(digestOfMembers(["a", "b"])).to.match(/^2:[0-9a-f]{16}$/);
    expect(digestOfMembers(["b", "a"])).to.equal(digestOfMembers(["a", "b"]));
    expect(digestOfMembers(["a", "c"])).to.not.equal(digestOfMembers(["a", "b"]));
  });

  it("registers once every member is, with one short `after` and no dependency per member", async function () {
    const registrations = await mockRun(false, () => {
      new SyncCheck("check", { organization: ORG, after: users(50) });
    });
    const check = registrations.get("check")!;
    expect(check.type).to.equal("pulumi-nodejs:dynamic/lbhosting:SyncCheck");
    const ids = Array.from({ length: 50 }, (_, index) => `user${index}-id`);
    expect(check.inputs.after).to.equal(digestOfMembers(ids));
    expect(check.inputs.organization).to.deep.include(ORG);
    expect(check.dependencies).to.deep.equal([]);
    expect(registrations.size).to.equal(51);
  });

  it("in a preview where a member is being created, `after` is unknown", async function () {
    const registrations = await mockRun(true, () => {
      new SyncCheck("check", { organization: ORG, after: users(2) });
    });
    expect(pulumi.isUnknown(registrations.get("check")!.inputs.after)).to.equal(true);
  });

  it("waits for a member whose operation failed, and still registers (what --continue-on-error runs)", async function () {
    const registrations = await mockRun(
      false,
      () => {
        new SyncCheck("check", { organization: ORG, after: users(2) });
      },
      new Set(["user1"]),
    );
    expect(registrations.get("check")!.inputs.after).to.equal(digestOfMembers(["user0-id", { failed: true }]));
  });
});
