/**
 * Runs a Pulumi project folder the way a user does: a temporary copy of the folder (outside the
 * repository, so nothing resolves from the repository's node_modules), `npm install` with the
 * PACKED library (`npm pack`) in place of the registry's, then the real CLI in that folder with a
 * local file backend, its own PULUMI_HOME (the command plugin installed into it) and a
 * passphrase.
 *
 *   const bin = requirePulumi(this);
 *   const project = await createProjectFolder(bin, { source: exampleDir("quickstart") });
 *   await project.configSet("lbhosting:token", token, { secret: true });
 *   await project.up();                                  // pulumi up --yes
 *   await project.preview({ expectNoChanges: true });    // pulumi preview --expect-no-changes
 *   const outputs = await project.outputs();             // pulumi stack output --json
 *   await project.destroy();                             // pulumi destroy --yes
 *   project.cleanup();
 *
 * Packs are made once per test process (`packWorkspace()`), and projects whose package.json
 * declares the same dependencies share one install (their node_modules is a link to it), so
 * four examples cost one `npm install`.
 */
import { execFile, execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { installCommandPlugin, localPulumiEnv, REPO_ROOT } from "./pulumi";

const PASSPHRASE = "lbhosting-project-passphrase";

export interface PackedWorkspace {
  /** The library, pulumi-lbhosting-<version>.tgz. */
  library: string;
  /** The agent, lbhosting-agent-<version>.tgz. */
  agent: string;
}

let packs: PackedWorkspace | undefined;
let scratchRoot: string | undefined;

/** One temporary folder per test process, removed when it exits. */
function scratch(): string {
  if (!scratchRoot) {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "lbh-projects-"));
    scratchRoot = root;
    process.once("exit", () => fs.rmSync(root, { recursive: true, force: true }));
  }
  return scratchRoot;
}

/** `npm pack` of the built library and agent, once per test process (run `npm run build` first). */
export function packWorkspace(): PackedWorkspace {
  if (packs) return packs;
  const destination = fs.mkdtempSync(path.join(scratch(), "packs-"));
  const pack = (workspace: string[]) => {
    const output = execFileSync(
      "npm",
      ["pack", "--json", "--ignore-scripts", "--pack-destination", destination, ...workspace],
      { cwd: REPO_ROOT, encoding: "utf8", timeout: 120_000 },
    );
    const [packed] = JSON.parse(output) as { filename: string }[];
    return path.join(destination, packed.filename);
  };
  packs = { library: pack([]), agent: pack(["-w", "lbhosting-agent"]) };
  return packs;
}

/** A copy of the agent package tarball with another version, as an upgrade would bring. */
export function repackAgent(version: string): string {
  const work = fs.mkdtempSync(path.join(scratch(), "agent-repack-"));
  execFileSync("tar", ["-xzf", packWorkspace().agent, "-C", work], { timeout: 60_000 });
  const manifestFile = path.join(work, "package", "package.json");
  const manifest = JSON.parse(fs.readFileSync(manifestFile, "utf8")) as { version: string };
  fs.writeFileSync(manifestFile, JSON.stringify({ ...manifest, version }, null, 2));
  const output = execFileSync("npm", ["pack", "--json", "--ignore-scripts", "--pack-destination", work], {
    cwd: path.join(work, "package"),
    encoding: "utf8",
    timeout: 120_000,
  });
  const [packed] = JSON.parse(output) as { filename: string }[];
  return path.join(work, packed.filename);
}

/** The folder of an example in this repository. */
export const exampleDir = (name: string): string => path.join(REPO_ROOT, "examples", name);

const installs = new Map<string, Promise<string>>();

/**
 * node_modules for a project's package.json, with pulumi-lbhosting taken from the packed `library`:
 * one `npm install --prefer-offline` per distinct dependency set and library in this process.
 */
