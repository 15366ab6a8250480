/**
 * A test host in a network namespace of its own, joined to this machine's root namespace by a
 * veth pair with a link-local /30 that exists only on that pair, and made silent on demand by an
 * iptables DROP rule inside the namespace (the host then neither answers nor refuses: a dead
 * host as a client meets it). Needs root, `ip` (iproute2) and `iptables`.
 *
 *   const host = createNamespaceHost(this, { name: "lbh-i26-dead", hostAddress: "169.254.226.2", ... });
 *   spawn("ip", [...host.exec, "node", ...]);   // a process inside the namespace
 *   host.drop(); host.undrop(); host.remove();
 */
import { execFileSync } from "node:child_process";
import { requireTool } from "./requirements";

export interface NamespaceHostOptions {
  /** The namespace's name, unique to one test file. */
  name: string;
  /** The veth pair's two ends (at most 15 characters each): in the root namespace, then inside. */
  rootLink: string;
  hostLink: string;
  /** The /30's two addresses: the root namespace's end and the host's. */
  rootAddress: string;
  hostAddress: string;
}

export interface NamespaceHost {
  readonly address: string;
  /** Argv prefix that runs a command inside the namespace: `ip netns exec <name>`. */
  readonly exec: string[];
  /** Every packet coming in is dropped, silently. */
  drop(): void;
  undrop(): void;
  /** Packets the DROP rule has dropped so far (TCP SYNs and their retransmissions, mostly). */
  dropped(): number;
  /** Deletes the namespace (with its end of the pair and its rules) and the root end; safe to call twice. */
  remove(): void;
}

const run = (args: string[]): string =>
  execFileSync(args[0], args.slice(1), { encoding: "utf8", timeout: 10_000, stdio: ["ignore", "pipe", "pipe"] });
const quietly = (args: string[]): void => {
  try {
    run(args);
  } catch {
    // already gone
  }
};

const found = (command: string, args: string[]): true | undefined => {
  try {
    run([command, ...args]);
    return true;
  } catch {
    return undefined;
  }
};

export function createNamespaceHost(context: Mocha.Context, options: NamespaceHostOptions): NamespaceHost {
  requireTool(context, "root", () => (process.getuid?.() === 0 ? true : undefined), "run the tests as root");
  requireTool(context, "ip", () => found("ip", ["-V"]), "apt-get install -y iproute2");
  requireTool(context, "iptables", () => found("iptables", ["--version"]), "apt-get install -y iptables");
  const { name, rootLink, hostLink, rootAddress, hostAddress } = options;
  const exec = ["ip", "netns", "exec", name];
  const remove = () => {
    quietly(["ip", "netns", "del", name]);
    quietly(["ip", "link", "del", rootLink]);
  };
  remove(); // leftovers of an interrupted run
  try {
    run(["ip", "netns", "add", name]);
    run(["ip", "link", "add", rootLink, "type", "veth", "peer", "name", hostLink]);
    run(["ip", "link", "set", hostLink, "netns", name]);
    run(["ip", "addr", "add", `${rootAddress}/30`, "dev", rootLink]);
    run(["ip", "link", "set", rootLink, "up"]);
    run(["ip", "-n", name, "addr", "add", `${hostAddress}/30`, "dev", hostLink]);
    run(["ip", "-n", name, "link", "set", hostLink, "up"]);
    run(["ip", "-n", name, "link", "set", "lo", "up"]);
  } catch (error) {
    remove();
    throw error;
  }
  const rule = ["INPUT", "-j", "DROP"];
  return {
    address: hostAddress,
    exec,
    drop: () => void run([...exec, "iptables", "-A", ...rule]),
    undrop: () => void run([...exec, "iptables", "-D", ...rule]),
    dropped: () => {
      const listing = run([...exec, "iptables", "-L", "INPUT", "-v", "-x", "-n"]);
      const line = listing.split("\n").find((row) => /\sDROP\s/.test(row));
      return line === undefined ? 0 : Number(line.trim().split(/\s+/)[0]);
    },
    remove,
  };
}
