/**
 * Fault: a primary agent SIGKILLed during a burst of 200 concurrent user writes (127.0.32.1 –
 * 127.0.32.2). After the restart every write that was answered 2xx is there as written, the
 * org's generations have no gaps (the change log runs 2..G, one entry per user present), and the
 * log replays onto a copy taken before the burst to the primary's digest — through the
 * secondary's own delta import, which verifies it. The kill lands after a given number of
 * answers, so each round hits the burst at a different stage whatever the machine's speed.
 */
import { expect } from "chai";
import { verifyPassword } from "../../common/password";
import { orgStatusSchema, snapshotSchema, type Change, type UserRecord } from "../../wire";
import { type AgentClient, type HttpAnswer, agentClient, call } from "../support/agent-http";
import { type AgentProcess, startAgentProcess } from "../support/agent-process";
import { printKillReport } from "../support/faults";

const WRITES = 200;
/** Kill the primary once this many writes were answered, one round each. */
const KILL_AFTER_ANSWERS = [1, 60, 120, 190];

const passwordOf = (index: number) => `password-of-user-${index}`;
const usernameOf = (index: number) => `user${String(index).padStart(3, "0")}`;

describe("fault: the primary killed during 200 concurrent user writes (integration)", function () {
  this.timeout(600_000); // many agent restarts; the suite default (60 s) is for single requests
  let primary: AgentProcess;
  let secondary: AgentProcess;
  let api: AgentClient;
  let copy: AgentClient;

  before(async function () {
    [primary, secondary] = await Promise.all([
      startAgentProcess({ host: "127.0.32.1", name: "primary" }),
      startAgentProcess({ host: "127.0.32.2", name: "replay" }),
    ]);
    api = agentClient(primary.url, primary.token);
    copy = agentClient(secondary.url, secondary.token);
  });

  after(async function () {
    for (const agent of [primary, secondary]) {
      await agent?.stop();
      agent?.cleanup();
    }
  });

  it(`keeps every answered write, without gaps, at each of ${KILL_AFTER_ANSWERS.length} kill points`, async function () {
    const report: Array<Record<string, unknown>> = [];
    for (const [round, killAfter] of KILL_AFTER_ANSWERS.entries()) {
      const org = `burst-${round}`;
      expect((await api.put(`/v1/orgs/${org}`, { displayName: `Burst ${round}` })).status).to.equal(201);
      const before = snapshotSchema.parse((await api.get(`/v1/orgs/${org}/snapshot`)).json);

      let answered = 0;
      let killed: Promise<unknown> | undefined;
      const writes = Array.from({ length: WRITES }, (_, index) =>
        call(primary.url, "PUT", `/v1/orgs/${org}/users/${usernameOf(index)}`, {
          token: primary.token,
          body: { password: passwordOf(index), displayName: `User ${index}` },
        }).then(
          (answer: HttpAnswer) => {
            if (answer.status >= 200 && answer.status < 300 && ++answered === killAfter) {
              killed = primary.stop("SIGKILL");
            }
            return answer;
          },
          () => undefined, // the connection died with the primary: the write may or may not be there
        ),
      );
      const answers = await Promise.all(writes);
      await killed;
      const acknowledged = answers.flatMap((answer, index) =>
        answer && answer.status >= 200 && answer.status < 300 ? [{ index, answer }] : [],
      );
      // Writes refused outright (not killed) would make the round meaningless.
      expect(answers.filter((answer) => answer && !(answer.status >= 200 && answer.status < 300))).to.deep.equal([]);
      await primary.restart();

      const status = orgStatusSchema.parse((await api.get(`/v1/orgs/${org}`)).json);
      const users = (await api.get(`/v1/orgs/${org}/users`)).json as { users: UserRecord[] };
      const present = new Map(users.users.map((user) => [user.username, user]));
      for (const { index, answer } of acknowledged) {
        const user = present.get(usernameOf(index));
        expect(user, `answered write ${usernameOf(index)}`).to.not.equal(undefined);
        expect(user?.displayName).to.equal(`User ${index}`);
        expect(verifyPassword(passwordOf(index), user?.passwordHash ?? "")).to.equal(true);
        expect(Number(answer.headers["x-lbhosting-generation"])).to.be.at.most(status.generation);
      }
      // No gaps: one log entry per generation after the org's creation, one per user present.
      const log = (await api.get(`/v1/orgs/${org}/changes?since=1`)).json as { changes: Change[] };
      expect(log.changes.map((change) => change.generation)).to.deep.equal(
        Array.from({ length: status.generation - 1 }, (_, index) => index + 2),
      );
      expect(present.size).to.equal(status.generation - 1);
      const logged = log.changes.map((change) => (change.type === "user.put" ? change.user.username : change.type));
      expect([...logged].sort()).to.deep.equal([...present.keys()].sort());
      // Writes that arrive together commit together and report the org after all of them; each
      // write's own log entry (x-lbhosting-change) has its own generation.
      const generations = acknowledged.map(
        ({ answer }) =>
          (
            JSON.parse(Buffer.from(String(answer.headers["x-lbhosting-change"]), "base64url").toString("utf8")) as {
              generation: number;
            }
          ).generation,
      );
      expect(new Set(generations).size, "each answered write has its own generation").to.equal(generations.length);

      // The log replays, on the copy taken before the burst, to the primary's digest.
      const imported = await copy.put(`/v1/orgs/${org}/replica`, { ...before, primary: primary.url });
      expect(imported.status, imported.text).to.equal(200);
      const replayed = await copy.post(`/v1/orgs/${org}/replica/changes`, {
        baseGeneration: before.generation,
        changes: log.changes,
        digest: status.digest,
      });
      expect(replayed.status, replayed.text).to.equal(200);
      expect(orgStatusSchema.parse(replayed.json)).to.include({ generation: status.generation, digest: status.digest });

      report.push({
        killAfterAnswers: killAfter,
        answered: acknowledged.length,
        unanswered: WRITES - acknowledged.length,
        committed: present.size,
        committedUnanswered: present.size - acknowledged.length,
        generation: status.generation,
      });
    }
    printKillReport(`primary killed during ${WRITES} concurrent writes`, report);
  });
});
