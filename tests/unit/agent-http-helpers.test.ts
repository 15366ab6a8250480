/**
 * Small pieces of the agent's HTTP layer: bearer checks, log URL scrubbing, validation details,
 * the --listen parser and option checks.
 */
import { expect } from "chai";
import { z } from "zod";
import { bearerChecker, tokenProblem } from "../../agent/auth";
import { validationFailure } from "../../agent/errors";
import { safeUrl } from "../../agent/log";
import { optionProblem } from "../../agent/server";
import { parseListen } from "../../agent/cli";
import { serviceBodySchema } from "../../sdk/schemas";

describe("agent HTTP helpers", function () {
  it("accepts exactly 'Bearer <token>'", function () {
    const check = bearerChecker("0123456789abcdef");
    expect(check("Bearer 0123456789abcdef")).to.equal(true);
    for (const header of [
      undefined,
      "",
      "Bearer",
      "bearer 0123456789abcdef",
      "Bearer 0123456789abcde",
      "0123456789abcdef",
    ]) {
      expect(check(header), String(header)).to.equal(false);
    }
    expect(tokenProblem("short")).to.match(/16/);
    expect(tokenProblem("long enough but spaced")).to.match(/whitespace/);
    expect(tokenProblem("0123456789abcdef")).to.equal(undefined);
  });

  it("logs only the path and the API's own query parameters", function () {
    expect(safeUrl("/v1/orgs/a/changes?since=3&token=secret")).to.equal("/v1/orgs/a/changes?since=3");
    expect(safeUrl("/v1/orgs/a?password=x")).to.equal("/v1/orgs/a");
    expect(safeUrl("/v1/health")).to.equal("/v1/health");
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
    const base = { host: "127.0.0.1", port: 0, dataDir: "/tmp/x", name: "web-1", token: "0123456789abcdef" };
    expect(optionProblem(base)).to.equal(undefined);
    expect(optionProblem({ ...base, name: 'web"; root /' })).to.match(/agent name/);
    expect(optionProblem({ ...base, name: "" })).to.match(/agent name/);
    expect(optionProblem({ ...base, httpListen: "80; include /etc" })).to.match(/http-listen/);
    expect(optionProblem({ ...base, httpListen: "127.0.1.2:8080" })).to.equal(undefined);
    expect(optionProblem({ ...base, changeLogLimit: 0 })).to.match(/change log/);
  });
});
