/**
 * Field rules of the wire contract: every rule that keeps a value from injecting into nginx, FTP
 * or HAProxy configuration or escaping an org's content folder. Used by the agent's request
 * validation, the replicated records and the SDK's resource inputs alike.
 */
import { z } from "zod";

/**
 * A stored SHA-512 crypt hash as the system's crypt (libxcrypt, which pure-ftpd calls) accepts it:
 * rounds written without leading zeros, from 1,000 to 100,000, a salt of crypt's own alphabet.
 * The upper bound keeps what one login costs pure-ftpd bounded: a hash with 999,999,999 rounds
 * pins a CPU for minutes on every login attempt, even a failed one.
 */
export const CRYPT_SHA512_HASH = /^\$6\$(?:rounds=(?:[1-9]\d{3,4}|100000)\$)?[./0-9A-Za-z]{1,16}\$[./0-9A-Za-z]{86}$/;

const DNS_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
/**
 * Printable text without control characters (C0, DEL and C1), Unicode's bidirectional overrides,
 * embeddings and isolates (U+202A-202E, U+2066-2069: text that displays other than it reads),
 * quotes, `$`, `;`, angle brackets (markup: the text may be shown in a web page), braces or
 * backslashes.
 */
// eslint-disable-next-line no-control-regex -- control characters are exactly what this rejects
const SAFE_TEXT = /^[^\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069"'`$;<>{}\\]*$/;
const PATH_SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;

export const orgNameSchema = z
  .string()
  .regex(DNS_LABEL, "must be a DNS label: 1-63 lowercase letters, digits or '-', not starting or ending with '-'");

export const serviceNameSchema = z
  .string()
  .regex(DNS_LABEL, "must be a DNS label: 1-63 lowercase letters, digits or '-', not starting or ending with '-'");

export const usernameSchema = z
  .string()
  .regex(
    /^[a-z][a-z0-9._-]{0,31}$/,
    "must start with a lowercase letter and contain only lowercase letters, digits, '.', '_' or '-' (at most 32)",
  );

export const domainSchema = z
  .string()
  .max(253, "must be at most 253 characters")
  .regex(
    /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$/,
    "must be a lowercase DNS name such as www.example.com (letters, digits, '-' and '.')",
  );

/**
 * A folder relative to the organization's content folder on the NAS: "." for the folder itself,
 * otherwise '/'-separated segments that cannot be "..", hidden, absolute or contain odd characters.
 */
export const contentPathSchema = z
  .string()
  .max(255, "must be at most 255 characters")
  .refine(
    (path) => path === "." || (path.length > 0 && path.split("/").every((segment) => PATH_SEGMENT.test(segment))),
    "must be '.' or a relative path of segments made of letters, digits, '.', '_' or '-' (no '..', no leading '/' or '.')",
  );

export const displayNameSchema = z
  .string()
  .max(128, "must be at most 128 characters")
  .regex(
    SAFE_TEXT,
    "must not contain control or bidirectional-override characters, quotes, '$', ';', '<', '>', braces or backslashes",
  );

export const emailSchema = z.email("must be an email address").max(254);
/** On the wire "" clears an email. */
export const emailOrEmptySchema = z.union([z.literal(""), emailSchema], { error: "must be an email address or empty" });

export const passwordSchema = z
  .string()
  .min(8, "must be at least 8 characters")
  .max(128, "must be at most 128 characters")
  // eslint-disable-next-line no-control-regex -- control characters are exactly what this rejects
  .regex(/^[^\u0000-\u001f\u007f]*$/, "must not contain control characters");

/** crypt(3) SHA-512 ("$6$"), the hash pure-ftpd verifies; the only form a password is stored in. */
export const passwordHashSchema = z
  .string()
  .regex(CRYPT_SHA512_HASH, "must be a crypt(3) SHA-512 hash ($6$salt$hash, rounds from 1000 to 100000 if given)");

/** An agent's base URL: http(s)://host[:port] with no credentials, path, query or fragment. */
export const endpointSchema = z
  .string()
  .max(2048)
  .refine((value) => {
    try {
      const url = new URL(value);
      return (
        (url.protocol === "http:" || url.protocol === "https:") &&
        url.username === "" &&
        url.password === "" &&
        (url.pathname === "/" || url.pathname === "") &&
        url.search === "" &&
        url.hash === ""
      );
    } catch {
      return false;
    }
  }, "must be an agent URL such as https://host:8443 (http or https, no path, query or credentials)");

/** Canonical form of an endpoint, so "http://h:1/" and "http://h:1" are the same node. */
export function normalizeEndpoint(endpoint: string): string {
  const url = new URL(endpoint);
  return `${url.protocol}//${url.host}`;
}

/** A node's name (an agent's --name): its X-Served-By header and its server name on the load balancer. */
export const NODE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
export const nodeNameSchema = z
  .string()
  .regex(NODE_NAME, "must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit");

/** A serving address "host:port" (IPv4 or DNS name), as HAProxy's `bind` and `server` take it. */
export const listenAddressSchema = z
  .string()
  .regex(
    /^(?:(?:\d{1,3}\.){3}\d{1,3}|[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*):(?:[1-9]\d{0,4})$/,
    "must be host:port (an IPv4 address or DNS name, and a port)",
  )
  .refine((address) => Number(address.split(":")[1]) <= 65535, "port must be at most 65535");

const portSchema = z.number().int().min(1).max(65535);

/** An FTP server's passive port range `[low, high]`, as pure-ftpd's `-p low:high` takes it. */
export const portRangeSchema = z
  .tuple([portSchema, portSchema])
  .refine(([low, high]) => low <= high, "must be [low, high] with low <= high");
export type PortRange = z.infer<typeof portRangeSchema>;

/**
 * A node's FTP session limit, pure-ftpd's `-c`. At least 2: the load balancer sends one fewer
 * session, keeping a slot for its own health check (see agent/src/render/haproxy/config.ts).
 */
export const ftpMaxSessionsSchema = z
  .number()
  .int("must be an integer")
  .min(2, "must be at least 2 (one session is kept for the load balancer's health check)")
  .max(100_000);

/**
 * How a node's pure-ftpd takes FTPS (explicit, AUTH TLS): `accept` FTPS or cleartext (`-Y 1`),
 * `require` FTPS for the login and every data connection (`-Y 3`), `off` cleartext only.
 */
export const ftpTlsSchema = z.enum(["off", "accept", "require"]);
export type FtpTls = z.infer<typeof ftpTlsSchema>;

export const uniqueList = <T extends z.ZodType<string>>(item: T, what: string) =>
  z.array(item).refine((values) => new Set(values).size === values.length, `must not list the same ${what} twice`);

/** Who manages an object on an agent: the stack and resource that created it. */
export const managedBySchema = z
  .string()
  .max(512)
  .regex(SAFE_TEXT, "must not contain control characters, quotes, '$', ';', '<', '>', braces or backslashes");

/** A 64-hex-digit SHA-256 digest, as the org digest is written. */
export const digestSchema = z.string().regex(/^[0-9a-f]{64}$/);
export const generationSchema = z.number().int().nonnegative();

/** A node's `--org-id-range`: where each org's Unix id (agent/src/domain/unix-ids.ts) comes from. */
export interface UnixIdRange {
  start: number;
  end: number;
}

const MAX_ID = 2 ** 31 - 1;

/** "START-END" → range, or why not. */
export function parseUnixIdRange(value: string): UnixIdRange | string {
  const match = /^(\d{1,10})-(\d{1,10})$/.exec(value);
  if (!match) return "must be START-END, e.g. 200000-999999";
  const range = { start: Number(match[1]), end: Number(match[2]) };
  return unixIdRangeProblem(range) ?? range;
}

/** Why a range cannot hold org ids, or undefined. */
export function unixIdRangeProblem(range: UnixIdRange): string | undefined {
  if (!Number.isInteger(range.start) || range.start < 1000) return "must start at 1000 or above (system accounts)";
  if (!Number.isInteger(range.end) || range.end < range.start) return "must end at or after its start";
  if (range.end > MAX_ID) return `must end below 2^31 (${MAX_ID + 1})`;
  return undefined;
}

/** An ACME HTTP-01 token (RFC 8555 §8.3: base64url, at least 128 bits): also a file name, so nothing else. */
export const acmeTokenSchema = z.string().regex(/^[A-Za-z0-9_-]{22,128}$/, "must be 22-128 base64url characters");
