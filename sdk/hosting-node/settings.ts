/**
 * HostingNode's settings, checked before they go into shell and systemd text: a value that could
 * break out of the generated scripts or unit file is refused, naming the field and the rule.
 */
import { z } from "zod";
import { nodeNameSchema } from "../../wire/fields";

/** nginx on the server, for the agent to validate and reload the sites it renders. */
export interface HostingNodeNginx {
  /** The nginx binary, e.g. /usr/sbin/nginx. */
  bin: string;
  mainConf?: string;
  prefix?: string;
  pidFile?: string;
  /** Where the agent writes site files (included by nginx's http block); default <dataDir>/nginx. */
  confDir?: string;
  /** Where this node's nginx serves the sites, host:port (reported to load balancers). */
  httpListen?: string;
}

/** pure-ftpd on the server: the agent builds its PureDB of FTP accounts with pure-pw. */
export interface HostingNodeFtp {
  /** pure-pw, e.g. /usr/bin/pure-pw. */
  purePwBin: string;
  /** Where pure-ftpd listens, host:port (informational). */
  ftpListen?: string;
  /** uid/gid of writable FTP accounts (not 0; both or neither, or the agent runs them as its own). */
  uid?: number;
  gid?: number;
}

/** One agent installation, as the scripts need it. */
export interface AgentInstall {
  name: string;
  version: string;
  installDir: string;
  dataDir: string;
  /** Where the packed agent package was copied on the server. */
  packageFile: string;
  /** sha256 of the package file, checked on the server (a new file with the same name reinstalls). */
  packageSha256: string;
  listen: string;
  contentRoot?: string;
  nginx?: HostingNodeNginx;
  ftp?: HostingNodeFtp;
  purgeData: boolean;
  healthTimeoutSeconds: number;
}

const PATH_RULE = "must be an absolute path of letters, digits and . _ / @ + - (no ..)";
const LISTEN_RULE = "must be host:port (IPv6 in brackets)";
const safePath = z.string({ error: PATH_RULE }).regex(/^\/(?!.*(?:^|\/)\.\.(?:\/|$))[A-Za-z0-9._/@+-]*$/, PATH_RULE);
const safeListen = z
  .string({ error: LISTEN_RULE })
  .regex(/^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]*):\d{1,5}$/, LISTEN_RULE);
const positiveInteger = z
  .number({ error: "must be a positive integer" })
  .int("must be a positive integer")
  .positive("must be a positive integer");

/** The fields that reach shell or unit text (the rest are computed, and quoted where used). */
const settingsSchema = z.object({
  name: nodeNameSchema,
  version: z.string().regex(/^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?$/, "must be a version such as 1.2.3"),
  installDir: safePath,
  dataDir: safePath,
  contentRoot: safePath.optional(),
  listen: safeListen,
  nginx: z
    .object({
      bin: safePath,
      mainConf: safePath.optional(),
      prefix: safePath.optional(),
      pidFile: safePath.optional(),
      confDir: safePath.optional(),
      httpListen: safeListen.optional(),
    })
    .optional(),
  ftp: z
    .object({
      purePwBin: safePath,
      ftpListen: safeListen.optional(),
      uid: positiveInteger.optional(),
      gid: positiveInteger.optional(),
    })
    // Either alone leaves the other at the agent's own id, root's as a root service: pure-ftpd
    // then refuses every login.
    .refine((ftp) => (ftp.uid === undefined) === (ftp.gid === undefined), {
      message: "must be given together with ftp.uid (both or neither)",
      path: ["gid"],
    })
    .optional(),
});

/** The field as the program declares it (the install's `version` is the argument agentVersion). */
const fieldName = (key: PropertyKey[]): string =>
  key
    .map(String)
    .join(".")
    .replace(/^version$/, "agentVersion");

/** Throws `HostingNode <resource>: <field> "<value>" <rule>; …` when any setting is refused. */
export function checkHostingNodeSettings(resource: string, install: AgentInstall): void {
  const parsed = settingsSchema.safeParse(install, { reportInput: true });
  if (parsed.success) return;
  const problems = parsed.error.issues.map((issue) => {
    const value = typeof issue.input === "string" ? ` ${JSON.stringify(issue.input)}` : "";
    return `${fieldName(issue.path)}${value} ${issue.message}`;
  });
  throw new Error(`HostingNode ${resource}: ${[...new Set(problems)].join("; ")}`);
}
