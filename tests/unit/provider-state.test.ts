/** The provider's per-process objects, each made fresh: credentials, the snapshot reader, defaults. */
import { expect } from "chai";
import { Credentials } from "../../provider/credentials";
import { READ_WINDOW_MS, SnapshotReader } from "../../provider/snapshot-reader";
import { AgentError } from "../../provider/client";
import { organizationDefaults, orgUserDefaults, webServiceDefaults, withDefaults } from "../../sdk/inputs";
import type { Snapshot } from "../../wire";
import { digestAt } from "../support/fake-nodes";

const config = (values: Record<string, string>) => ({ get: (key: string) => values[key] });

describe("provider state", function () {
  describe("Credentials", function () {
    it("takes a token per endpoint, then the default, then the environment's", function () {
      const credentials = new Credentials(() => "from-env");
      expect(() => new Credentials(() => undefined).clientFor("http://a")).to.throw(/no agent token for http:\/\/a/);
      expect(credentials.clientFor("http://a").endpoint).to.equal("http://a");
      credentials.configure(config({ "lbhosting:tokens": JSON.stringify({ "http://b/": "b" }) }));
      expect(credentials.clientFor("http://b")).to.equal(credentials.clientFor("http://b/"));
      expect(() => credentials.configure(config({ "lbhosting:tokens": "[1]" }))).to.throw(/JSON object/);
    });

    it("refuses an lbhosting:timeoutMs that is not a positive whole number of milliseconds", function () {
      const credentials = new Credentials(() => "from-env");
      for (const bad of ["15s", "0", "-1", "1.5"]) {
        expect(() => credentials.configure(config({ "lbhosting:timeoutMs": bad }))).to.throw(
          `lbhosting:timeoutMs must be a positive whole number of milliseconds, not "${bad}"`,
        );
      }
      credentials.configure(config({ "lbhosting:timeoutMs": "2500" }));
    });
  });

  describe("SnapshotReader", function () {
    const snapshot = (generation: number): Snapshot => ({
      generation,
      digest: digestAt(generation),
      epoch: 0,
      org: { name: "acme", displayName: "", loadBalanced: false, secondaries: [], managedBy: "" },
      users: [],
      services: [],
    });

    it("serves reads within READ_WINDOW_MS from one snapshot, and reads again after it or a drop", async function () {
      let time = 0;
      let reads = 0;
      const reader = new SnapshotReader(
        () => ({ snapshot: async () => snapshot(++reads) }),
        () => time,
      );
      const org = { name: "acme", primary: "http://p/" };
      const generation = (s: Snapshot) => s.generation;
      expect(await reader.read(org, generation)).to.equal(1);
      time = READ_WINDOW_MS;
      expect(await reader.read(org, generation)).to.equal(1);
      time = READ_WINDOW_MS + 1;
      expect(await reader.read(org, generation)).to.equal(2);
      reader.drop("http://p", "acme");
      expect(await reader.read(org, generation)).to.equal(3);
    });

    it("reads an org the primary does not hold as nothing", async function () {
      const reader = new SnapshotReader(() => ({
        snapshot: async () => {
          throw new AgentError("http://p", 404, "not_found", "none (HTTP 404 not_found)");
        },
      }));
      expect(await reader.read({ name: "acme", primary: "http://p" }, () => "found")).to.equal(undefined);
    });
  });

  describe("defaults", function () {
    it("are the agent's, read from its request schemas", function () {
      expect(organizationDefaults).to.deep.equal({
        displayName: "",
        loadBalanced: false,
        secondaries: [],
        managedBy: "",
        nodeWeights: {},
        allowDataLoss: false,
      });
      expect(orgUserDefaults).to.deep.equal({ displayName: "", email: "", enabled: true, access: [], managedBy: "" });
      expect(webServiceDefaults.ftp).to.deep.equal({ enabled: true, managedBy: "", writable: false });
    });

    it("fill in what the inputs leave out or leave undefined, and never change the inputs", function () {
      const inputs = { name: "acme", displayName: undefined, loadBalanced: true };
      expect(withDefaults(inputs, organizationDefaults)).to.deep.equal({
        name: "acme",
        displayName: "",
        loadBalanced: true,
        secondaries: [],
        managedBy: "",
        nodeWeights: {},
        allowDataLoss: false,
      });
      expect(inputs).to.deep.equal({ name: "acme", displayName: undefined, loadBalanced: true });
    });
  });
});
