/** `/v1/orgs/{org}/services`: an org's websites and FTP services. */
import type { FastifyInstance } from "fastify";
import { serviceBodySchema, serviceView } from "../../../../wire";
import type { MemberWrites } from "../../domain/members";
import type { Reads } from "../../domain/reads";
import { memberWriteOptions, orgOf, parse, serviceOf, writeOptions } from "../params";
import { sendWritten } from "./written";

export function serviceRoutes(app: FastifyInstance, reads: Reads, members: MemberWrites): void {
  app.get("/v1/orgs/:org/services", async (request) => ({ services: reads.listServices(orgOf(request)) }));
  app.put("/v1/orgs/:org/services/:service", async (request, reply) => {
    const [org, service, options] = [orgOf(request), serviceOf(request), memberWriteOptions(request)];
    const written = await members.putService(org, service, parse(serviceBodySchema, request.body), options);
    // The answer shows the certificate's summary; the key never leaves in an answer's body.
    return sendWritten(reply, { ...written, record: serviceView(written.record) });
  });
  app.get("/v1/orgs/:org/services/:service", async (request) => reads.getService(orgOf(request), serviceOf(request)));
  app.delete("/v1/orgs/:org/services/:service", async (request, reply) =>
    sendWritten(reply, await members.deleteService(orgOf(request), serviceOf(request), writeOptions(request))),
  );
}
