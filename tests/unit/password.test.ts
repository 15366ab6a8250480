/**
 * crypt(3) SHA-512: the published test vectors of the SHA-crypt specification, and agreement with
 * OpenSSL's independent implementation (`openssl passwd -6`), which is what pure-ftpd's crypt does.
 */
import { expect } from "chai";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import { randomBytes } from "node:crypto";
import { cryptSha512, hashPassword, verifyPassword } from "../../common/password";
import { loadNativeCrypt } from "../../agent/src/workers/native-crypt";
import { PasswordPool } from "../../agent/src/workers/password-pool";
import { passwordHashSchema } from "../../wire";

// From Ulrich Drepper's "Unix crypt using SHA-256 and SHA-512" specification.
const VECTORS: Array<[string, string, string]> = [
  [
    "$6$saltstring",
    "Hello world!",
    "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1",
  ],
  [
    "$6$rounds=10000$saltstringsaltstring",
    "Hello world!",
    "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.",
  ],
  [
    "$6$rounds=5000$toolongsaltstring",
    "This is just a test",
    "$6$rounds=5000$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQzQ3glMhwllF7oGDZxUhx1yxdYcz/e1JSbq3y6JMxxl8audkUEm0",
  ],
  [
    "$6$rounds=1400$anotherlongsaltstring",
    "a very much longer text to encrypt.  This one even stretches over morethan one line.",
    "$6$rounds=1400$anotherlongsalts$POfYwTEok97VWcjxIiSOjiykti.o/pQs.wPvMxQ6Fm7I6IoYN3CmLs66x9t0oSwbtEW7o7UmJEiDwGqd8p4ur1",
  ],
  [
    "$6$rounds=10$roundstoolow",
    "the minimum number is still observed",
    "$6$rounds=1000$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF4ZEQpyUNGc0dqbpBYYBaHHrsX.",
  ],
];

describe("password hashing (crypt SHA-512)", function () {
  for (const [setting, password, expected] of VECTORS) {
    it(`matches the specification for ${setting}`, function () {
      expect(cryptSha512(password, setting)).to.equal(expected);
    });
  }

  for (const password of ["pw123456", "correct horse battery staple", "ünïcødé-pässwörd", "x".repeat(128)]) {
    it(`agrees with openssl passwd -6 for a ${password.length}-character password`, function () {
      const reference = execFileSync("openssl", ["passwd", "-6", "-salt", "Ab3./xyz", password], { encoding: "utf8" });
      expect(cryptSha512(password, "$6$Ab3./xyz")).to.equal(reference.trim());
      expect(verifyPassword(password, reference.trim())).to.equal(true);
    });
  }

  it("hashes with a fresh 16-character salt in the form the schemas accept", function () {
    const first = hashPassword("a-fine-password");
    const second = hashPassword("a-fine-password");
    expect(first).to.not.equal(second);
    expect(passwordHashSchema.safeParse(first).success).to.equal(true);
    expect(first.split("$")[2]).to.have.length(16);
    expect(verifyPassword("a-fine-password", first)).to.equal(true);
    expect(verifyPassword("a-fine-passworD", first)).to.equal(false);
  });

  it("does not verify against malformed hashes", function () {
    expect(verifyPassword("x", "")).to.equal(false);
    expect(verifyPassword("x", "$1$abc$def")).to.equal(false);
    expect(verifyPassword("x", "$6$salt$short")).to.equal(false);
  });

  it("accepts only hashes the system's crypt accepts with bounded cost (rounds 1000-100000, no leading zero)", function () {
    const digest = "a".repeat(86);
    for (const rounds of ["999", "0999", "01000", "100001", "999999999"]) {
      const hash = `$6$rounds=${rounds}$salt$${digest}`;
      const parsed = passwordHashSchema.safeParse(hash);
      expect(parsed.success, hash).to.equal(false);
      expect(JSON.stringify(parsed.error?.issues), "the refusal never echoes the hash").to.not.include(digest);
      expect(verifyPassword("x", hash), hash).to.equal(false);
    }
    for (const rounds of ["1000", "5000", "99999", "100000"]) {
      expect(passwordHashSchema.safeParse(`$6$rounds=${rounds}$salt$${digest}`).success).to.equal(true);
    }
  });
});

describe("the agent's native crypt(3) binding", function () {
  const native = loadNativeCrypt();

  it("is built on Linux (elsewhere the agent hashes with sdk/password and says why)", function () {
    if (process.platform === "linux")
      expect(native, "npm install builds agent/native/crypt.c").to.have.property("crypt");
    else expect(native).to.have.property("unavailable").that.is.a("string");
  });

  it("gives exactly sdk/password's hashes: the specification's vectors and random passwords", function () {
    if (!("crypt" in native)) return; // off Linux: the test above checked the fallback
    for (const [setting, password, expected] of VECTORS.filter(([setting]) => !setting.includes("rounds=10$"))) {
      expect(native.crypt(password, setting)).to.equal(expected);
    }
    for (let i = 0; i < 50; i++) {
      const password = randomBytes(8 + (i % 40)).toString("base64") + "äß€😀".slice(0, i % 5);
      const hash = hashPassword(password, native.crypt);
      expect(hash).to.equal(cryptSha512(password, hash));
      expect(verifyPassword(password, hash, native.crypt)).to.equal(true);
      expect(verifyPassword(password + "x", hash, native.crypt)).to.equal(false);
    }
  });

  it("refuses a passphrase it could only truncate, and never echoes it", function () {
    if (!("crypt" in native)) return;
    for (const password of ["secret\u0000tail", "s".repeat(512)]) {
      // `throw` makes the thrown error the target of what follows: one call, all three checks.
      expect(() => native.crypt(password, "$6$salt"))
        .to.throw(/passphrase must be a string/)
        .with.property("message")
        .that.does.not.match(/secret|sss/);
    }
  });
});

describe("agent password pool (worker threads)", function () {
  it("hashes and verifies off the event loop, with the same crypt as sdk/password", async function () {
    const pool = new PasswordPool(2);
    try {
      const hashes = await Promise.all(["first-password", "second-password"].map((password) => pool.hash(password)));
      expect(verifyPassword("first-password", hashes[0])).to.equal(true);
      expect(verifyPassword("second-password", hashes[1])).to.equal(true);
      expect(await pool.verify("first-password", hashes[0])).to.equal(true);
      expect(await pool.verify("first-password", hashes[1])).to.equal(false);
      expect(await pool.verify("x", "not a hash")).to.equal(false);
    } finally {
      await pool.close();
    }
  });

  it("hashes in threads of lower CPU priority than the event loop (Linux: nice is per thread)", async function () {
    const niceOf = (task: string): number => {
      const stat = fs.readFileSync(`/proc/self/task/${task}/stat`, "utf8");
      return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]);
    };
    const linux = process.platform === "linux";
    // Elsewhere the nice value belongs to the whole process: the agent leaves it alone.
    const mainNice = linux ? niceOf(String(process.pid)) : os.getPriority();
    const pool = new PasswordPool(1);
    try {
      await pool.hash("a-password-to-hash");
      if (!linux) {
        expect(os.getPriority(), "the agent process's priority").to.equal(mainNice);
        return;
      }
      const others = fs.readdirSync("/proc/self/task").filter((task) => task !== String(process.pid));
      expect(others.map(niceOf), "a hashing thread").to.include(Math.min(mainNice + 10, 19));
      expect(niceOf(String(process.pid)), "the event loop's thread").to.equal(mainNice);
    } finally {
      await pool.close();
    }
  });
});
