/** Worker-thread side of the password pool (password-pool.ts): crypt SHA-512 off the event loop. */
import os from "node:os";
import { cryptSha512, hashPassword, verifyPassword } from "../../../common/password";
import { loadNativeCrypt } from "./native-crypt";

/**
 * Hashing threads run at a lower CPU priority than the agent's event loop, nginx and pure-ftpd: a
 * burst of plaintext passwords (~2 ms of CPU each with the system's crypt) then takes only CPU the
 * node would leave idle, and serving sites and answering requests keep theirs. On Linux the nice
 * value belongs to the calling thread, so this lowers only this worker (elsewhere it would lower
 * the whole agent).
 */
const HASHING_NICE = 10;
if (process.platform === "linux") os.setPriority(Math.min(19, os.getPriority() + HASHING_NICE));

const native = loadNativeCrypt();
const crypt = "crypt" in native ? native.crypt : cryptSha512;

export interface PasswordTask {
  password: string;
  /** Verify against this hash; absent: make a new salted hash. */
  storedHash?: string;
}

/** A new hash, or whether `password` matches `storedHash`. */
export default function run(task: PasswordTask): string | boolean {
  return task.storedHash === undefined
    ? hashPassword(task.password, crypt)
    : verifyPassword(task.password, task.storedHash, crypt);
}
