import { expect } from "chai";
import {
  contentPathSchema,
  displayNameSchema,
  domainSchema,
  endpointSchema,
  nodeInfoSchema,
  normalizeEndpoint,
  orgNameSchema,
  serviceBodySchema,
  usernameSchema,
} from "../../wire";

describe("shared schemas", () => {
  const accepts = (schema: { safeParse(v: unknown): { success: boolean } }, value: unknown) =>
    schema.safeParse(value).success;

  it("accepts DNS-label org names and rejects anything that could inject", () => {
    for (const good of ["acme", "a", "acme-2", "x".repeat(63)])
      expect(accepts(orgNameSchema, good), good).to.equal(true);
    for (const bad of ["", "-acme", "acme-", "Acme", "ac me", "ac;me", "a{b}", "x".repeat(64), "a/b", "a..b"]) {
      expect(accepts(orgNameSchema, bad), bad).to.equal(false);
    }
  });

  it("reads a node's FTP session limit from GET /v1/node: a number, null, or absent from an older agent", () => {
    const node = { name: "web-a", version: "0.1.0", httpListen: null, ftpListen: "127.0.0.1:21" };
    expect(nodeInfoSchema.parse({ ...node, ftpMaxSessions: 10 }).ftpMaxSessions).to.equal(10);
    expect(nodeInfoSchema.parse({ ...node, ftpMaxSessions: null }).ftpMaxSessions).to.equal(null);
    expect(nodeInfoSchema.parse(node).ftpMaxSessions).to.equal(undefined);
    for (const bad of [0, 1, 2.5, "10"])
      expect(accepts(nodeInfoSchema, { ...node, ftpMaxSessions: bad })).to.equal(false);
  });

  it("reads how a node's FTP server takes FTPS from GET /v1/node: a mode, null, or absent from an older agent", () => {
    const node = { name: "web-a", version: "0.1.0", httpListen: null, ftpListen: "127.0.0.1:21" };
    for (const mode of ["off", "accept", "require"])
      expect(nodeInfoSchema.parse({ ...node, ftpTls: mode }).ftpTls).to.equal(mode);
    expect(nodeInfoSchema.parse({ ...node, ftpTls: null }).ftpTls).to.equal(null);
    expect(nodeInfoSchema.parse(node).ftpTls).to.equal(undefined);
    for (const bad of ["required", "", true, 2])
      expect(accepts(nodeInfoSchema, { ...node, ftpTls: bad })).to.equal(false);
  });

  it("takes free text in any script but refuses control and bidirectional-override characters", () => {
    for (const good of ["Alice Admin", "Zoë Ångström", "מנהל", "管理员", "O.K. & Co (GmbH)"])
      expect(accepts(displayNameSchema, good), good).to.equal(true);
    const bad = [
      "a\u0000b",
      "a\nb",
      "a\u007fb",
      "a\u0085b",
      "a\u009bb",
      "x\u202eexe.txt",
      "a\u202ab",
      "a\u2066b",
      "a\u2069b",
    ];
    for (const value of [...bad, "<script>'", 'a"b', "a$b", "a;b", "a{b", "a\\b"]) {
      expect(accepts(displayNameSchema, value), JSON.stringify(value)).to.equal(false);
    }
  });

  it("rejects usernames with spaces, quotes or shell and nginx metacharacters", () => {
    expect(accepts(usernameSchema, "alice.smith")).to.equal(true);
    for (const bad of ["alice smith", "alice;", "al'ice", "$alice", "1alice", "alice\n", ""]) {
      expect(accepts(usernameSchema, bad), JSON.stringify(bad)).to.equal(false);
    }
  });

  it("accepts DNS names as domains and rejects injection", () => {
    expect(accepts(domainSchema, "www.example.com")).to.equal(true);
    for (const bad of ["example.com;", "exa mple.com", "example.com}", "localhost", "*.example.com", "a..com"]) {
      expect(accepts(domainSchema, bad), bad).to.equal(false);
    }
  });

  it("keeps content paths inside the org folder", () => {
    for (const good of [".", "public", "sites/www", "a_b/c-d.e"])
      expect(accepts(contentPathSchema, good), good).to.equal(true);
    for (const bad of ["", "../x", "a/../b", "/etc", ".hidden", "a//b", "a/", "a b", "a;b", "a/./b"]) {
      expect(accepts(contentPathSchema, bad), bad).to.equal(false);
    }
  });

  it("accepts agent URLs only and normalizes them", () => {
    expect(accepts(endpointSchema, "http://127.0.1.1:8080")).to.equal(true);
    for (const bad of ["ftp://h", "http://u:p@h", "http://h/path", "http://h?x=1", "not a url"]) {
      expect(accepts(endpointSchema, bad), bad).to.equal(false);
    }
    expect(normalizeEndpoint("http://127.0.1.1:8080/")).to.equal("http://127.0.1.1:8080");
  });

  it("requires the fields of each service kind", () => {
    expect(accepts(serviceBodySchema, { kind: "website", domains: ["a.example.com"], documentRoot: "www" })).to.equal(
      true,
    );
    expect(accepts(serviceBodySchema, { kind: "website", domains: [], documentRoot: "www" })).to.equal(false);
    expect(accepts(serviceBodySchema, { kind: "ftp", rootPath: "." })).to.equal(true);
    expect(accepts(serviceBodySchema, { kind: "ftp", rootPath: ".", domains: ["a.example.com"] })).to.equal(false);
    expect(accepts(serviceBodySchema, { kind: "mail" })).to.equal(false);
  });
});
