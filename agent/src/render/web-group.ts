/** The group nginx's workers run as on Debian (`www-data`), read from the group file on start. */
import fs from "node:fs";

const WEB_GROUP = "www-data";

/** www-data's gid in `groupFile`, or undefined when there is none (then `--web-gid` is required). */
export function webGroupId(groupFile = "/etc/group"): number | undefined {
  let text: string;
  try {
    text = fs.readFileSync(groupFile, "utf8"); // on start only
  } catch {
    return undefined;
  }
  for (const line of text.split("\n")) {
    const [name, , gid] = line.split(":");
    if (name === WEB_GROUP && /^\d+$/.test(gid ?? "")) return Number(gid);
  }
  return undefined;
}