function installDependencies(projectDir: string, library: string): Promise<string> {
  const manifest = JSON.parse(fs.readFileSync(path.join(projectDir, "package.json"), "utf8")) as Record<
    string,
    unknown
  >;
  const wanted = { dependencies: manifest.dependencies, devDependencies: manifest.devDependencies, library };
  const key = createHash("sha256").update(JSON.stringify(wanted)).digest("hex").slice(0, 12);
  let install = installs.get(key);
  if (!install) {
    const dir = path.join(scratch(), `install-${key}`);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, "package.json"), JSON.stringify({ ...manifest, name: `install-${key}` }, null, 2));
    install = run(
      "npm",
      ["install", "--prefer-offline", "--no-audit", "--no-fund", library],
      { cwd: dir, env: process.env },
      600_000,
    ).then(() => path.join(dir, "node_modules"));
    installs.set(key, install);
  }
  return install;
}

export interface CliResult {
  stdout: string;
  stderr: string;
}

/**
 * Runs a command, with `input` on stdin when given (a secret config value stays off the command
 * line); rejects with its output when it fails or exceeds `timeoutMs`.
 */
function run(
  file: string,
  args: string[],
  options: { cwd: string; env: NodeJS.ProcessEnv; input?: string },
  timeoutMs: number,
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      { cwd: options.cwd, env: options.env, timeout: timeoutMs, killSignal: "SIGKILL", maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error) {
          const output = `${stdout}\n${stderr}`.trim().slice(-6000);
          reject(
            Object.assign(new Error(`${path.basename(file)} ${args.join(" ")} failed: ${error.message}\n${output}`), {
              stdout,
              stderr,
            }),
          );
        } else resolve({ stdout, stderr });
      },
    );
    child.stdin?.end(options.input ?? "");
  });
}

/**
 * The environment of the CLI as a user with the official install has it: pulumi, its language
 * host and the dynamic-provider host on PATH (linked into `cliDir`), and no ambient command plugin
 * anywhere on PATH (the CLI would prefer it over the one installed into PULUMI_HOME).
 */
export function userPulumiEnv(options: {
  bin: string;
  home: string;
  backend: string;
  passphrase: string;
  cliDir?: string;
}): Record<string, string> {
  const cliDir = options.cliDir ?? path.join(scratch(), "cli");
  if (!fs.existsSync(cliDir)) {
    fs.mkdirSync(cliDir, { recursive: true });
    for (const tool of ["pulumi", "pulumi-language-nodejs", "pulumi-resource-pulumi-nodejs"]) {
      fs.symlinkSync(path.join(options.bin, tool), path.join(cliDir, tool));
    }
  }
  const env = localPulumiEnv({ ...options, bin: cliDir });
  const withoutAmbientPlugin = env.PATH.split(path.delimiter).filter(
    (dir) => dir === cliDir || !fs.existsSync(path.join(dir, "pulumi-resource-command")),
  );
  return { ...env, PATH: withoutAmbientPlugin.join(path.delimiter) };
}

export interface ProjectFolderOptions {
  /** The project folder to copy (Pulumi.yaml, package.json, index.ts, …). */
  source: string;
  /** Stack name for `pulumi stack init` (default "e2e"). */
  stack?: string;
  /** Extra environment for every command (e.g. LBHOSTING_TOKEN). */
  env?: Record<string, string>;
  /** Per-command timeout (default 10 minutes). */
  timeoutMs?: number;
  /** The library tarball to install (default this build's, `packWorkspace().library`). */
  library?: string;
  /** The secrets passphrase (default one shared by the project tests). */
  passphrase?: string;
}

export interface ProjectFolder {
  /** The temporary copy of the project, where every command runs. */
  readonly dir: string;
  readonly stack: string;
  /** The environment of every command: the CLI folder on PATH, backend, PULUMI_HOME, passphrase. */
  readonly env: NodeJS.ProcessEnv;
  /** Every CLI command's stdout and stderr so far, for diagnostics and secret scans. */
  log(): string;
  /** `pulumi <args>` in the folder, with `--stack` added; rejects with the output on failure. */
  pulumi(args: string[]): Promise<CliResult>;
  /** `pulumi config set [--secret] KEY` (the value goes through stdin, never the command line). */
  configSet(key: string, value: string, options?: { secret?: boolean }): Promise<void>;
  up(): Promise<CliResult>;
  preview(options?: { expectNoChanges?: boolean }): Promise<CliResult>;
  refresh(options?: { expectNoChanges?: boolean }): Promise<CliResult>;
  destroy(): Promise<CliResult>;
  /** `pulumi stack output --json` (secrets shown as "[secret]" unless showSecrets). */
  outputs(options?: { showSecrets?: boolean }): Promise<Record<string, unknown>>;
  /** The state as `pulumi stack export` gives it: secrets stay encrypted. */
  exportState(): Promise<unknown>;
  /** Removes the copy, its backend and its PULUMI_HOME (destroys nothing). */
  cleanup(): void;
}

