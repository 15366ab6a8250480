/**
 * HostingNode's settings, checked before they go into shell and systemd text: a value that could
 * break out of the generated scripts or unit file is refused, naming the field and the rule.
 */
import { createPrivateKey, X509Certificate } from "node:crypto";
import { z } from "zod";
import {
  ftpMaxSessionsSchema,
  ftpTlsSchema,
  nodeNameSchema,
  parseUnixIdRange,
  portRangeSchema,
} from "../../wire/fields";

/** nginx on the server, for the agent to validate and reload the sites it renders. */
export interface HostingNodeNginx {
  /** The nginx binary, e.g. /usr/sbin/nginx. */
  bin: string;
  mainConf?: string;
  prefix?: string;
  pidFile?: string;
  /** Where the agent writes its sites file, lbh-sites.conf (included by nginx's http block); default <dataDir>/nginx. */
  confDir?: string;
  /** Where this node's nginx serves the sites, host:port (reported to load balancers). */
  httpListen?: string;
  /** Where it serves websites that have a certificate, host:port (the agent's --https-listen; default 443). */
  httpsListen?: string;
}

/**
 * pure-ftpd on the server: the agent answers its logins (extauth, `<dataDir>/run/ftp-auth.sock`)
 * and keeps a PureDB of the FTP accounts as the fallback, checked against pure-pw. HostingNode
 * does not run pure-ftpd; start it with both `-l` options, the same listen address and passive
 * range (agent/README).
 */
export interface HostingNodeFtp {
  /** pure-pw, e.g. /usr/bin/pure-pw. */
  purePwBin: string;
  /** Where pure-ftpd listens, host:port (reported to load balancers: their FTP backend). */
  ftpListen?: string;
  /** pure-ftpd's passive range `[low, high]` (its -p), reported to load balancers, which forward it to this node. */
  passivePorts?: [number, number];
  /**
   * uid of read-only FTP accounts (not 0; default 65534, nobody); their gid is the web group
   * (`webGid`). Writable accounts run as their org's own id (`orgIdRange`).
   */
  readonlyUid?: number;
  /**
   * FTP sessions this node's pure-ftpd accepts at once (the agent's --ftp-max-sessions, at least 2):
   * give pure-ftpd the same `-c` and a `-C` at least as large (every session comes from the load balancer).
   */
  maxSessions?: number;
  /**
   * FTPS on this node's pure-ftpd (the agent's --ftp-tls, reported to load balancers and
   * `lbhosting status`): run pure-ftpd with the matching `-Y` and `-2 cert,key` (agent/README, "FTPS").
   */
  tls?: "off" | "accept" | "require";
}

/**
 * HAProxy on a load-balancer host (`role: "load-balancer"`): HostingNode writes its main
 * configuration (the global section) and runs it as a service next to the agent, which writes
 * the routes into its own file and reloads HAProxy through the master socket.
 */
export interface HostingNodeHaproxy {
  /** The haproxy binary (≥ 2.6), e.g. /usr/sbin/haproxy. */
  bin: string;
  /** host:port of the web frontend (the agent's --http-listen), e.g. 203.0.113.10:80. */
  httpListen: string;
  /** host:port where HTTPS passes through to the nodes by SNI (the agent's --https-listen; default 443). */
  httpsListen?: string;
  /** HAProxy's main configuration, written by HostingNode; default <installDir>/haproxy/haproxy.cfg. */
  mainConf?: string;
  /** The master CLI socket (-S); default <installDir>/haproxy/master.sock. */
  masterSocket?: string;
  /** The stats socket handing listeners to the next worker; default <installDir>/haproxy/admin.sock. */
  statsSocket?: string;
  /** The file the agent writes its routes into; default <dataDir>/haproxy/lbhosting.cfg. */
  confFile?: string;
}

/** A hosting node serves sites and FTP; a load-balancer host runs HAProxy in front of them. */
export type HostingNodeRole = "hosting" | "load-balancer";

/**
 * The agent's API over HTTPS, as the scripts need it: the certificate (no secret: it goes into the
 * install script) and the node's url, whose host the health poller expects the certificate to name.
 * The key travels apart, on the install command's stdin.
 */
