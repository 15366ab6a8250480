/**
 * What each token may reach (agent/src/http/scope.ts): the admin token everything, an org token
 * its own org's routes and the node's own read-only routes, nothing else.
 */
import { expect } from "chai";
import { type Principal, mayUse } from "../../agent/src/http/scope";

const admin: Principal = { kind: "admin" };
const acme: Principal = { kind: "org", org: "acme" };

/** [method, route pattern, params, may acme's token use it] */
const TABLE: Array<[string, string | undefined, Record<string, string>, boolean]> = [
  ["GET", "/v1/health", {}, true],
  ["GET", "/v1/node", {}, true],
  ["HEAD", "/v1/node", {}, true],
  ["GET", "/v1/orgs", {}, true],
  ["PUT", "/v1/orgs/:org", { org: "acme" }, true],
  ["GET", "/v1/orgs/:org", { org: "acme" }, true],
  ["DELETE", "/v1/orgs/:org", { org: "acme" }, true],
  ["PUT", "/v1/orgs/:org", { org: "bravo" }, false],
  ["GET", "/v1/orgs/:org", { org: "bravo" }, false],
  ["GET", "/v1/orgs/:org", { org: "ACME" }, false],
  ["GET", "/v1/orgs/:org/users", { org: "acme" }, true],
  ["PUT", "/v1/orgs/:org/users/:username", { org: "acme", username: "alice" }, true],
  ["DELETE", "/v1/orgs/:org/users/:username", { org: "acme", username: "alice" }, true],
  ["GET", "/v1/orgs/:org/users", { org: "bravo" }, false],
  ["GET", "/v1/orgs/:org/users/:username", { org: "bravo", username: "alice" }, false],
  ["GET", "/v1/orgs/:org/services", { org: "acme" }, true],
  ["PUT", "/v1/orgs/:org/services/:service", { org: "acme", service: "www" }, true],
  ["PUT", "/v1/orgs/:org/services/:service", { org: "bravo", service: "www" }, false],
  ["PUT", "/v1/orgs/:org/services/:service/acme-challenges/:token", { org: "acme", service: "www", token: "t" }, true],
  [
    "PUT",
    "/v1/orgs/:org/services/:service/acme-challenges/:token",
    { org: "bravo", service: "www", token: "t" },
    false,
  ],
  [
    "DELETE",
    "/v1/orgs/:org/services/:service/acme-challenges/:token",
    { org: "bravo", service: "www", token: "t" },
    false,
  ],
  ["GET", "/v1/orgs/:org/snapshot", { org: "acme" }, true],
  ["GET", "/v1/orgs/:org/snapshot", { org: "bravo" }, false],
  ["GET", "/v1/orgs/:org/changes", { org: "acme" }, true],
  ["GET", "/v1/orgs/:org/changes", { org: "bravo" }, false],
  ["PUT", "/v1/orgs/:org/replica", { org: "acme" }, true],
  ["POST", "/v1/orgs/:org/replica/changes", { org: "acme" }, true],
  ["DELETE", "/v1/orgs/:org/replica", { org: "acme" }, true],
  ["PUT", "/v1/orgs/:org/replica", { org: "bravo" }, false],
  ["POST", "/v1/orgs/:org/promote", { org: "acme" }, true],
  ["POST", "/v1/orgs/:org/promote", { org: "bravo" }, false],
  // Its own tokens are the admin's to issue, list and revoke.
  ["POST", "/v1/orgs/:org/tokens", { org: "acme" }, false],
  ["GET", "/v1/orgs/:org/tokens", { org: "acme" }, false],
  ["DELETE", "/v1/orgs/:org/tokens/:id", { org: "acme", id: "0123456789abcdef" }, false],
  ["GET", "/v1/balancer", {}, false],
  ["PUT", "/v1/balancer/:org", { org: "acme" }, true],
  ["GET", "/v1/balancer/:org", { org: "acme" }, true],
  ["DELETE", "/v1/balancer/:org", { org: "acme" }, true],
  ["GET", "/v1/balancer/:org/status", { org: "acme" }, true],
  ["PUT", "/v1/balancer/:org", { org: "bravo" }, false],
  ["GET", "/v1/balancer/:org/status", { org: "bravo" }, false],
  ["GET", "/v1/backends", {}, false],
  ["PUT", "/v1/backends/:name", { name: "web-a" }, false],
  ["DELETE", "/v1/backends/:name", { name: "web-a" }, false],
  ["GET", "/metrics", {}, false],
  // A route added later is the admin's until it is listed here.
  ["GET", "/v1/orgs/:org/something-new", { org: "acme" }, false],
  // No route: the 404 that follows names nothing.
  ["GET", undefined, {}, true],
];

describe("agent token scope", function () {
  for (const [method, route, params, allowed] of TABLE) {
    it(`${method} ${route ?? "(no route)"} ${JSON.stringify(params)}: org token ${allowed ? "may" : "may not"}, admin may`, function () {
      expect(mayUse(acme, { method, route, params })).to.equal(allowed);
      expect(mayUse(admin, { method, route, params })).to.equal(true);
    });
  }

  it("lets an org token only read the node-wide routes", function () {
    for (const method of ["PUT", "POST", "DELETE"]) {
      expect(mayUse(acme, { method, route: "/v1/orgs", params: {} }), method).to.equal(false);
      expect(mayUse(acme, { method, route: "/v1/node", params: {} }), method).to.equal(false);
    }
  });
});
