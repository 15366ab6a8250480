/**
 * Small pieces of the agent's HTTP layer: bearer checks, what a log line keeps of a request,
 * the JSON body parser, validation details, the --listen parser and option checks.
 */
import { expect } from "chai";
import { z } from "zod";
import { principalResolver, tokenProblem } from "../../agent/src/http/auth";
import { ApiFailure, validationFailure } from "../../agent/src/errors";
import { MAX_JSON_DEPTH, parseJsonBody } from "../../agent/src/http/hardening";
import { loggedRoute } from "../../agent/src/log";
import { optionProblem } from "../../agent/src/options";
import { parseListen } from "../../agent/src/cli";
import { serviceBodySchema } from "../../wire";

describe("agent HTTP helpers", function () {
  it("accepts exactly 'Bearer <token>', the scheme in any case: the admin token, or a known org token", function () {
    const principal = principalResolver("0123456789abcdef", (token) => (token === "lbo_acme" ? "acme" : undefined));
    const check = (header: string | undefined) => principal(header)?.kind === "admin";
    for (const header of ["Bearer 0123456789abcdef", "bearer 0123456789abcdef", "BEARER  0123456789abcdef"]) {
      expect(check(header), header).to.equal(true);
    }
    expect(principal("Bearer lbo_acme")).to.deep.equal({ kind: "org", org: "acme" });
    expect(principal("Bearer lbo_acme lbo_acme")).to.equal(undefined);
    expect(principal("Bearer lbo_bravo")).to.equal(undefined);
    for (const header of [
      undefined,
      "",
      "Bearer",
      "Bearer 0123456789abcde",
      "0123456789abcdef",
      "Basic 0123456789abcdef",
      "Bearer 0123456789abcdef 0123456789abcdef",
    ]) {
      expect(check(header), String(header)).to.equal(false);
    }
    expect(tokenProblem("short")).to.match(/32/);
    expect(tokenProblem("0".repeat(31))).to.match(/at least 32/);
    expect(tokenProblem("0".repeat(32))).to.equal(undefined);
    expect(tokenProblem("long enough but spaced, long enough")).to.match(/whitespace/);
    expect(tokenProblem("0123456789abcdef")).to.match(/at least 32/);
  });

  it("logs the route pattern and only well-formed values of the API's own query parameters", function () {
    const changes = "/v1/orgs/:org/changes";
    expect(loggedRoute(changes, "/v1/orgs/a/changes?since=3&token=secret")).to.equal(`${changes}?since=3`);
    expect(loggedRoute(changes, "/v1/orgs/a/changes?since=0123456789abcdef-token")).to.equal(changes);
    expect(loggedRoute("/v1/orgs/:org", "/v1/orgs/a?force=true&password=x")).to.equal("/v1/orgs/:org?force=true");
    expect(loggedRoute("/v1/orgs/:org", "/v1/orgs/a?force=secret-secret-secret")).to.equal("/v1/orgs/:org");
    const replica = "/v1/orgs/:org/replica";
    expect(loggedRoute(replica, "/v1/orgs/a/replica?epoch=2")).to.equal(`${replica}?epoch=2`);
    expect(loggedRoute(replica, "/v1/orgs/a/replica?epoch=0123456789abcdef-token")).to.equal(replica);
    expect(loggedRoute(undefined, "/v1/0123456789abcdef-token")).to.equal("(no route)");
  });

  it("parses JSON bodies: empty is none, bad UTF-8 and prototype keys are named, nesting is bounded", function () {
    const failureOf = (body: Buffer) => {
      try {
        parseJsonBody(body);
      } catch (error) {
        if (error instanceof ApiFailure) return { code: error.code, paths: error.details.map((d) => d.path) };
      }
      return undefined;
    };
    expect(parseJsonBody(Buffer.alloc(0))).to.equal(undefined);
    expect(parseJsonBody(Buffer.from('{"a":[1,{"b":"\u00e9"}]}'))).to.deep.equal({ a: [1, { b: "é" }] });
    // A replacement character sent as valid UTF-8 is text like any other.
    expect(parseJsonBody(Buffer.from('{"a":"\\ufffd\ufffd"}'))).to.deep.equal({ a: "\uFFFD\uFFFD" });
    const invalid = (prefix: string, suffix: string) =>
      Buffer.concat([Buffer.from(prefix), Buffer.from([0xc3, 0x28]), Buffer.from(suffix)]);
    expect(failureOf(invalid('{"a":"ok\ufffd","users":[{"name":"x', '"}]}'))).to.deep.equal({
      code: "invalid_utf8",
      paths: ["users.0.name"],
    });
    expect(failureOf(invalid('{"', '":1}'))).to.have.property("code", "invalid_utf8");
    expect(failureOf(Buffer.from('{"a":'))).to.deep.equal({ code: "invalid_json", paths: ["body"] });
    expect(failureOf(Buffer.from('{"a":{"__proto__":{"x":1}}}'))).to.deep.equal({
      code: "forbidden_key",
      paths: ["a.__proto__"],
    });
    expect(failureOf(Buffer.from('[{"constructor":{"prototype":{}}}]'))).to.deep.equal({
      code: "forbidden_key",
      paths: ["0.constructor"],
    });
    expect(parseJsonBody(Buffer.from('{"constructor":"fine"}'))).to.deep.equal({ constructor: "fine" });
    const nested = (depth: number) => Buffer.from("[".repeat(depth) + "]".repeat(depth));
    expect(parseJsonBody(nested(MAX_JSON_DEPTH))).to.be.an("array");
    expect(failureOf(nested(MAX_JSON_DEPTH + 1))).to.deep.equal({ code: "too_deep", paths: ["body"] });
    expect(failureOf(nested(100_000))).to.have.property("code", "too_deep");
  });

  it("names each offending field, including unknown ones", function () {
    const result = serviceBodySchema.safeParse({ kind: "website", domains: ["a;b"], documentRoot: "..", extra: 1 });
    expect(result.success).to.equal(false);
    const failure = validationFailure((result as { error: z.ZodError }).error);
    expect(failure.status).to.equal(400);
    expect(failure.details.map((detail) => detail.path)).to.have.members(["domains.0", "documentRoot", "extra"]);
    expect(failure.toBody().error.code).to.equal("validation_failed");
  });

  it("parses --listen values", function () {
    expect(parseListen("127.0.1.2:0")).to.deep.equal({ host: "127.0.1.2", port: 0 });
    expect(parseListen("[::1]:8443")).to.deep.equal({ host: "::1", port: 8443 });
    expect(parseListen("localhost:80")).to.deep.equal({ host: "localhost", port: 80 });
    for (const bad of ["127.0.0.1", ":80", "127.0.0.1:70000", "a b:1"]) expect(() => parseListen(bad), bad).to.throw();
  });

  it("refuses agent names and nginx listen values that could inject configuration", function () {
    const base = {
      host: "127.0.0.1",
      port: 0,
      dataDir: "/tmp/x",
      name: "web-1",
      token: "0123456789abcdef0123456789abcdef",
    };
    expect(optionProblem(base)).to.equal(undefined);
    expect(optionProblem({ ...base, name: 'web"; root /' })).to.match(/agent name/);
    expect(optionProblem({ ...base, name: "" })).to.match(/agent name/);
    expect(optionProblem({ ...base, httpListen: "80; include /etc" })).to.match(/http-listen/);
    expect(optionProblem({ ...base, httpListen: "127.0.1.2:8080" })).to.equal(undefined);
    const ftp = { purePwBin: "/usr/bin/pure-pw", contentRoot: "/srv/nas", webGid: 33 };
    expect(optionProblem({ ...base, ...ftp })).to.equal(undefined);
    expect(optionProblem({ ...base, ...ftp, webGid: 0 })).to.match(/--web-gid must be a group other than root's/);
    expect(optionProblem({ ...base, ...ftp, ftpReadonlyUid: 0 })).to.match(/--ftp-readonly-uid cannot be 0/);
    expect(optionProblem({ ...base, ftpMaxSessions: 10 })).to.equal(undefined);
    expect(optionProblem({ ...base, ftpMaxSessions: 1 })).to.match(/--ftp-max-sessions must be at least 2/);
    expect(optionProblem({ ...base, ftpMaxSessions: 0 })).to.match(/--ftp-max-sessions/);
    expect(optionProblem({ ...base, changeLogLimit: 0 })).to.match(/change log/);
    expect(optionProblem({ ...base, limits: { maxConnections: 0 } })).to.match(/--max-connections/);
    expect(optionProblem({ ...base, limits: { requestTimeoutMs: 10 } })).to.match(/--request-timeout-ms/);
    expect(optionProblem({ ...base, limits: { idleTimeoutMs: 0 } })).to.match(/--idle-timeout-ms/);
    expect(optionProblem({ ...base, limits: { requestTimeoutMs: 2000, maxConnections: 8 } })).to.equal(undefined);
  });
});
