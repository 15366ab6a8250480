/** OrgUser: an organization user on the primary; secondaries get it by sync, never directly. */
import { createHash } from "node:crypto";
import type * as pulumi from "@pulumi/pulumi";
import { verifyPassword } from "../common/password";
import { orgUserDefaults, orgUserInputsSchema, withDefaults, type OrgUserInputs } from "../sdk/inputs";
import { type UserBody, type UserRecord } from "../wire";
import { clientFor, credentials } from "./context";
import { differs, inputsOf, resourceName } from "./inputs";
import {
  assertSynced,
  checkMember,
  deleteAndSync,
  ownerOnCreate,
  readMember,
  refusingTakeOver,
  writeAndSync,
} from "./members";

/** The outputs: the inputs, and a fingerprint of the hash the primary stored for the password. */
export interface OrgUserOutputs extends OrgUserInputs {
  passwordFingerprint?: string;
}

const idOf = (inputs: OrgUserInputs) => `${inputs.organization.name}/${inputs.username}`;

/**
 * A non-reversible fingerprint of the stored crypt hash (itself salted), kept in plain state: a
 * refresh compares it with the primary's hash instead of re-hashing the password (a crypt per
 * user), and a password changed behind Pulumi's back changes the hash, so it shows.
 */
const passwordFingerprint = (passwordHash: string): string =>
  createHash("sha256").update(`lbhosting password hash\n${passwordHash}`).digest("hex").slice(0, 32);

/** The user's settings as the agent holds them: each one the program left out at the agent's default. */
const settingsOf = (inputs: OrgUserInputs) => {
  const { displayName, email, enabled, access, managedBy } = withDefaults(inputs, orgUserDefaults);
  return { displayName, email, enabled, access, managedBy };
};

const bodyOf = (inputs: OrgUserInputs): UserBody => ({ password: inputs.password, ...settingsOf(inputs) });

/** Writes the user on the primary (a create: only over no user or its own, see ownerOnCreate), then syncs. */
async function apply(inputs: OrgUserInputs, creating = false): Promise<OrgUserOutputs> {
  const { name, primary } = inputs.organization;
  const owner = creating ? ownerOnCreate(inputs) : undefined;
  let stored: UserRecord | undefined;
  const report = await writeAndSync(inputs.organization, () =>
    refusingTakeOver(`user ${inputs.username}`, inputs.organization, async () => {
      const { record, answer } = await clientFor(primary).putUser(name, inputs.username, bodyOf(inputs), false, owner);
      stored = record;
      return answer;
    }),
  );
  const outs = { ...inputs, passwordFingerprint: passwordFingerprint((stored as UserRecord).passwordHash) };
  assertSynced(report, idOf(inputs), outs);
  return outs;
}

/** The fields that differ between the state (olds) and the program (news), defaults applied. */
function changedFields(olds: OrgUserOutputs, news: OrgUserInputs): string[] {
  const [before, after] = [settingsOf(olds), settingsOf(news)];
  const fields: Array<[string, boolean]> = [
    ["primary", differs(olds.organization?.primary, news.organization?.primary)],
    ["password", differs(olds.password, news.password)],
    ["displayName", differs(before.displayName, after.displayName)],
    ["email", differs(before.email, after.email)],
    ["enabled", differs(before.enabled, after.enabled)],
    ["access", differs(before.access, after.access, true)],
    ["managedBy", differs(before.managedBy, after.managedBy)],
  ];
  return fields.filter(([, changed]) => changed).map(([field]) => field);
}

export const userProvider: pulumi.dynamic.ResourceProvider = {
  async configure(request) {
    credentials.configure(request.config);
  },

  async check(_olds, news) {
    return checkMember(orgUserInputsSchema, news);
  },

  async diff(_id, olds: OrgUserOutputs, news: OrgUserInputs) {
    const replaces = [
      ...(differs(olds.organization?.name, news.organization?.name) ? ["organization"] : []),
      ...(differs(olds.username, news.username) ? ["username"] : []),
    ];
    const changed = changedFields(olds, news);
    // Pulumi shows no diff of a secret input of a dynamic resource (pulumi/pulumi#16687): say which
    // user's password changes, never the password. The provider's output reaches the CLI's.
    if (changed.includes("password") && replaces.length === 0) {
      console.log(`OrgUser ${resourceName(news) ?? news.username}: password changes`);
    }
    return { changes: replaces.length > 0 || changed.length > 0, replaces, deleteBeforeReplace: true };
  },

  async create(inputs: OrgUserInputs) {
    return { id: idOf(inputs), outs: await apply(inputs, true) };
  },

  async update(_id, _olds: OrgUserOutputs, news: OrgUserInputs) {
    return { outs: await apply(news) };
  },

  /**
   * `pulumi refresh`: the state as the program would write it. Every stored input stays as it was
   * (a default the program did not set stays unset) unless the primary holds something else for
   * it — that is drift, and only then does the input change.
   */
  async read(id, props: OrgUserOutputs) {
    const user = await readMember(props.organization, (org) => org.users.find((u) => u.username === props.username));
    if (!user) return { id: "", props: {} };
    const inputs = inputsOf(orgUserInputsSchema, props) as OrgUserInputs;
    const fingerprint = passwordFingerprint(user.passwordHash);
    // State from before fingerprints: verify once (a crypt), then keep the fingerprint.
    const known = props.passwordFingerprint ?? (verifyPassword(props.password, user.passwordHash) ? fingerprint : "");
    // A password changed behind Pulumi's back: an empty password makes the next `up` set it again.
    if (known !== fingerprint) inputs.password = "";
    const stored = settingsOf(props);
    if (stored.enabled !== user.enabled) inputs.enabled = user.enabled;
    if (differs(stored.access, user.access, true)) inputs.access = user.access;
    if (stored.displayName !== user.displayName) inputs.displayName = user.displayName;
    if (stored.email !== user.email) inputs.email = user.email;
    if (stored.managedBy !== user.managedBy) inputs.managedBy = user.managedBy;
    const outputs: OrgUserOutputs = { ...inputs, ...(known ? { passwordFingerprint: known } : {}) };
    return { id, props: outputs, inputs };
  },

  async delete(_id, props: OrgUserInputs) {
    const { name, primary } = props.organization;
    await deleteAndSync(props.organization, () => clientFor(primary).deleteUser(name, props.username));
  },
};
