/** The README's resource reference names every argument and output the SDK declares. */
import * as fs from "node:fs";
import * as path from "node:path";
import { expect } from "chai";

const ROOT = path.resolve(__dirname, "..", "..", "..");

/** Fields of `export interface <name> { … }` and `declare readonly` outputs of a resource file. */
function declaredNames(file: string): { args: string[]; outputs: string[] } {
  const source = fs.readFileSync(path.join(ROOT, "sdk", file), "utf8");
  const argsBlock = /export interface \w+Args \{([\s\S]*?)\n\}/.exec(source)?.[1] ?? "";
  const args = [...argsBlock.matchAll(/^ {2}(\w+)\??:/gm)].map((match) => match[1]);
  const outputs = [...source.matchAll(/declare readonly (\w+):/g)].map((match) => match[1]);
  return { args, outputs };
}

/** The README section for one resource: from its heading to the next one. */
function referenceSection(readme: string, resource: string): string {
  const start = readme.indexOf(`### ${resource}`);
  expect(start, `README has a section for ${resource}`).to.be.greaterThan(-1);
  const next = readme.indexOf("\n## ", start + 1);
  const nextResource = readme.indexOf("\n### ", start + 1);
  const ends = [next, nextResource].filter((index) => index > 0);
  return readme.slice(start, ends.length > 0 ? Math.min(...ends) : undefined);
}

describe("docs: README resource reference", () => {
  const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
  const resources: [string, string][] = [
    ["LoadBalancedOrganization", "organization.ts"],
    ["OrgUser", "user.ts"],
    ["WebService", "service.ts"],
    ["SyncCheck", "sync-check.ts"],
    ["OrgAccess", "org-access.ts"],
    ["HostingNode", "hosting-node/index.ts"],
  ];

  for (const [resource, file] of resources) {
    it(`documents every argument and output of ${resource}`, () => {
      const { args, outputs } = declaredNames(file);
      expect(args.length, `${file} declares arguments`).to.be.greaterThan(1);
      expect(outputs.length, `${file} declares outputs`).to.be.greaterThan(2);
      const section = referenceSection(readme, resource);
      const missing = [...new Set([...args, ...outputs])].filter((name) => !section.includes(`\`${name}\``));
      expect(missing, `missing from the README's ${resource} reference`).to.deep.equal([]);
    });
  }
});

/** Folders of the repository that hold its own files, as `path/` from the root. */
function ownFolders(): string[] {
  const skipped = new Set(["node_modules", "dist", "build", ".git", ".pulumi"]);
  const folders: string[] = [];
  const walk = (relative: string): void => {
    for (const entry of fs.readdirSync(path.join(ROOT, relative), { withFileTypes: true })) {
      if (!entry.isDirectory() || skipped.has(entry.name)) continue;
      const folder = relative === "" ? entry.name : `${relative}/${entry.name}`;
      folders.push(`${folder}/`);
      // An example's or a recorded fixture's inside is named by its own README, not the table.
      if (folder === "examples" || /^tests\/fixtures\/state-v[^/]*$/.test(folder)) continue;
      walk(folder);
    }
  };
  walk("");
  return folders.filter((folder) => !folder.startsWith(".") || folder === ".ci/").sort();
}

describe("docs: ARCHITECTURE.md", () => {
  const architecture = fs.readFileSync(path.join(ROOT, "docs", "ARCHITECTURE.md"), "utf8");

  it("names every folder in its table of where things live", () => {
    const start = architecture.indexOf("## Where things live");
    expect(start, "ARCHITECTURE.md has a 'Where things live' section").to.be.greaterThan(-1);
    const table = architecture
      .slice(start)
      .split("\n")
      .filter((line) => line.startsWith("|"))
      .join("\n");
    const named = new Set([...table.matchAll(/`([^`]+\/)`/g)].map((match) => match[1]));
    const folders = ownFolders();
    expect(folders, "the walk finds the source folders").to.include.members(["agent/src/domain/", "wire/"]);
    expect(folders.filter((folder) => !named.has(folder))).to.deep.equal([]);
  });
});
