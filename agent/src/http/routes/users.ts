/** `/v1/orgs/{org}/users`: an org's users (FTP logins). */
import type { FastifyInstance } from "fastify";
import { userBodySchema } from "../../../../wire";
import type { MemberWrites } from "../../domain/members";
import type { Reads } from "../../domain/reads";
import { memberWriteOptions, orgOf, parse, usernameOf, writeOptions } from "../params";
import { sendWritten } from "./written";

export function userRoutes(app: FastifyInstance, reads: Reads, members: MemberWrites): void {
  app.get("/v1/orgs/:org/users", async (request) => ({ users: reads.listUsers(orgOf(request)) }));
  app.put("/v1/orgs/:org/users/:username", async (request, reply) => {
    const [org, username, options] = [orgOf(request), usernameOf(request), memberWriteOptions(request)];
    return sendWritten(reply, await members.putUser(org, username, parse(userBodySchema, request.body), options));
  });
  app.get("/v1/orgs/:org/users/:username", async (request) => reads.getUser(orgOf(request), usernameOf(request)));
  app.delete("/v1/orgs/:org/users/:username", async (request, reply) =>
    sendWritten(reply, await members.deleteUser(orgOf(request), usernameOf(request), writeOptions(request))),
  );
}
