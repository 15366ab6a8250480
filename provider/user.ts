/** OrgUser: an organization user on the primary; secondaries get it by sync, never directly. */
import type * as pulumi from "@pulumi/pulumi";
import { verifyPassword } from "../sdk/password";
import { orgUserInputsSchema, type OrgUserInputs, type UserBody } from "../sdk/schemas";
import { clientFor, configureCredentials } from "./credentials";
import { differs } from "./inputs";
import { assertMayTakeOver, checkMember, deleteAndSync, findOnPrimary, syncAfterChange } from "./members";

const idOf = (inputs: OrgUserInputs) => `${inputs.organization.name}/${inputs.username}`;

const bodyOf = (inputs: OrgUserInputs): UserBody => ({
  password: inputs.password,
  displayName: inputs.displayName ?? "",
  email: inputs.email ?? "",
  enabled: inputs.enabled ?? true,
  access: inputs.access ?? [],
  managedBy: inputs.managedBy ?? "",
});

async function apply(inputs: OrgUserInputs) {
  const { name, primary } = inputs.organization;
  await clientFor(primary).putUser(name, inputs.username, bodyOf(inputs));
  await syncAfterChange(idOf(inputs), inputs.organization, { ...inputs });
  return { ...inputs };
}

export const userProvider: pulumi.dynamic.ResourceProvider = {
  async configure(request) {
    configureCredentials(request.config);
  },

  async check(_olds, news) {
    return checkMember(orgUserInputsSchema, news);
  },

  async diff(_id, olds: OrgUserInputs, news: OrgUserInputs) {
    const replaces = [
      ...(differs(olds.organization?.name, news.organization?.name) ? ["organization"] : []),
      ...(differs(olds.username, news.username) ? ["username"] : []),
    ];
    const changed =
      differs(olds.organization?.primary, news.organization?.primary) ||
      differs(olds.password, news.password) ||
      differs(olds.displayName ?? "", news.displayName ?? "") ||
      differs(olds.email ?? "", news.email ?? "") ||
      differs(olds.enabled ?? true, news.enabled ?? true) ||
      differs(olds.access ?? [], news.access ?? [], true) ||
      differs(olds.managedBy ?? "", news.managedBy ?? "");
    return { changes: replaces.length > 0 || changed, replaces, deleteBeforeReplace: true };
  },

  async create(inputs: OrgUserInputs) {
    const { name, primary } = inputs.organization;
    const existing = await findOnPrimary(() => clientFor(primary).getUser(name, inputs.username));
    assertMayTakeOver(`user ${inputs.username}`, existing, inputs);
    return { id: idOf(inputs), outs: await apply(inputs) };
  },

  async update(_id, _olds: OrgUserInputs, news: OrgUserInputs) {
    return { outs: await apply(news) };
  },

  async read(id, props: OrgUserInputs) {
    const { name, primary } = props.organization;
    const user = await findOnPrimary(() => clientFor(primary).getUser(name, props.username));
    if (!user) return { id: "", props: {} };
    // A password changed behind Pulumi's back no longer verifies: report it as drift to heal.
    const password = verifyPassword(props.password, user.passwordHash) ? props.password : "";
    const inputs: OrgUserInputs = {
      ...props,
      password,
      enabled: user.enabled,
      access: user.access,
      managedBy: user.managedBy,
    };
    if (props.displayName !== undefined || user.displayName !== "") inputs.displayName = user.displayName;
    if (props.email !== undefined || user.email !== "") inputs.email = user.email;
    return { id, props: inputs, inputs };
  },

  async delete(_id, props: OrgUserInputs) {
    const { name, primary } = props.organization;
    await deleteAndSync(props.organization, () => clientFor(primary).deleteUser(name, props.username));
  },
};
