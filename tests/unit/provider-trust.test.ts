/**
 * What the provider and the commands accept as the agents' CA (stack config lbhosting:caCertificate,
 * --ca-file), and how a TLS failure is explained.
 */
import { expect } from "chai";
import { caCertificates, tlsAdvice, trustedCas } from "../../provider/trust";

/** A self-signed test CA (openssl, P-256, valid until 2126): public, and trusted by nothing. */
const CA = [
  "-----BEGIN CERTIFICATE-----",
  "MIIBqTCCAU+gAwIBAgIUUs4cRfEQ8JL5aq7xcxgXUJhs6eYwCgYIKoZIzj0EAwIw",
  "ITEfMB0GA1UEAwwWbGJob3N0aW5nIHVuaXQtdGVzdCBDQTAgFw0yNjEyMDcyMzQx",
  "NTVaGA8yMTI2MTExMzIzNDE1NVowITEfMB0GA1UEAwwWbGJob3N0aW5nIHVuaXQt",
  "dGVzdCBDQTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABCeenvCu75uOTwBG8TmJ",
  "pO1hvQdZDLX6b9ZH/MOzWVksCBk/YsNJIdvaJwObR9EpArLVpvwXXkHQFUn4iVR4",
  "OsqjYzBhMB0GA1UdDgQWBBSY7yDK9NsLZZ30VKbNIVR5RPXy0DAfBgNVHSMEGDAW",
  "gBSY7yDK9NsLZZ30VKbNIVR5RPXy0DAPBgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB",
  "/wQEAwICBDAKBggqhkjOPQQDAgNIADBFAiArM/ti2+LEIC+D+QMj8f/vHknByqPl",
  "T/KE3kEKtwB+vwIhALd3wuRkCpXbKiFqwac8ODtW1dR+IYhiVdIt699f9Gb0",
  "-----END CERTIFICATE-----",
].join("\n");

describe("provider trust of the agents' CA", function () {
  it("takes one certificate or a bundle, each checked to parse, and adds them to the system's CAs", function () {
    expect(caCertificates(CA, "lbhosting:caCertificate")).to.deep.equal([CA]);
    expect(caCertificates(`# ours\n${CA}\n\n${CA}\n`, "x")).to.have.length(2);
    const trusted = trustedCas([CA]);
    expect(trusted.at(-1)).to.equal(CA);
    expect(trusted.length).to.be.greaterThan(1);
  });

  it("refuses text without a certificate, or a damaged one, naming where it came from and echoing nothing", function () {
    expect(() => caCertificates("-----BEGIN PRIVATE KEY-----\nsecret\n-----END PRIVATE KEY-----\n", "--ca-file ca.pem"))
      .to.throw('--ca-file ca.pem holds no PEM certificate ("-----BEGIN CERTIFICATE-----")')
      .with.property("message")
      .that.does.not.include("secret");
    const damaged = CA.replace(/\n[A-Za-z0-9+/]{20}/, "\nAAAAAAAAAAAAAAAAAAAA");
    expect(() => caCertificates(`${CA}\n${damaged}`, "lbhosting:caCertificate")).to.throw(
      "lbhosting:caCertificate: certificate 2 is not an X.509 certificate",
    );
  });

  it("says what to do about an untrusted certificate, another host's, an expired one, and nothing about other errors", function () {
    expect(tlsAdvice("SELF_SIGNED_CERT_IN_CHAIN")).to.include("not signed by a trusted CA").and.include("--ca-file");
    expect(tlsAdvice("ERR_TLS_CERT_ALTNAME_INVALID")).to.include("does not name this host");
    expect(tlsAdvice("CERT_HAS_EXPIRED")).to.include("expired");
    expect(tlsAdvice("ECONNREFUSED")).to.equal(undefined);
  });
});
