/**
 * Certificates for websites with `tls.acme`, from an ACME server (RFC 8555) through `acme-client`.
 * The HTTP-01 answer is written by each serving node's agent into the site's document root
 * (agent/src/render/acme-challenge.ts), so the ACME server's request is answered whichever node
 * the load balancer picks. Every request has a timeout and every wait a bounded number of polls;
 * a problem names the domain and what the ACME server said, never any key.
 */
import { X509Certificate } from "node:crypto";
import https from "node:https";
import tls from "node:tls";
import * as acme from "acme-client";

export const LETS_ENCRYPT_DIRECTORY = acme.directory.letsencrypt.production;
export const DEFAULT_RENEW_BEFORE_DAYS = 30;

/** Each ACME request's timeout; the status polls (challenge, order) are bounded by BACKOFF. */
const REQUEST_TIMEOUT_MS = 30_000;
const BACKOFF = { backoffAttempts: 12, backoffMin: 1000, backoffMax: 10_000 };
const DAY_MS = 86_400_000;

// acme-client's own retry waits for a 429's Retry-After (hours at Let's Encrypt): a rate limit
// fails the `up` at once, naming it, instead.
acme.axios.defaults.timeout = REQUEST_TIMEOUT_MS;
(acme.axios.defaults as unknown as { acmeSettings: { retryMaxAttempts: number } }).acmeSettings.retryMaxAttempts = 0;

/**
 * The CAs trusted for a private ACME directory's HTTPS (Pebble's), from `lbhosting:acmeCaCertificate`,
 * on top of the system's; for these requests only, never through NODE_EXTRA_CA_CERTS.
 */
export function trustAcmeCas(cas: string[] | undefined): void {
  acme.axios.defaults.httpsAgent = cas ? new https.Agent({ ca: [...tls.rootCertificates, ...cas] }) : undefined;
}

/** What the outputs keep (a secret) so that a later `up` reuses the certificate instead of ordering another. */
export interface AcmeIssued {
  /** The ACME account's key (PEM), made for this website on its first order. */
  accountKey: string;
  certificate: string;
  privateKey: string;
}

export interface AcmeOrder {
  /** The resource, for messages. */
  site: string;
  domains: string[];
  directory: string;
  email: string;
  accountKey?: string;
  /** Serves `keyAuthorization` at `/.well-known/acme-challenge/<token>` on every serving node. */
  answer(token: string, keyAuthorization: string): Promise<void>;
  /** Removes it again (best effort: a leftover answer is harmless). */
  withdraw(token: string): Promise<void>;
}

/** Whole days from `now` to the certificate's notAfter (negative once expired). */
const daysLeft = (certificate: string, now = new Date()): number =>
  Math.floor((Date.parse(new X509Certificate(certificate).validTo) - now.getTime()) / DAY_MS);

/**
 * Why `issued` cannot serve `domains` any more, or undefined when it can: no usable certificate
 * (never issued, its key dropped by a refresh that found another on the primary), a domain it does
 * not cover, or within `renewBefore` days of its expiry.
 */
export function reissueReason(
  issued: Partial<AcmeIssued> | undefined,
  domains: string[],
  renewBefore: number,
  now = new Date(),
): string | undefined {
  if (!issued?.certificate || !issued.privateKey) return "certificate issued by ACME";
  const names = new X509Certificate(issued.certificate).subjectAltName ?? "";
  const covered = new Set(names.split(", ").map((name) => name.replace(/^DNS:/, "")));
  if (domains.some((domain) => !covered.has(domain))) return "certificate reissued: the domains changed";
  const days = daysLeft(issued.certificate, now);
  return days < renewBefore ? `certificate renews: expires in ${days} days` : undefined;
}

/** Orders a certificate for the domains, answers HTTP-01 for each, finalizes with a new key. */
export async function issueCertificate(order: AcmeOrder): Promise<AcmeIssued> {
  const accountKey = order.accountKey ?? (await acme.crypto.createPrivateRsaKey()).toString();
  const client = new acme.Client({ directoryUrl: order.directory, accountKey, ...BACKOFF });
  const failure = (domain: string | undefined, error: unknown) =>
    new Error(
      `WebService ${order.site}: ACME ${order.directory}${domain ? ` for ${domain}` : ""}: ${(error as Error).message}`,
    );
  const step = async <T>(domain: string | undefined, call: () => Promise<T>): Promise<T> => {
    try {
      return await call();
    } catch (error) {
      throw failure(domain, error);
    }
  };
  const all = order.domains.join(", ");
  await step(all, () => client.createAccount({ termsOfServiceAgreed: true, contact: [`mailto:${order.email}`] }));
  const placed = await step(all, () =>
    client.createOrder({ identifiers: order.domains.map((value) => ({ type: "dns", value })) }),
  );
  const authorizations = await step(all, () => client.getAuthorizations(placed));
  const answered: string[] = [];
  try {
    for (const authorization of authorizations) {
      const domain = authorization.identifier.value;
      if (authorization.status === "valid") continue;
      const challenge = authorization.challenges.find((offered) => offered.type === "http-01");
      if (!challenge) throw failure(domain, new Error("the ACME server offers no http-01 challenge"));
      const keyAuthorization = await client.getChallengeKeyAuthorization(challenge);
      await order.answer(challenge.token, keyAuthorization);
      answered.push(challenge.token);
      await step(domain, async () => {
        await client.completeChallenge(challenge);
        await client.waitForValidStatus(challenge);
      });
    }
    const [privateKey, csr] = await acme.crypto.createCsr({ commonName: order.domains[0], altNames: order.domains });
    const finalized = await step(all, () => client.finalizeOrder(placed, csr));
    const certificate = await step(all, () => client.getCertificate(finalized));
    return { accountKey, certificate: certificate.trim() + "\n", privateKey: privateKey.toString() };
  } finally {
    await Promise.all(answered.map((token) => order.withdraw(token).catch(() => undefined)));
  }
}