export interface AgentTls {
  /** PEM: the agent's certificate first, then its chain. */
  certificate: string;
  url: string;
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
  /** The agent's --org-id-range, "START-END": each org's Unix id comes from it. */
  orgIdRange?: string;
  /** The agent's --web-gid: the group nginx's workers run as (default www-data's). */
  webGid?: number;
  role: HostingNodeRole;
  nginx?: HostingNodeNginx;
  ftp?: HostingNodeFtp;
  haproxy?: HostingNodeHaproxy;
  purgeData: boolean;
  healthTimeoutSeconds: number;
  tls?: AgentTls;
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
const GONE_IDS = "is gone: each organization's writable accounts run as its own id, from orgIdRange";
/** uids and gids the agent accepts (pure-ftpd refuses 0, root). */
const accountId = positiveInteger.max(4294967294, "must be at most 4294967294");

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;
const CERTIFICATE_RULE = 'must be PEM certificates ("-----BEGIN CERTIFICATE-----"): the agent\'s first, then its chain';
const KEY_RULE = 'must be an unencrypted PEM private key ("-----BEGIN PRIVATE KEY-----", or RSA/EC)';
/** One or more PEM certificates and nothing else, each a parsable X.509 certificate. */
const isCertificateChain = (text: string): boolean => {
  const found = text.match(PEM_CERTIFICATE) ?? [];
  if (found.length === 0 || text.replace(PEM_CERTIFICATE, "").trim() !== "") return false;
  try {
    found.forEach((pem) => new X509Certificate(pem));
    return true;
  } catch {
    return false;
  }
};
const isPrivateKey = (text: string): boolean => {
  if (!/^-----BEGIN (?:RSA |EC )?PRIVATE KEY-----\n[\s\S]+\n-----END (?:RSA |EC )?PRIVATE KEY-----$/.test(text.trim()))
    return false;
  try {
    createPrivateKey(text);
    return true;
  } catch {
    return false;
  }
};
const certificateChain = z.string({ error: CERTIFICATE_RULE }).refine(isCertificateChain, CERTIFICATE_RULE);

/**
 * The agent's certificate and key as the program gives them (the key a secret): both or neither,
 * PEM, and the key the certificate's.
 */
const agentTlsSchema = z
  .object({
    certificate: certificateChain.optional(),
    privateKey: z.string({ error: KEY_RULE }).refine(isPrivateKey, KEY_RULE).optional(),
  })
  .superRefine(({ certificate, privateKey }, context) => {
    if ((certificate === undefined) !== (privateKey === undefined)) {
      const missing = certificate === undefined ? "certificate" : "privateKey";
      const given = certificate === undefined ? "privateKey" : "certificate";
      context.addIssue({ code: "custom", path: [missing], message: `is required with tls.${given}` });
    } else if (
      certificate !== undefined &&
      privateKey !== undefined &&
      isCertificateChain(certificate) &&
      isPrivateKey(privateKey) &&
      !new X509Certificate(certificate).checkPrivateKey(createPrivateKey(privateKey))
    ) {
      context.addIssue({ code: "custom", path: ["privateKey"], message: "is not the key of tls.certificate" });
    }
  });

/** The fields that reach shell or unit text (the rest are computed, and quoted where used). */
const settingsSchema = z
  .object({
    name: nodeNameSchema,
    version: z.string().regex(/^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?$/, "must be a version such as 1.2.3"),
    installDir: safePath,
    dataDir: safePath,
    contentRoot: safePath.optional(),
    orgIdRange: z
      .string()
      .refine((range) => typeof parseUnixIdRange(range) !== "string", {
        error: (issue) => {
          const problem = parseUnixIdRange(issue.input as string);
          return typeof problem === "string" ? problem : "is not a range";
        },
      })
      .optional(),
    webGid: accountId.optional(),
    listen: safeListen,
    role: z.enum(["hosting", "load-balancer"], { error: 'must be "hosting" or "load-balancer"' }),
    nginx: z
      .object({
        bin: safePath,
        mainConf: safePath.optional(),
        prefix: safePath.optional(),
        pidFile: safePath.optional(),
        confDir: safePath.optional(),
        httpListen: safeListen.optional(),
        httpsListen: safeListen.optional(),
      })
      .optional(),
    ftp: z
      .object({
        purePwBin: safePath,
        ftpListen: safeListen.optional(),
        passivePorts: portRangeSchema.optional(),
        // Gone: refused rather than dropped, so a program that still sets them learns what replaced them.
        uid: z.undefined({ error: GONE_IDS }).optional(),
        gid: z.undefined({ error: GONE_IDS }).optional(),
        readonlyUid: accountId.optional(),
        readonlyGid: z.undefined({ error: "is gone: read-only accounts run with the web group (webGid)" }).optional(),
        maxSessions: ftpMaxSessionsSchema.optional(),
        tls: ftpTlsSchema.optional(),
      })
      .optional(),
    haproxy: z
      .object({
        bin: safePath,
        httpListen: safeListen,
        httpsListen: safeListen.optional(),
        mainConf: safePath.optional(),
        masterSocket: safePath.optional(),
        statsSocket: safePath.optional(),
        confFile: safePath.optional(),
      })
      .optional(),
    tls: z
      .object({
        certificate: certificateChain,
        // The poller names its host to the agent: an https URL with a host name or address.
        url: z
          .string()
          .refine((url) => URL.canParse(url) && new URL(url).protocol === "https:" && new URL(url).hostname !== "", {
            error: "must be an https:// URL with tls",
          }),
      })
      .optional(),
  })
  // A load balancer serves nothing itself, and HAProxy runs only where the agent drives it.
  .superRefine((settings, context) => {
    const balancer = settings.role === "load-balancer";
    const refuse = (field: "nginx" | "ftp" | "haproxy", message: string) =>
      context.addIssue({ code: "custom", path: [field], message });
    if (balancer && !settings.haproxy) refuse("haproxy", 'is required with role "load-balancer"');
    if (balancer && settings.nginx) refuse("nginx", 'is for hosting nodes, not role "load-balancer"');
    if (balancer && settings.ftp) refuse("ftp", 'is for hosting nodes, not role "load-balancer"');
    if (!balancer && settings.haproxy) refuse("haproxy", 'needs role "load-balancer"');
    // The agent's data folder is its alone (0700): what nginx and pure-ftpd serve lives elsewhere.
    if ((settings.nginx || settings.ftp) && !settings.contentRoot) {
      context.addIssue({ code: "custom", path: ["contentRoot"], message: "is required with nginx or ftp" });
    }
  });

/** The field as the program declares it (the install's `version` is the argument agentVersion, `tls.url` is url). */
const fieldName = (key: PropertyKey[]): string =>
  key
    .map(String)
    .join(".")
    .replace(/^version$/, "agentVersion")
    .replace(/^tls\.url$/, "url");

/**
 * `HostingNode <resource>: <field> "<value>" <rule>; …` for a refused parse; certificates and keys
 * are never quoted (a key is a secret, a certificate only noise).
 */
function refusal(resource: string, issues: z.core.$ZodIssue[], prefix: PropertyKey[] = []): Error {
  const problems = issues.map((issue) => {
    const path = [...prefix, ...issue.path];
    const quoted = typeof issue.input === "string" && path[0] !== "tls";
    return `${fieldName(path)}${quoted ? ` ${JSON.stringify(issue.input)}` : ""} ${issue.message}`;
  });
  return new Error(`HostingNode ${resource}: ${[...new Set(problems)].join("; ")}`);
}

/** Throws `HostingNode <resource>: <field> "<value>" <rule>; …` when any setting is refused. */
export function checkHostingNodeSettings(resource: string, install: AgentInstall): void {
  const parsed = settingsSchema.safeParse(install, { reportInput: true });
  if (!parsed.success) throw refusal(resource, parsed.error.issues);
}

/** Throws `HostingNode <resource>: tls.<field> <rule>` when the agent's certificate or key is refused (no PEM quoted). */
export function checkAgentTls(resource: string, tls: { certificate?: string; privateKey?: string }): void {
  const parsed = agentTlsSchema.safeParse(tls);
  if (!parsed.success) throw refusal(resource, parsed.error.issues, ["tls"]);
}
