/**
 * The two npm packages stand alone: everything a packed file requires is either in the same pack
 * or a declared dependency, so a Pulumi program (pulumi-lbhosting) never installs the agent's
 * server dependencies, and the agent (lbhosting-agent) never needs Pulumi.
 */
import { execFileSync } from "node:child_process";
import { builtinModules } from "node:module";
import * as fs from "node:fs";
import * as path from "node:path";
import { expect } from "chai";
import { AGENT_MISSING, loadAgentCli } from "../../cli/run-agent";
import { REPO_ROOT } from "../support/pulumi";

interface PackedPackage {
  name: string;
  files: Set<string>;
  dependencies: string[];
}

function packed(workspace: string | undefined): PackedPackage {
  const args = ["pack", "--dry-run", "--json", ...(workspace ? ["-w", workspace] : [])];
  const [pack] = JSON.parse(execFileSync("npm", args, { cwd: REPO_ROOT, encoding: "utf8", timeout: 60_000 })) as {
    files: { path: string }[];
  }[];
  const manifest = JSON.parse(
    fs.readFileSync(path.join(REPO_ROOT, workspace ? "agent" : "", "package.json"), "utf8"),
  ) as { name: string; dependencies: Record<string, string> };
  return {
    name: manifest.name,
    files: new Set(pack.files.map((file) => file.path)),
    dependencies: Object.keys(manifest.dependencies),
  };
}

/** Modules required by the packed .js files that neither the pack nor its dependencies provide. */
function unresolved(pack: PackedPackage, root: string): string[] {
  const missing = new Set<string>();
  for (const file of [...pack.files].filter((name) => name.endsWith(".js"))) {
    const source = fs.readFileSync(path.join(root, file), "utf8");
    for (const [, id] of source.matchAll(/require\("([^"]+)"\)/g)) {
      if (id.startsWith(".")) {
        const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), id));
        if (!pack.files.has(`${target}.js`) && !pack.files.has(`${target}/index.js`)) missing.add(`${file} → ${id}`);
        continue;
      }
      const name = id.startsWith("@") ? id.split("/").slice(0, 2).join("/") : id.split("/")[0];
      const builtin = id.startsWith("node:") || builtinModules.includes(name);
      if (!builtin && name !== pack.name && !pack.dependencies.includes(name)) missing.add(`${file} → ${id}`);
    }
  }
  return [...missing].sort();
}

describe("packages: pulumi-lbhosting and lbhosting-agent", function () {
  this.timeout(120_000);

  it("the library's pack is self-contained and needs no agent server dependency", () => {
    const library = packed(undefined);
    expect(library.dependencies).to.include.members(["@pulumi/pulumi", "@pulumi/command", "zod"]);
    expect(library.dependencies).to.not.include.members(["fastify"]);
    expect(library.dependencies).to.not.include("better-sqlite3");
    expect(library.files.has("dist/provider/index.js")).to.equal(true);
    expect([...library.files].filter((file) => file.startsWith("dist/agent/"))).to.deep.equal([]);
    expect(unresolved(library, REPO_ROOT)).to.deep.equal([]);
  });

  it("the agent's pack is self-contained and needs no Pulumi", () => {
    const agent = packed("lbhosting-agent");
    expect(agent.dependencies).to.include.members(["fastify", "better-sqlite3", "commander", "zod"]);
    expect(agent.dependencies.filter((name) => name.startsWith("@pulumi/"))).to.deep.equal([]);
    expect(agent.files.has("dist/agent/src/cli.js")).to.equal(true);
    expect(agent.files.has("dist/wire/index.js")).to.equal(true);
    expect(unresolved(agent, path.join(REPO_ROOT, "agent"))).to.deep.equal([]);
  });

  it("`lbhosting agent` loads the agent package, and names the package to install when it is absent", () => {
    expect(loadAgentCli()?.runAgentCli).to.be.a("function");
    const absent = loadAgentCli(() => {
      throw Object.assign(new Error("Cannot find module 'lbhosting-agent/cli'"), { code: "MODULE_NOT_FOUND" });
    });
    expect(absent).to.equal(undefined);
    expect(AGENT_MISSING).to.include(
      "npm install -g --allow-scripts=better-sqlite3,lbhosting-agent ./lbhosting-agent-",
    );
  });
});
