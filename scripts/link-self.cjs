// Lets programs inside this repository (the root quick-start stack, the examples, the e2e stacks)
// load this package by name, exactly as the provider stored in Pulumi state does at run time:
// require("pulumi-lbhosting/provider"). npm refuses a package that depends on itself, so link it.
// npm runs it as the root-only "dependencies" script (after it changed node_modules), so an
// install of the packed library elsewhere has no install script to approve.
const fs = require("node:fs");
const path = require("node:path");

const root = path.resolve(__dirname, "..");
const modules = path.join(root, "node_modules");
const link = path.join(modules, "pulumi-lbhosting");

// Installed as a dependency of another project: nothing to link.
if (path.basename(path.dirname(root)) === "node_modules" || !fs.existsSync(modules)) process.exit(0);

try {
  fs.lstatSync(link);
} catch {
  fs.symlinkSync("..", link, "dir");
}
