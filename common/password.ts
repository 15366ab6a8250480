/**
 * Password hashing in crypt(3) SHA-512 form ("$6$salt$hash", Ulrich Drepper's SHA-crypt), because
 * that is what pure-ftpd (through the system crypt) verifies for virtual users. Implemented here on
 * node:crypto so that it runs anywhere without a native add-on: the provider uses it (to verify a
 * password only for state written before fingerprints existed), and so does the agent where its
 * binding to the system's crypt (agent/native-crypt.ts, ~7 times cheaper) could not be built.
 *
 * CPU-heavy (~8–13 ms for the default 5000 rounds): never call it on a server's event loop.
 */
import * as crypto from "node:crypto";
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { CRYPT_SHA512_HASH } from "../wire/fields";

const ALPHABET = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const DEFAULT_ROUNDS = 5000;
const MIN_ROUNDS = 1000;
const MAX_ROUNDS = 999_999_999;
const SALT_CHARS = 16;

function sha512(...parts: Buffer[]): Buffer {
  const hash = createHash("sha512");
  for (const part of parts) hash.update(part);
  return hash.digest();
}

/** One-shot SHA-512 (Node >= 20.12 has crypto.hash, about twice as fast as a Hash object per round). */
const oneShot = (crypto as { hash?: (algorithm: string, data: Buffer, encoding: "buffer") => Buffer }).hash;
const sha512Of = (data: Buffer): Buffer =>
  oneShot ? oneShot("sha512", data, "buffer") : createHash("sha512").update(data).digest();

/** `length` bytes made of `block` repeated (the spec's "P'"/"S'" sequences). */
function repeatTo(block: Buffer, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let offset = 0; offset < length; offset += block.length) block.copy(out, offset, 0, length - offset);
  return out;
}

/** The spec's byte order for turning the 64-byte result into 86 crypt-base64 characters. */
function encode(digest: Buffer): string {
  let out = "";
  const put = (b2: number, b1: number, b0: number, chars: number) => {
    let word = (b2 << 16) | (b1 << 8) | b0;
    for (let i = 0; i < chars; i++) {
      out += ALPHABET[word & 0x3f];
      word >>>= 6;
    }
  };
  for (let i = 0; i < 21; i++) {
    const group = [i, i + 21, i + 42];
    const shift = i % 3;
    const [a, b, c] = [...group.slice(shift), ...group.slice(0, shift)];
    put(digest[a], digest[b], digest[c], 4);
  }
  put(0, 0, digest[63], 2);
  return out;
}

/** SHA-crypt core: the 64-byte digest for a password, salt and round count. */
function shaCrypt(password: Buffer, salt: Buffer, rounds: number): Buffer {
  const alternate = sha512(password, salt, password);
  const initial = createHash("sha512").update(password).update(salt);
  initial.update(repeatTo(alternate, password.length));
  for (let bits = password.length; bits > 0; bits >>= 1) initial.update(bits & 1 ? alternate : password);
  let current: Buffer = initial.digest();

  const passwordBlock = sha512(...Array<Buffer>(password.length).fill(password));
  const passwordSeq = repeatTo(passwordBlock, password.length);
  const saltBlock = sha512(...Array<Buffer>(16 + current[0]).fill(salt));
  const saltSeq = repeatTo(saltBlock, salt.length);

  // Each round hashes a concatenation of these parts: build it in one reused buffer.
  const input = Buffer.alloc(2 * Math.max(64, passwordSeq.length) + passwordSeq.length + saltSeq.length);
  for (let round = 0; round < rounds; round++) {
    let length = (round & 1 ? passwordSeq : current).copy(input, 0);
    if (round % 3) length += saltSeq.copy(input, length);
    if (round % 7) length += passwordSeq.copy(input, length);
    length += (round & 1 ? current : passwordSeq).copy(input, length);
    current = sha512Of(input.subarray(0, length));
  }
  return current;
}

/**
 * crypt(3) for a "$6$" setting string: `$6$salt` or `$6$rounds=N$salt` (anything after the salt is
 * ignored, so a full hash works as its own setting).
 */
export function cryptSha512(password: string, setting: string): string {
  const match = /^\$6\$(?:rounds=(\d+)\$)?([^$]*)/.exec(setting);
  if (!match) throw new Error("not a SHA-512 crypt setting");
  const requested = match[1] === undefined ? undefined : Number(match[1]);
  const rounds = requested === undefined ? DEFAULT_ROUNDS : Math.min(MAX_ROUNDS, Math.max(MIN_ROUNDS, requested));
  const salt = match[2].slice(0, SALT_CHARS);
  const digest = shaCrypt(Buffer.from(password, "utf8"), Buffer.from(salt, "utf8"), rounds);
  const prefix = requested === undefined ? "$6$" : `$6$rounds=${rounds}$`;
  return `${prefix}${salt}$${encode(digest)}`;
}

/** crypt(3) for "$6$" settings: `cryptSha512`, or the system's (the agent's workers: agent/native-crypt.ts). */
export type Crypt = (password: string, setting: string) => string;

/** A new salted hash with a random 16-character salt and the default 5000 rounds. */
export function hashPassword(password: string, crypt: Crypt = cryptSha512): string {
  const bytes = randomBytes(SALT_CHARS);
  let salt = "";
  for (const byte of bytes) salt += ALPHABET[byte & 0x3f];
  return crypt(password, `$6$${salt}`);
}

/** Whether `password` matches a stored "$6$" hash; constant-time on the final comparison. */
export function verifyPassword(password: string, storedHash: string, crypt: Crypt = cryptSha512): boolean {
  if (!CRYPT_SHA512_HASH.test(storedHash)) return false;
  const candidate = Buffer.from(crypt(password, storedHash));
  const stored = Buffer.from(storedHash);
  return candidate.length === stored.length && timingSafeEqual(candidate, stored);
}
