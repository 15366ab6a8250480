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
    ["HostingNode", "hosting-node/index.ts"],
  ];

  for (const [resource, file] of resources) {
    it(`documents every argument and output of ${resource}`, () => {
      const { args, outputs } = declaredNames(file);
      expect(args.length, `${file} declares arguments`).to.be.greaterThan(2);
      expect(outputs.length, `${file} declares outputs`).to.be.greaterThan(2);
      const section = referenceSection(readme, resource);
      const missing = [...new Set([...args, ...outputs])].filter((name) => !section.includes(`\`${name}\``));
      expect(missing, `missing from the README's ${resource} reference`).to.deep.equal([]);
    });
  }
});
