/**
 * Proves the end-to-end harness: the real Pulumi CLI drives a program holding a dynamic resource
 * (a file on disk) through up, preview, refresh --expect-no-changes and destroy.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { expect } from "chai";
import * as pulumi from "@pulumi/pulumi";
import { createTestStack, requirePulumi, TestStack } from "../support/pulumi";

interface FileInputs {
  path: string;
  content: string;
}

/** A dynamic provider managing one text file, so drift can be made by editing the file. */
const fileProvider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: FileInputs) {
    fs.writeFileSync(inputs.path, inputs.content);
    return { id: inputs.path, outs: { ...inputs, length: inputs.content.length } };
  },
  async read(id: string, props: FileInputs) {
    if (!fs.existsSync(id)) return { id: "", props: {} };
    const content = fs.readFileSync(id, "utf8");
    return { id, props: { ...props, content, length: content.length }, inputs: { path: id, content } };
  },
  async diff(_id: string, olds: FileInputs, news: FileInputs) {
    const replaces = olds.path !== news.path ? ["path"] : [];
    return { changes: olds.content !== news.content || replaces.length > 0, replaces };
  },
  async update(_id: string, _olds: FileInputs, news: FileInputs) {
    fs.writeFileSync(news.path, news.content);
    return { outs: { ...news, length: news.content.length } };
  },
  async delete(id: string) {
    fs.rmSync(id, { force: true });
  },
};

class TextFile extends pulumi.dynamic.Resource {
  declare readonly length: pulumi.Output<number>;
  constructor(name: string, args: FileInputs) {
    super(fileProvider, name, { ...args, length: undefined }, {});
  }
}

describe("e2e harness: the real Pulumi CLI with a dynamic resource", function () {
  let testStack: TestStack;
  let filePath: string;

  before(async function () {
    const bin = requirePulumi(this);
    testStack = await createTestStack(bin, {
      projectName: "harness",
      program: async () => {
        const file = new TextFile("greeting", { path: filePath, content: "hello" });
        return { length: file.length };
      },
    });
    filePath = path.join(testStack.root, "greeting.txt");
  });

  after(() => testStack?.cleanup());

  it("up creates the resource and returns its outputs", async () => {
    const result = await testStack.stack.up();
    expect(result.summary.result).to.equal("succeeded");
    expect(result.summary.resourceChanges).to.deep.equal({ create: 2 });
    expect(result.outputs.length.value).to.equal(5);
    expect(fs.readFileSync(filePath, "utf8")).to.equal("hello");
  });

  it("preview then shows no changes", async () => {
    const result = await testStack.stack.preview();
    expect(result.changeSummary).to.deep.equal({ same: 2 });
  });

  it("refresh --expect-no-changes passes while nothing drifted", async () => {
    const result = await testStack.stack.refresh({ expectNoChanges: true });
    expect(result.summary.result).to.equal("succeeded");
  });

  it("refresh --expect-no-changes fails once the file drifted", async () => {
    fs.writeFileSync(filePath, "tampered");
    let failure: unknown;
    try {
      await testStack.stack.refresh({ expectNoChanges: true });
    } catch (error) {
      failure = error;
    }
    expect(String(failure)).to.match(/no changes were expected for refresh but changes were proposed/);
    expect(String(failure)).to.include("[diff: ~content]");
  });

  it("destroy removes the resource", async () => {
    const result = await testStack.stack.destroy();
    expect(result.summary.result).to.equal("succeeded");
    expect(result.summary.resourceChanges).to.deep.equal({ delete: 2 });
    expect(fs.existsSync(filePath)).to.equal(false);
  });
});
