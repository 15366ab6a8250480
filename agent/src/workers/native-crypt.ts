/**
 * The system's crypt(3), through the small N-API binding in native/crypt.c that `npm install`
 * builds (see the package's install script). The binding is optional: where it could not be built
 * (no C compiler or libcrypt headers on the node) the agent hashes with sdk/password.ts instead,
 * the same hashes at ~7 times the CPU, and says so when it starts.
 */
import path from "node:path";
import type { Crypt } from "../../../common/password";

type NativeCrypt = { crypt: Crypt } | { unavailable: string };

/** Load the binding built beside this package's package.json (also when run from the repository's dist). */
export function loadNativeCrypt(): NativeCrypt {
  try {
    const root = path.dirname(require.resolve("lbhosting-agent/package.json"));
    const binding = require(path.join(root, "build", "Release", "crypt.node")) as { crypt: Crypt };
    return { crypt: binding.crypt };
  } catch (error) {
    return { unavailable: (error as Error).message };
  }
}
