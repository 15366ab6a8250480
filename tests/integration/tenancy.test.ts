/**
 * A hostile tenant against live agents on loopback (127.0.70.x), one case per row of issue 22's
 * table: what the attempt must find is a refusal, nothing served and nothing written.
 */
import { expect } from "chai";
import { AgentClient } from "../../provider/client";
import { Credentials } from "../../provider/credentials";
import { syncOrg } from "../../provider/sync";
import { startAgentProcess, type AgentProcess } from "../support/agent-process";
import { runCli } from "../support/cli-run";
import { startHoneypot, type Honeypot } from "../support/honeypot";

const TOKEN = "tenancy-test-admin-token-0123456789abcdef";

describe("tenancy: a hostile tenant finds nothing of another org", function () {
  this.timeout(60_000);

  describe("row 4: tokens go only where the stack says", () => {
    const ORG = "acme";
    let primary: AgentProcess;
    let secondary: AgentProcess;
    let honeypot: Honeypot;
    const client = (endpoint: string) => new AgentClient(endpoint, TOKEN, { timeoutMs: 5000, retries: 0 });

    before(async () => {
      [primary, secondary] = await Promise.all(
        ["127.0.70.1", "127.0.70.2"].map((host) => startAgentProcess({ host, token: TOKEN })),
      );
      honeypot = await startHoneypot("127.0.70.40");
      await client(primary.url).putOrg(ORG, { loadBalanced: true, secondaries: [secondary.url] });
      await client(primary.url).putUser(ORG, "alice", { password: "alice-password-1" });
      // Anyone holding the primary's token adds a secondary of their own to the org's record.
      await client(primary.url).putOrg(ORG, { loadBalanced: true, secondaries: [secondary.url, honeypot.url] });
    });

    after(async () => {
      await honeypot.close();
      for (const agent of [primary, secondary]) {
        await agent.stop();
        agent.cleanup();
      }
    });

    it("the provider's sync reaches the secondaries the stack names and reports the other, never contacting it", async () => {
      const credentials = new Credentials(() => undefined);
      credentials.configure({ get: (key) => (key === "lbhosting:token" ? TOKEN : undefined) });
      credentials.name([primary.url, secondary.url]); // what the org's inputs name
      const clientFor = (endpoint: string) => credentials.clientFor(endpoint);
      const report = await syncOrg(clientFor(primary.url), ORG, clientFor, { isNamed: credentials.isNamed });
      expect(report.unexpected).to.deep.equal([honeypot.url]);
      expect(report.secondaries.map((entry) => [entry.endpoint, entry.state])).to.deep.equal([
        [secondary.url, "in-sync"],
      ]);
      expect(honeypot.requests).to.deep.equal([]);
    });

    it("a key of lbhosting:tokens counts as named", () => {
      const credentials = new Credentials(() => undefined);
      credentials.configure({
        get: (key) => (key === "lbhosting:tokens" ? JSON.stringify({ [honeypot.url]: TOKEN }) : undefined),
      });
      expect(credentials.isNamed(`${honeypot.url}/`)).to.equal(true);
      expect(credentials.isNamed(secondary.url)).to.equal(false);
    });

    for (const command of ["sync", "status", "diff"]) {
      it(`lbhosting ${command} contacts only the --secondary it is given and reports the other`, async () => {
        const result = await runCli([command, "--org", ORG, "--primary", primary.url, "--secondary", secondary.url], {
          LBHOSTING_TOKEN: TOKEN,
        });
        expect(result.code, result.stderr).to.equal(1);
        expect(result.stdout).to.include(
          `unexpected secondary ${honeypot.url}: ${ORG}'s primary lists it; not contacted`,
        );
        expect(honeypot.requests).to.deep.equal([]);
      });
    }
  });
});