/**
 * Copies `source` into a temporary folder, installs its dependencies with the packed library,
 * installs the command plugin into a new PULUMI_HOME and runs `pulumi stack init`.
 */
export async function createProjectFolder(bin: string, options: ProjectFolderOptions): Promise<ProjectFolder> {
  const stack = options.stack ?? "e2e";
  const timeoutMs = options.timeoutMs ?? 10 * 60_000;
  const root = fs.mkdtempSync(path.join(scratch(), `${path.basename(options.source)}-`));
  const dir = path.join(root, "project");
  const home = path.join(root, "home");
  const backend = path.join(root, "state");
  fs.cpSync(options.source, dir, {
    recursive: true,
    filter: (file) => !/(^|\/)(node_modules|Pulumi\.[^/]+\.yaml)$/.test(path.relative(options.source, file)),
  });
  fs.mkdirSync(home);
  fs.mkdirSync(backend);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...userPulumiEnv({ bin, home, backend, passphrase: options.passphrase ?? PASSPHRASE }),
    ...options.env,
  };
  delete env.PULUMI_CONFIG_PASSPHRASE_FILE;

  const transcript: string[] = [];
  const pulumiCli = async (args: string[], input?: string): Promise<CliResult> => {
    try {
      const result = await run(path.join(bin, "pulumi"), args, { cwd: dir, env, input }, timeoutMs);
      transcript.push(`$ pulumi ${args.join(" ")}\n${result.stdout}${result.stderr}`);
      return result;
    } catch (error) {
      const failed = error as Error & Partial<CliResult>;
      transcript.push(`$ pulumi ${args.join(" ")} (failed)\n${failed.stdout ?? ""}${failed.stderr ?? ""}`);
      throw error;
    }
  };

  const [modules] = await Promise.all([
    installDependencies(dir, options.library ?? packWorkspace().library),
    installCommandPlugin(bin, env as Record<string, string>),
  ]);
  fs.symlinkSync(modules, path.join(dir, "node_modules"), "dir");
  await pulumiCli(["stack", "init", stack]);

  const withStack = (args: string[]) => [...args, "--stack", stack];
  return {
    dir,
    stack,
    env,
    log: () => transcript.join("\n"),
    pulumi: (args) => pulumiCli(withStack(args)),
    configSet: async (key, value, setOptions) => {
      await pulumiCli(withStack(["config", "set", ...(setOptions?.secret ? ["--secret"] : []), key]), value);
    },
    up: () => pulumiCli(withStack(["up", "--yes", "--skip-preview"])),
    preview: (previewOptions) =>
      pulumiCli(withStack(["preview", ...(previewOptions?.expectNoChanges ? ["--expect-no-changes"] : [])])),
    refresh: (refreshOptions) =>
      pulumiCli(withStack(["refresh", "--yes", ...(refreshOptions?.expectNoChanges ? ["--expect-no-changes"] : [])])),
    destroy: () => pulumiCli(withStack(["destroy", "--yes", "--skip-preview"])),
    outputs: async (outputOptions) => {
      const args = ["stack", "output", "--json", ...(outputOptions?.showSecrets ? ["--show-secrets"] : [])];
      return JSON.parse((await pulumiCli(withStack(args))).stdout) as Record<string, unknown>;
    },
    exportState: async () =>
      (JSON.parse((await pulumiCli(withStack(["stack", "export"]))).stdout) as { deployment: unknown }).deployment,
    cleanup: () => fs.rmSync(root, { recursive: true, force: true }),
  };
}
