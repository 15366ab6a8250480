/**
 * A website's TLS certificate and key: their shape (which keeps them from injecting into nginx
 * configuration), the checks a new one must pass, and what may be shown of it (never the key).
 *
 * The shape is checked everywhere a record is read; the checks against the site (the key matches,
 * not expired, covers every domain, chain in order) only where a certificate enters: `check` and
 * the agent's request validation. A copy on a secondary is the primary's, accepted there.
 */
import { X509Certificate, createHash, createPrivateKey } from "node:crypto";
import { z } from "zod";

/**
 * PEM as the agent stores and renders it: blocks of base64 lines, "\n" line ends, one final "\n".
 * No quote, `$`, `;`, brace or backslash can occur, so it cannot inject into nginx's configuration,
 * and no header lines (an encrypted key's `Proc-Type`), which nginx could not load unattended.
 */
const PEM_TEXT =
  /^(?:-----BEGIN [A-Z0-9 ]{1,40}-----\n(?:[A-Za-z0-9+/=]{1,76}\n){1,2000}-----END [A-Z0-9 ]{1,40}-----\n)+$/;
const MAX_CERTIFICATE = 64 * 1024;
const MAX_KEY = 16 * 1024;
const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\n[^-]*-----END \1-----\n/g;

/** Windows line ends and surrounding blank lines removed, one final newline: the stored form. */
export const normalizePem = (text: string): string => `${text.replace(/\r\n/g, "\n").trim()}\n`;

const pemSchema = (what: string, max: number, label: RegExp) =>
  z
    .string()
    .max(max, `must be at most ${max / 1024} KiB`)
    .transform(normalizePem)
    .refine((pem) => PEM_TEXT.test(pem), `must be PEM (${what}): BEGIN/END lines around base64, no headers`)
    .refine((pem) => [...pem.matchAll(BLOCK)].every((block) => label.test(block[1])), `must hold only ${what}`);

export const certificatePemSchema = pemSchema("certificates, the site's first", MAX_CERTIFICATE, /^CERTIFICATE$/);
export const privateKeyPemSchema = pemSchema("one unencrypted private key", MAX_KEY, /^(?:[A-Z]+ )?PRIVATE KEY$/);

/** The certificates of a PEM chain, in order. */
const certificatesOf = (pem: string): X509Certificate[] =>
  [...pem.matchAll(BLOCK)].map((block) => new X509Certificate(block[0]));

/** A problem with the TLS material, on the field it is about; never quoting the material. */
export interface TlsProblem {
  path: "certificate" | "privateKey";
  message: string;
}

/**
 * What is wrong with a certificate and key for a site answering `domains`, at `now`: none when
 * nginx can serve it to clients of every domain. Both PEMs must already have the stored shape.
 */
export function tlsProblems(certificate: string, privateKey: string, domains: string[], now: Date): TlsProblem[] {
  let chain: X509Certificate[];
  try {
    chain = certificatesOf(certificate);
  } catch {
    return [{ path: "certificate", message: "is not a readable X.509 certificate" }];
  }
  const [leaf] = chain;
  if (leaf === undefined) return [{ path: "certificate", message: "holds no certificate" }];
  const problems: TlsProblem[] = [];
  try {
    const key = createPrivateKey({ key: privateKey, format: "pem" });
    if (!leaf.checkPrivateKey(key)) {
      problems.push({ path: "privateKey", message: "does not match the certificate's public key" });
    }
  } catch {
    problems.push({ path: "privateKey", message: "is not a readable unencrypted private key" });
  }
  const notAfter = new Date(leaf.validTo);
  if (notAfter <= now) problems.push({ path: "certificate", message: `expired on ${notAfter.toISOString()}` });
  const uncovered = domains.filter((domain) => leaf.checkHost(domain, { subject: "never" }) === undefined);
  if (uncovered.length > 0) {
    problems.push({ path: "certificate", message: `does not cover ${uncovered.join(", ")} (no matching DNS name)` });
  }
  chain.slice(1).forEach((issuer, i) => {
    const issued = chain[i];
    if (!issued.checkIssued(issuer) || !issued.verify(issuer.publicKey)) {
      problems.push({
        path: "certificate",
        message: `chain out of order: certificate ${i + 2} did not issue certificate ${i + 1} (give the site's first, then each issuer)`,
      });
    }
  });
  return problems;
}

/** What may be shown of a site's certificate: answers, status and outputs carry this, never the PEM. */
export const certificateSummarySchema = z.object({
  /** SHA-256 of the site's certificate (DER), lowercase hex. */
  fingerprint: z.string().regex(/^[0-9a-f]{64}$/),
  /** Its DNS names. */
  names: z.array(z.string()),
  /** When it expires (ISO 8601). */
  notAfter: z.string(),
});
export type CertificateSummary = z.infer<typeof certificateSummarySchema>;

export function certificateSummary(certificate: string): CertificateSummary {
  const [leaf] = certificatesOf(certificate);
  return {
    fingerprint: createHash("sha256").update(leaf.raw).digest("hex"),
    names: (leaf.subjectAltName ?? "")
      .split(", ")
      .filter((name) => name.startsWith("DNS:"))
      .map((name) => name.slice(4)),
    notAfter: new Date(leaf.validTo).toISOString(),
  };
}
