/**
 * The CA certificates the provider and the operator commands trust for agents' HTTPS besides the
 * system's: a private CA (README, "HTTPS agents"), given as PEM in stack config
 * (`lbhosting:caCertificate`) or a file (`--ca-file`). Never through NODE_EXTRA_CA_CERTS, which
 * would trust it for every connection of the process, and never by turning verification off.
 */
import { X509Certificate } from "node:crypto";
import tls from "node:tls";

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The PEM certificates of `text`, each checked to parse; an Error naming `source` otherwise. */
export function caCertificates(text: string, source: string): string[] {
  const found = text.match(PEM_CERTIFICATE) ?? [];
  if (found.length === 0) throw new Error(`${source} holds no PEM certificate ("-----BEGIN CERTIFICATE-----")`);
  found.forEach((pem, i) => {
    try {
      new X509Certificate(pem);
    } catch (error) {
      throw new Error(`${source}: certificate ${i + 1} is not an X.509 certificate (${(error as Error).message})`);
    }
  });
  return found;
}

/** What an agent's TLS certificate may chain to: the system's CAs and `extra`. */
export const trustedCas = (extra: string[]): string[] => [...tls.rootCertificates, ...extra];

/** OpenSSL's codes for a certificate the client does not trust, or that names another host. */
const UNTRUSTED = new Set([
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "CERT_UNTRUSTED",
]);

/** What to do about a TLS failure `code`, or undefined when it is not one. */
export function tlsAdvice(code: string): string | undefined {
  if (UNTRUSTED.has(code)) {
    return `${code}: the agent's TLS certificate is not signed by a trusted CA (give its CA as stack config lbhosting:caCertificate, or --ca-file)`;
  }
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID") return `${code}: the agent's TLS certificate does not name this host`;
  if (code === "CERT_HAS_EXPIRED") return `${code}: the agent's TLS certificate has expired`;
  return undefined;
}
