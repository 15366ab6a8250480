/**
 * The agent's org, user and service writes and its change log, in-process: the domain rules and
 * the write pipeline on an in-memory store, with fake renderers (tests/support/agent-domain.ts).
 */
import { expect } from "chai";
import { ApiFailure } from "../../agent/src/errors";
import { orgSettingsSchema } from "../../wire";
import { type DomainNode, domainNode, failure, fakeHash } from "../support/agent-domain";
import type { WriteOptions } from "../../agent/src/domain/roles";

const WRITE = { force: false };

describe("agent domain: org, user and service writes", function () {
  let node: DomainNode;

  beforeEach(function () {
    node = domainNode({ changeLogLimit: 16 });
  });

  afterEach(function () {
    node.close();
  });

  const putOrg = (name: string, body: object = {}, options: WriteOptions = WRITE) =>
    node.orgs.putOrg(name, orgSettingsSchema.parse(body), options);

  describe("orgs", function () {
    it("creates an org as primary at generation 1, and changes it only when its settings change", async function () {
      const created = await putOrg("acme", { displayName: "Acme" });
      expect(created.created).to.equal(true);
      expect(created.status).to.include({ name: "acme", role: "primary", generation: 1, epoch: 0, drifted: false });
      expect(created.status.digest).to.match(/^[0-9a-f]{64}$/);
      expect(node.reads.changesSince("acme", 0).changes).to.deep.equal([
        {
          type: "org.put",
          generation: 1,
          org: {
            name: "acme",
            displayName: "Acme",
            loadBalanced: false,
            secondaries: [],
            managedBy: "",
            unixId: created.status.unixId,
          },
        },
      ]);

      const same = await putOrg("acme", { displayName: "Acme" });
      expect(same.created).to.equal(false);
      expect(same.status.generation).to.equal(1);
      const renamed = await putOrg("acme", { displayName: "Acme Inc." });
      expect(renamed.status.generation).to.equal(2);
      expect(renamed.status.digest).to.not.equal(created.status.digest);
    });

    it("gives an org to one of two stacks creating it at once: the owner mark is checked in the write", async function () {
      const writes = ["stack-a", "stack-b"].map((owner) =>
        putOrg("acme", { displayName: owner, managedBy: owner }, { force: false, owner }).then(
          (answer) => ({ owner, answer }),
          (error: unknown) => ({ owner, error }),
        ),
      );
      const [first, second] = await Promise.all(writes);
      expect(first).to.have.property("answer").that.deep.include({ created: true });
      expect(second).to.have.property("error").that.includes({ status: 409, code: "managed_elsewhere" });
      expect((second as { error: Error }).error.message).to.include("managed by 'stack-a'");
      expect(node.reads.orgStatus("acme")).to.include({ managedBy: "stack-a", displayName: "stack-a", generation: 1 });
      // The owner's own retried create proceeds; without a mark (adopt) the write is an ordinary update.
      expect((await putOrg("acme", { managedBy: "stack-a" }, { force: false, owner: "stack-a" })).created).to.equal(
        false,
      );
      expect((await putOrg("acme", { managedBy: "stack-b" })).status.managedBy).to.equal("stack-b");
    });

    it("normalizes secondaries and refuses the same one twice", async function () {
      const { status } = await putOrg("acme", { secondaries: ["http://b.test:8080/", "http://c.test:8080"] });
      expect(status.secondaries).to.deep.equal(["http://b.test:8080", "http://c.test:8080"]);
      const refused = await failure(() =>
        putOrg("acme", { secondaries: ["http://b.test:8080/", "http://b.test:8080"] }),
      );
      expect(refused.status).to.equal(400);
      expect(refused.details).to.deep.equal([
        { path: "secondaries", message: "must not list the same secondary twice" },
      ]);
    });

    it("removes an org with its users and services, and its sites and FTP accounts", async function () {
      await putOrg("acme");
      await node.putService("acme", "www", { kind: "website", domains: ["acme.test"], documentRoot: "www" });
      expect([...node.sites.files.keys()]).to.deep.equal(["acme/www"]);
      await node.orgs.deleteOrg("acme", WRITE);
      expect(node.reads.listOrgs()).to.deep.equal([]);
      expect(node.sites.files.size).to.equal(0);
      expect(node.ftp.rendered).to.include("-acme");
      expect((await failure(node.orgs.deleteOrg("acme", WRITE))).code).to.equal("not_found");
    });
  });

  describe("users", function () {
    beforeEach(async function () {
      await putOrg("acme", { loadBalanced: true, secondaries: ["http://b.test:8080"] });
    });

    it("needs a password for a new user, hashes it once, and keeps the hash when the same one comes again", async function () {
      const refused = await failure(node.putUser("acme", "alice", { displayName: "Alice" }));
      expect(refused).to.include({ status: 400, code: "validation_failed" });

      const created = await node.putUser("acme", "alice", { password: "s3cret-pass" });
      expect(created).to.include({ created: true, changed: true, generation: 2 });
      expect(created.record).to.deep.equal({
        username: "alice",
        passwordHash: fakeHash("s3cret-pass"),
        displayName: "",
        email: "",
        enabled: true,
        access: [],
        managedBy: "",
      });
      expect(created.change).to.deep.equal({ type: "user.put", generation: 2, user: created.record });
      expect(created.secondaries).to.deep.equal(["http://b.test:8080"]);

      const again = await node.putUser("acme", "alice", { password: "s3cret-pass" });
      expect(again).to.include({ created: false, changed: false, generation: 2 });
      expect(again.change).to.equal(undefined);
      expect(node.hashes).to.deep.equal(["s3cret-pass"]);
    });

    it("renders FTP accounts again only for a user whose accounts can change", async function () {
      await node.putUser("acme", "alice", { passwordHash: fakeHash("one") });
      expect(node.ftp.rendered).to.deep.equal([]); // no access: no account
      await node.putUser("acme", "alice", { passwordHash: fakeHash("one"), access: ["files"] });
      expect(node.ftp.rendered).to.deep.equal(["acme"]); // never rendered whole before: the whole org
      await node.putUser("acme", "alice", { passwordHash: fakeHash("one"), access: ["files"], email: "a@acme.test" });
      expect(node.ftp.rendered).to.deep.equal(["acme"]);
      await node.putUser("acme", "alice", { passwordHash: fakeHash("two"), access: ["files"] });
      expect(node.ftp.rendered).to.deep.equal(["acme", "acme/alice"]);
      await node.members.deleteUser("acme", "alice", WRITE);
      expect(node.ftp.rendered).to.deep.equal(["acme", "acme/alice", "acme/alice"]);
    });

    it("renders every org whole in the start's FTP round, and a write's round arriving meanwhile after it", async function () {
      await putOrg("bravo");
      const render = node.ftp.render.bind(node.ftp);
      let release = () => undefined as void;
      const held = new Promise<void>((resolve) => (release = resolve));
      node.ftp.render = async (...args) => {
        await held; // the start's round is still rendering when the write commits
        return render(...args);
      };
      const start = node.queue.startFtp();
      await new Promise((resolve) => setTimeout(resolve, 10));
      let answered = false;
      const write = node
        .putUser("acme", "alice", { passwordHash: fakeHash("one"), access: ["files"] })
        .then(() => (answered = true));
      await new Promise((resolve) => setTimeout(resolve, 10));
      expect(answered, "the write waits for a round after the start's").to.equal(false);
      release();
      await Promise.all([start, write]);
      // Every org whole, then the write's user.
      expect(node.ftp.rendered).to.deep.equal(["acme", "bravo", "acme/alice"]);
    });

    it("gives a domain to one organization per node: another org's website with it is 409, naming the domain only", async function () {
      await putOrg("acme");
      await putOrg("aaa");
      const website = (domains: string[]) => ({ kind: "website" as const, domains, documentRoot: "www" });
      await node.putService("acme", "www", website(["www.acme.test", "acme.test"]));
      const before = node.reads.orgStatus("aaa");
      const refused = await failure(node.putService("aaa", "hijack", website(["www.aaa.test", "acme.test"])));
      expect(refused).to.include({ status: 409, code: "domain_taken" });
      expect(refused.message).to.include('"acme.test"').and.not.include('acme"');
      expect(refused.message).to.not.match(/organization "acme"|acme:/);
      expect(refused.details).to.deep.equal([
        { path: "domains.1", message: "is already served by another organization on this node" },
      ]);
      expect(node.reads.orgStatus("aaa")).to.deep.equal(before);
      // The owner may write its own domains again; once it lets one go, another org may take it.
      await node.putService("acme", "www", website(["www.acme.test", "acme.test"]));
      await node.putService("acme", "www", website(["www.acme.test"]));
      expect((await node.putService("aaa", "www", website(["acme.test"]))).changed).to.equal(true);
    });

    it("refuses to overwrite a user another owner manages", async function () {
      await node.putUser("acme", "alice", { passwordHash: fakeHash("one"), managedBy: "stack-a" });
      const refused = await failure(
        node.putUser("acme", "alice", { passwordHash: fakeHash("two") }, { owner: "stack-b" }),
      );
      expect(refused).to.include({ status: 409, code: "managed_elsewhere" });
      const same = await node.putUser(
        "acme",
        "alice",
        { passwordHash: fakeHash("two"), managedBy: "stack-a" },
        { owner: "stack-a" },
      );
      expect(same.changed).to.equal(true);
    });

    it("commits writes arriving together in one batch, each answering with the org after the batch", async function () {
      const answers = await Promise.all(
        ["u1", "u2", "u3", "u4"].map((username) =>
          node.putUser("acme", username, { passwordHash: fakeHash(username) }),
        ),
      );
      expect(answers.map((answer) => answer.change?.generation)).to.deep.equal([2, 3, 4, 5]);
      expect(answers.map((answer) => answer.generation)).to.deep.equal([5, 5, 5, 5]);
      expect(new Set(answers.map((answer) => answer.digest)).size).to.equal(1);
      expect(answers[0].digest).to.equal(node.reads.orgStatus("acme").digest);
      const refused = await Promise.all([
        node.putUser("acme", "u5", { passwordHash: fakeHash("u5") }),
        failure(node.members.deleteUser("acme", "nobody", WRITE)),
      ]);
      expect(refused[0].generation).to.equal(6); // the failing write rolled back alone
      expect(refused[1].code).to.equal("not_found");
    });
  });

  describe("services", function () {
    beforeEach(async function () {
      await putOrg("acme");
    });

    it("renders a website's nginx site, and its FTP accounts whole", async function () {
      const written = await node.putService("acme", "www", {
        kind: "website",
        domains: ["acme.test", "www.acme.test"],
        documentRoot: "site",
      });
      expect(written.record).to.deep.equal({
        name: "www",
        enabled: true,
        managedBy: "",
        kind: "website",
        domains: ["acme.test", "www.acme.test"],
        documentRoot: "site",
      });
      expect(node.sites.files.get("acme/www")).to.deep.equal({
        domains: ["acme.test", "www.acme.test"],
        root: "/content/acme/site",
        orgFolder: "/content/acme",
      });
      expect(node.ftp.rendered).to.deep.equal(["acme"]);
      await node.putService("acme", "drop", { kind: "ftp", rootPath: "drop" });
      expect(node.reads.getService("acme", "drop")).to.include({ writable: false, enabled: true });
    });

    it("refuses a folder leading out of the org, and a configuration nginx rejects, changing nothing", async function () {
      const before = node.reads.orgStatus("acme");
      const unsafe = await failure(
        node.putService("acme", "www", { kind: "website", domains: ["acme.test"], documentRoot: "escape" }),
      );
      expect(unsafe).to.include({ status: 400, code: "validation_failed" });
      expect(unsafe.details[0].path).to.equal("documentRoot");

      node.sites.reject = "unknown directive";
      const rejected = await failure(
        node.putService("acme", "www", { kind: "website", domains: ["acme.test"], documentRoot: "www" }),
      );
      expect(rejected).to.include({ status: 422, code: "nginx_rejected" });
      expect(node.reads.listServices("acme")).to.deep.equal([]);
      expect(node.reads.orgStatus("acme")).to.deep.equal(before);
    });

    it("retries a rejected batch one write at a time, so only the write nginx refuses fails", async function () {
      const stage = node.sites.stage.bind(node.sites);
      const staged: string[][] = [];
      let release = () => undefined as void;
      const held = new Promise<void>((resolve) => (release = resolve));
      node.sites.stage = async (changes) => {
        const files = changes.flatMap((change) => [...change.desired.keys()]);
        staged.push(files);
        if (staged.length === 1) await held; // the next writes queue up behind this batch
        if (files.includes("acme/bad")) {
          throw new ApiFailure(422, "nginx_rejected", "nginx rejected the new configuration");
        }
        return stage(changes);
      };
      const website = (name: string) => ({ kind: "website" as const, domains: [`${name}.test`], documentRoot: name });
      const first = node.putService("acme", "first", website("first"));
      while (staged.length === 0) await new Promise((resolve) => setImmediate(resolve));
      const rest = Promise.allSettled([
        node.putService("acme", "good", website("good")),
        node.putService("acme", "bad", website("bad")),
      ]);
      await new Promise((resolve) => setTimeout(resolve, 10));
      release();
      await first;
      const [good, bad] = await rest;
      expect(good.status).to.equal("fulfilled");
      expect(bad.status === "rejected" && (bad.reason as ApiFailure).code).to.equal("nginx_rejected");
      expect(staged.slice(1)).to.deep.equal([
        ["acme/bad", "acme/first", "acme/good"], // the batch of both
        ["acme/first", "acme/good"], // then each alone
        ["acme/bad", "acme/first", "acme/good"],
      ]);
      expect(node.reads.listServices("acme").map((service) => service.name)).to.deep.equal(["first", "good"]);
    });
  });

  describe("forced edits of a secondary copy", function () {
    it("refuses writes to a copy unless forced, and reports a forced one as drift without a log entry", async function () {
      const primary = domainNode();
      await primary.orgs.putOrg("acme", orgSettingsSchema.parse({}), WRITE);
      await node.replication.importReplica("acme", {
        ...primary.reads.snapshot("acme"),
        primary: "http://a.test:8080",
      });
      primary.close();

      const refused = await failure(node.putUser("acme", "alice", { passwordHash: fakeHash("x") }));
      expect(refused).to.include({ status: 409, code: "secondary_copy" });
      const forced = await node.putUser("acme", "alice", { passwordHash: fakeHash("x") }, { force: true });
      expect(forced.change).to.equal(undefined);
      expect(node.reads.orgStatus("acme")).to.include({ role: "secondary", generation: 1, drifted: true });
      expect(node.reads.changesSince("acme", 1).changes).to.deep.equal([]);
    });
  });

  describe("the change log", function () {
    it("answers the changes since a generation, and 410 before its floor or past the head", async function () {
      await putOrg("acme");
      for (let i = 0; i < 40; i++) await node.putUser("acme", `u${i}`, { passwordHash: fakeHash(`u${i}`) });
      const status = node.reads.orgStatus("acme");
      expect(status.generation).to.equal(41);
      const { changes } = node.reads.changesSince("acme", 30);
      expect(changes.map((change) => change.generation)).to.deep.equal([31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41]);
      expect(changes[0]).to.deep.include({ type: "user.put" });
      // Limit 16, trimmed in steps of one: at least 16 entries are kept, never more than 17.
      expect((await failure(async () => node.reads.changesSince("acme", 0))).code).to.equal("log_unavailable");
      expect(node.reads.changesSince("acme", 41 - 16).changes).to.have.length(16);
      expect((await failure(async () => node.reads.changesSince("acme", 42))).status).to.equal(410);
    });
  });
});
