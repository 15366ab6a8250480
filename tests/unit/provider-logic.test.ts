import { expect } from "chai";
import { backendOf, servingNodes } from "../../provider/balancer";
import { classify } from "../../provider/sync";
import { checkInputs, differs } from "../../provider/inputs";
import { organizationProvider } from "../../provider/organization";
import { serviceProvider } from "../../provider/service";
import { userProvider } from "../../provider/user";
import { organizationInputsSchema, UNKNOWN_VALUE } from "../../sdk/inputs";
import { type OrgStatus } from "../../wire";

const copy = (overrides: Partial<OrgStatus>): OrgStatus => ({
  name: "acme",
  displayName: "",
  role: "secondary",
  secondaries: [],
  loadBalanced: true,
  generation: 5,
  digest: "d5",
  epoch: 0,
  drifted: false,
  managedBy: "",
  ...overrides,
});

describe("provider logic", () => {
  describe("classify", () => {
    const primary = { generation: 5, digest: "d5", epoch: 0 };
    it("names each state a secondary can be in", () => {
      expect(classify(primary, undefined)).to.equal("missing");
      expect(classify(primary, copy({}))).to.equal("in-sync");
      expect(classify(primary, copy({ generation: 3, digest: "d3" }))).to.equal("behind");
      expect(classify(primary, copy({ drifted: true }))).to.equal("drifted");
      expect(classify(primary, copy({ generation: 5, digest: "other" }))).to.equal("drifted");
      expect(classify(primary, copy({ generation: 9, digest: "d9" }))).to.equal("drifted");
      expect(classify(primary, copy({ role: "primary" }))).to.equal("drifted");
    });

    it("compares epochs: a copy of an earlier primary is behind, one of a newer primary refuses this one", () => {
      const promoted = { ...primary, epoch: 2 };
      // The same content from the primary before a failover: an empty delta re-parents it.
      expect(classify(promoted, copy({ epoch: 1 }))).to.equal("behind");
      expect(classify(promoted, copy({ epoch: 1, generation: 3, digest: "d3" }))).to.equal("behind");
      expect(classify(promoted, copy({ epoch: 1, generation: 5, digest: "other" }))).to.equal("drifted");
      expect(classify(promoted, copy({ epoch: 2 }))).to.equal("in-sync");
      // Seen from a stale primary (epoch 0): a copy that follows epoch 2 is not its to sync.
      expect(classify(primary, copy({ epoch: 2 }))).to.equal("drifted");
      expect(classify(primary, copy({ epoch: 2, generation: 3, digest: "d3" }))).to.equal("drifted");
    });
  });

  describe("check", () => {
    const org = { name: "acme", primary: "http://127.0.0.1:8080/", loadBalanced: false };

    it("names every failing property", async () => {
      const result = await organizationProvider.check!({}, { ...org, name: "Acme Corp", loadBalanced: true });
      const properties = result.failures!.map((failure) => failure.property);
      expect(properties).to.include("name");
      expect(properties).to.include("loadBalanced");
      expect(result.failures!.find((failure) => failure.property === "name")!.reason).to.match(/DNS label/);
    });

    it("normalizes endpoints and drops the provider key", async () => {
      const result = await organizationProvider.check!({}, { ...org, __provider: "x" });
      expect(result.failures).to.deep.equal([]);
      expect(result.inputs).to.deep.equal({ ...org, primary: "http://127.0.0.1:8080" });
    });

    it("normalizes every endpoint, so a trailing slash never makes a diff", async () => {
      const result = await organizationProvider.check!(
        {},
        { ...org, secondaries: ["http://127.0.0.2:8080/"], loadBalancer: "http://127.0.0.9:8080/" },
      );
      expect(result.inputs).to.deep.include({
        secondaries: ["http://127.0.0.2:8080"],
        loadBalancer: "http://127.0.0.9:8080",
      });
    });

    it("checks the load-balancer settings: FTP needs the load balancer, weights name the org's nodes", async () => {
      const result = await organizationProvider.check!(
        {},
        {
          ...org,
          secondaries: ["http://127.0.0.2:8080"],
          loadBalancerFtp: "127.0.0.9:21; x",
          nodeWeights: { "http://127.0.0.7:8080": 2, "http://127.0.0.2:8080": 500 },
        },
      );
      expect([...new Set(result.failures!.map((failure) => failure.property))].sort()).to.deep.equal([
        "loadBalancerFtp",
        "nodeWeights.http://127.0.0.2:8080",
        "nodeWeights.http://127.0.0.7:8080",
      ]);
      const alone = await organizationProvider.check!({}, { ...org, loadBalancerFtp: "127.0.0.9:21" });
      expect(alone.failures!.map((failure) => failure.reason)).to.deep.equal(["loadBalancerFtp needs loadBalancer"]);
      const good = await organizationProvider.check!(
        {},
        {
          ...org,
          loadBalancer: "http://127.0.0.9:8080",
          loadBalancerFtp: "127.0.0.9:21",
          nodeWeights: { "http://127.0.0.1:8080/": 3 },
        },
      );
      expect(good.failures).to.deep.equal([]);
      expect(good.inputs.nodeWeights, "weights keyed by the normalized endpoint").to.deep.equal({
        "http://127.0.0.1:8080": 3,
      });
    });

    it("leaves an organization reference alone while it is unknown", async () => {
      const user = await userProvider.check!(
        {},
        { organization: { name: "acme", primary: UNKNOWN_VALUE }, username: "alice", password: "long-enough-1" },
      );
      expect(user.failures).to.deep.equal([]);
      expect(user.inputs.organization).to.deep.equal({ name: "acme", primary: UNKNOWN_VALUE });
    });

    it("tolerates values that are unknown during preview", () => {
      const { failures } = checkInputs(organizationInputsSchema, {
        ...org,
        name: UNKNOWN_VALUE,
        secondaries: UNKNOWN_VALUE,
      });
      expect(failures).to.deep.equal([]);
    });

    it("rejects injection in user and service inputs", async () => {
      const organization = { name: "acme", primary: "http://127.0.0.1:8080" };
      const user = await userProvider.check!({}, { organization, username: "eve smith", password: "long-enough-1" });
      expect(user.failures!.map((failure) => failure.property)).to.deep.equal(["username"]);
      const service = await serviceProvider.check!(
        {},
        { organization, name: "www", kind: "website", domains: ["a.test;"], documentRoot: "../x" },
      );
      expect(service.failures!.map((failure) => failure.property).sort()).to.deep.equal(["documentRoot", "domains.0"]);
    });
  });

  describe("diff", () => {
    const olds = {
      name: "acme",
      primary: "http://127.0.0.1:8080",
      secondaries: ["http://127.0.0.2:8080", "http://127.0.0.3:8080"],
      loadBalanced: true,
      syncStatus: [{ endpoint: "http://127.0.0.2:8080", state: "in-sync" }],
    };

    it("ignores key and list order", async () => {
      const news = {
        loadBalanced: true,
        secondaries: [...olds.secondaries].reverse(),
        primary: olds.primary,
        name: "acme",
      };
      expect(await organizationProvider.diff!("acme", olds, news)).to.include({ changes: false });
    });

    it("replaces on a new name and updates in place otherwise", async () => {
      expect((await organizationProvider.diff!("acme", olds, { ...olds, name: "other" })).replaces).to.deep.equal([
        "name",
      ]);
      const demote = await organizationProvider.diff!("acme", olds, { ...olds, loadBalanced: false });
      expect(demote).to.deep.include({ changes: true, replaces: [] });
      expect((await organizationProvider.diff!("acme", olds, { ...olds, syncTrigger: 2 })).changes).to.equal(true);
    });

    it("reports a change while a secondary is not in sync, so the next up heals it", async () => {
      const drifted = { ...olds, syncStatus: [{ endpoint: "http://127.0.0.2:8080", state: "drifted" }] };
      const news = { name: "acme", primary: olds.primary, secondaries: olds.secondaries, loadBalanced: true };
      expect((await organizationProvider.diff!("acme", drifted, news)).changes).to.equal(true);
    });

    it("reports a change while a former primary is not fenced, so the next up fences it", async () => {
      const news = { name: "acme", primary: olds.primary, secondaries: olds.secondaries, loadBalanced: true };
      const stale = { ...olds, fencing: [{ endpoint: "http://127.0.0.7:8080", state: "stale-primary" }] };
      expect((await organizationProvider.diff!("acme", stale, news)).changes).to.equal(true);
      expect((await organizationProvider.diff!("acme", { ...olds, fencing: [] }, news)).changes).to.equal(false);
    });

    it("reports a change of the load balancer's FTP address or weights", async () => {
      const news = { ...olds, syncStatus: undefined };
      expect(
        (await organizationProvider.diff!("acme", olds, { ...news, loadBalancerFtp: "127.0.0.9:21" })).changes,
      ).to.equal(true);
      const weighted = { ...news, nodeWeights: { "http://127.0.0.1:8080": 2 } };
      expect((await organizationProvider.diff!("acme", olds, weighted)).changes).to.equal(true);
    });

    it("treats unknown values as changes", () => {
      expect(differs("a", UNKNOWN_VALUE)).to.equal(true);
      expect(differs(["a", "b"], ["b", "a"], true)).to.equal(false);
      expect(differs({ a: 1, b: 2 }, { b: 2, a: 1 })).to.equal(false);
    });
  });

  describe("load-balancer routes", () => {
    const node = { name: "web-a", version: "0.1.0", httpListen: "127.0.0.1:8080", ftpListen: null };

    it("routes the primary and the in-sync secondaries, minus the ones leaving", () => {
      const secondaries = ["in-sync", "behind", "in-sync"].map((state, index) => ({
        endpoint: `http://127.0.0.${index + 2}:8080`,
        state: state as "in-sync" | "behind",
        generation: 1,
        digest: "",
        lastSyncedAt: "",
      }));
      expect(servingNodes("http://127.0.0.1:8080", secondaries)).to.deep.equal([
        "http://127.0.0.1:8080",
        "http://127.0.0.2:8080",
        "http://127.0.0.4:8080",
      ]);
      expect(servingNodes("http://127.0.0.1:8080", secondaries, ["http://127.0.0.4:8080"])).to.deep.equal([
        "http://127.0.0.1:8080",
        "http://127.0.0.2:8080",
      ]); // After a failover the new primary may still be listed as an in-sync secondary: once only.
      expect(servingNodes("http://127.0.0.2:8080", secondaries)).to.deep.equal([
        "http://127.0.0.2:8080",
        "http://127.0.0.4:8080",
      ]);
    });

    it("turns a node's info into a backend: web, FTP with its passive ports, weight", () => {
      const endpoint = "http://10.1.2.3:8443";
      expect(backendOf(endpoint, node, undefined)).to.deep.equal({ name: "web-a", http: "127.0.0.1:8080" });
      expect(backendOf(endpoint, { ...node, httpListen: "80" }, 1)).to.deep.equal({
        name: "web-a",
        http: "10.1.2.3:80",
      });
      const ftp = { ...node, ftpListen: "127.0.0.1:21", ftpPassivePorts: [30000, 30099] as [number, number] };
      expect(backendOf(endpoint, ftp, 4)).to.deep.equal({
        name: "web-a",
        http: "127.0.0.1:8080",
        ftp: "127.0.0.1:21",
        passivePorts: [30000, 30099],
        weight: 4,
      });
      // The FTP session limit goes with FTP; a node without FTP carries none.
      expect(backendOf(endpoint, { ...ftp, ftpMaxSessions: 8 }, undefined)).to.deep.include({ maxSessions: 8 });
      expect(backendOf(endpoint, { ...node, ftpMaxSessions: 8 }, undefined)).not.to.have.property("maxSessions");
      expect(backendOf(endpoint, { ...ftp, ftpMaxSessions: null }, undefined)).not.to.have.property("maxSessions");
      // FTP through a load balancer needs passive ports; a node serving nothing is left out.
      expect(backendOf(endpoint, { ...node, httpListen: null, ftpListen: "127.0.0.1:21" }, undefined)).to.equal(
        undefined,
      );
    });
  });
});
