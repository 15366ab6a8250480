/**
 * End-to-end harness: runs Pulumi programs with the real CLI through the Automation API, with a
 * local file backend, a temporary PULUMI_HOME and a passphrase secrets provider, all under a
 * throw-away folder inside the repository (so the dynamic-provider process, which starts in the
 * program's folder, finds this package in the repository's node_modules).
 */
import { execFile, spawnSync } from "node:child_process";
import { promisify } from "node:util";
import * as fs from "node:fs";
import * as path from "node:path";
import { LocalWorkspace, PulumiCommand, Stack, type PulumiFn } from "@pulumi/pulumi/automation";
import { requireTool } from "./requirements";

const execFileAsync = promisify(execFile);

export const REPO_ROOT = path.resolve(__dirname, "..", "..", "..");

let pulumiBin: string | undefined;

/** The folder holding the real `pulumi` CLI, built or found by scripts/ensure-pulumi.sh; undefined when it cannot be had. */
export function ensurePulumi(): string | undefined {
  if (pulumiBin) return pulumiBin;
  const result = spawnSync("bash", [path.join(REPO_ROOT, "scripts", "ensure-pulumi.sh")], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
    timeout: 45 * 60_000,
  });
  const bin = result.stdout.trim().split("\n").pop();
  if (result.status === 0 && bin && fs.existsSync(path.join(bin, "pulumi"))) {
    pulumiBin = bin;
    return bin;
  }
  return undefined;
}

/** The Pulumi CLI's folder for a suite (see requireTool: skips outside CI, fails under CI=true). */
export const requirePulumi = (context: Mocha.Context): string =>
  requireTool(context, "the Pulumi CLI", ensurePulumi, "scripts/ensure-pulumi.sh could not find or build it");

export interface TestStackOptions {
  projectName: string;
  program: PulumiFn;
  /** Stack config, set before the first operation. Secret values are encrypted in the stack file. */
  config?: Record<string, { value: string; secret?: boolean }>;
}

export interface TestStack {
  stack: Stack;
  /** The temporary folder holding the backend, PULUMI_HOME and the workspace. */
  root: string;
  /** The stack's state as `pulumi stack export` gives it: secrets stay encrypted. */
  exportState(): Promise<unknown>;
  /** Destroys nothing; removes the temporary folder. */
  cleanup(): void;
}

const PASSPHRASE = "lbhosting-e2e-passphrase";

/**
 * The environment for the real CLI and the provider it starts, offline and self-contained: the
 * CLI folder first on PATH, a local file backend, its own PULUMI_HOME, a passphrase for secrets.
 */
export function localPulumiEnv(options: { bin: string; home: string; backend: string; passphrase: string }) {
  return {
    PATH: `${options.bin}${path.delimiter}${process.env.PATH ?? ""}`,
    PULUMI_HOME: options.home,
    PULUMI_BACKEND_URL: `file://${options.backend}`,
    PULUMI_CONFIG_PASSPHRASE: options.passphrase,
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
  };
}

/** The version of the command plugin that @pulumi/command (a library dependency) asks for. */
const COMMAND_PLUGIN_VERSION = "1.2.1";

/**
 * Installs the command plugin, built by scripts/ensure-pulumi.sh next to the CLI, into the
 * temporary PULUMI_HOME of `env`, as `pulumi plugin install` does for a user.
 */
export async function installCommandPlugin(bin: string, env: Record<string, string>): Promise<void> {
  const plugin = path.join(bin, "pulumi-resource-command");
  await execFileAsync(
    path.join(bin, "pulumi"),
    ["plugin", "install", "resource", "command", COMMAND_PLUGIN_VERSION, "--file", plugin],
    { env: { ...process.env, ...env }, timeout: 120_000 },
  );
}

/**
 * A new folder for one stack under `.pulumi/` in the repository, where a program finds this package
 * in the repository's node_modules.
 */
export function stackScratchFolder(projectName: string): string {
  const scratch = path.join(REPO_ROOT, ".pulumi");
  fs.mkdirSync(scratch, { recursive: true });
  return fs.mkdtempSync(path.join(scratch, `${projectName}-`));
}

export async function createTestStack(bin: string, options: TestStackOptions): Promise<TestStack> {
  const root = stackScratchFolder(options.projectName);
  const backend = path.join(root, "state");
  const home = path.join(root, "home");
  const workDir = path.join(root, "work");
  for (const dir of [backend, home, workDir]) fs.mkdirSync(dir, { recursive: true });

  const envVars = localPulumiEnv({ bin, home, backend, passphrase: PASSPHRASE });
  await installCommandPlugin(bin, envVars);
  const pulumiCommand = await PulumiCommand.get({ root: path.dirname(bin) });
  const stack = await LocalWorkspace.createOrSelectStack(
    { stackName: "e2e", projectName: options.projectName, program: options.program },
    {
      workDir,
      pulumiCommand,
      envVars,
      secretsProvider: "passphrase",
      projectSettings: { name: options.projectName, runtime: "nodejs", backend: { url: `file://${backend}` } },
    },
  );
  if (options.config) await stack.setAllConfig(options.config);
  return {
    stack,
    root,
    // The Automation API's exportStack passes --show-secrets; the CLI's own export keeps them encrypted.
    exportState: async () => {
      const { stdout } = await execFileAsync(pulumiCommand.command, ["stack", "export", "--stack", stack.name], {
        cwd: workDir,
        env: { ...process.env, ...envVars },
        maxBuffer: 256 * 1024 * 1024,
        timeout: 120_000,
      });
      return (JSON.parse(stdout) as { deployment: unknown }).deployment;
    },
    cleanup: () => fs.rmSync(root, { recursive: true, force: true }),
  };
}
