/**
 * The library's resources register without the SDK's debug stack traces, and leave nothing
 * changed behind: the stack-trace limit is restored, and an error thrown while registering still
 * points at the program line that made the resource.
 */
import * as pulumi from "@pulumi/pulumi";
import { expect } from "chai";
import { OrgUser } from "../../sdk/user";

describe("LbhostingResource", function () {
  before(function () {
    void pulumi.runtime.setMocks(
      {
        newResource: (args) => ({ id: `${args.name}-id`, state: args.inputs }),
        call: (args) => args.inputs,
      },
      "project",
      "stack",
      false,
    );
  });

  const args = {
    organization: { name: "acme", primary: "http://127.0.0.1:8080" },
    username: "alice",
    password: "correct horse battery staple",
  };

  it("restores Error.stackTraceLimit after registering", async function () {
    const limit = Error.stackTraceLimit;
    const user = new OrgUser("alice", args);
    expect(Error.stackTraceLimit).to.equal(limit);
    const username = await new Promise((resolve) => user.username.apply(resolve));
    expect(username).to.equal("alice");
  });

  it("gives an error thrown while registering its stack, pointing at the caller", function () {
    const limit = Error.stackTraceLimit;
    let thrown: unknown;
    try {
      new OrgUser("", args); // Pulumi refuses a resource without a name, synchronously
    } catch (error) {
      thrown = error;
    }
    expect(thrown).to.be.instanceOf(Error);
    expect((thrown as Error).stack).to.include("sdk-resource.test");
    expect(Error.stackTraceLimit).to.equal(limit);
  });
});
