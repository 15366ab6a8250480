/** Worker-thread side of the password pool (password-pool.ts): crypt SHA-512 off the event loop. */
import { hashPassword, verifyPassword } from "../sdk/password";

export interface PasswordTask {
  password: string;
  /** Verify against this hash; absent: make a new salted hash. */
  storedHash?: string;
}

/** A new hash, or whether `password` matches `storedHash`. */
export default function run(task: PasswordTask): string | boolean {
  return task.storedHash === undefined ? hashPassword(task.password) : verifyPassword(task.password, task.storedHash);
}
