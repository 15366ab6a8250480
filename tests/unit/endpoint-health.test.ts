/**
 * The memory of silent endpoints, on an injected clock: after a timeout the endpoint fails fast
 * with one message, one probe at a time goes out after the back-off, and an answer forgets it.
 */
import { expect } from "chai";
import { EndpointHealth } from "../../provider/endpoint-health";

describe("endpoint health", function () {
  const web2 = "https://web2:8443";
  let now: number;
  let told: string[];
  let health: EndpointHealth;

  beforeEach(function () {
    now = Date.parse("2026-12-07T14:00:00Z");
    told = [];
    health = new EndpointHealth({
      now: () => now,
      probeBackoffMs: 15_000,
      onSilent: (endpoint, reason) => told.push(`${endpoint}: ${reason}`),
    });
  });

  const refusal = (endpoint: string): string => {
    const admission = health.admit(endpoint);
    if (admission.go) throw new Error(`${endpoint} was admitted`);
    return admission.reason;
  };

  it("admits every call to an endpoint it knows nothing against", function () {
    expect(health.admit(web2)).to.deep.equal({ go: true });
    expect(health.admit(web2)).to.deep.equal({ go: true });
  });

  it("after a timeout, fails the next calls with one message naming what timed out and when", function () {
    health.timedOut(web2, "no connection within 15000 ms");
    const first = refusal(web2);
    expect(first).to.equal(
      "no connection within 15000 ms, first at 2026-12-07T14:00:00Z; not asked again in this run " +
        "until it answers a probe (one every 15 s)",
    );
    now += 5_000;
    expect(refusal(web2)).to.equal(first);
    expect(told).to.deep.equal([`${web2}: ${first}`]);
    expect(health.admit("https://web3:8443")).to.deep.equal({ go: true });
  });

  it("lets one probe through after the back-off, the others still failing fast", function () {
    health.timedOut(web2, "no connection within 15000 ms");
    now += 14_999;
    refusal(web2);
    now += 1;
    expect(health.admit(web2)).to.deep.equal({ go: true });
    refusal(web2);
    now += 60_000;
    refusal(web2);
  });

  it("waits another back-off after a probe that timed out, keeping the first message", function () {
    health.timedOut(web2, "no connection within 15000 ms");
    const first = refusal(web2);
    now += 15_000;
    expect(health.admit(web2).go).to.equal(true);
    now += 15_000;
    health.timedOut(web2, "no connection within 15000 ms");
    expect(refusal(web2)).to.equal(first);
    now += 14_999;
    refusal(web2);
    now += 1;
    expect(health.admit(web2).go).to.equal(true);
    expect(told).to.have.length(1);
  });

  it("forgets an endpoint once it is reached, and tells of a new silence again", function () {
    health.timedOut(web2, "no answer within 15000 ms (2 attempts)");
    now += 15_000;
    expect(health.admit(web2).go).to.equal(true);
    health.reached(web2);
    expect(health.admit(web2)).to.deep.equal({ go: true });
    expect(health.admit(web2)).to.deep.equal({ go: true });
    health.timedOut(web2, "no connection within 15000 ms");
    expect(refusal(web2)).to.match(/^no connection within 15000 ms, first at 2026-12-07T14:00:15Z;/);
    expect(told).to.have.length(2);
  });
});
