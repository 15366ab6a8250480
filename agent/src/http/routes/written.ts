/** How a user or service write answers: the record (PUT) or WriteResult (DELETE), with the write headers. */
import type { FastifyReply } from "fastify";
import { WRITE_HEADERS, encodeChange } from "../../../../wire";
import type { Written } from "../../domain/members";

export function sendWritten<T>(reply: FastifyReply, written: Written<T>): FastifyReply {
  reply
    .code(written.created ? 201 : 200)
    .header(WRITE_HEADERS.generation, String(written.generation))
    .header(WRITE_HEADERS.digest, written.digest)
    .header(WRITE_HEADERS.changed, String(written.changed))
    .header(WRITE_HEADERS.epoch, String(written.epoch))
    .header(WRITE_HEADERS.secondaries, written.secondaries.join(","));
  const change = written.change && encodeChange(written.change);
  if (change) reply.header(WRITE_HEADERS.change, change);
  const { generation, digest, changed } = written;
  return reply.send(written.record ?? { generation, digest, changed });
}
