/**
 * pure-ftpd's PureDB ("PDB2"), as `pure-pw mkdb` writes it from a passwd file: built in-process, so
 * an FTP round costs about a millisecond instead of a `pure-pw` process (~20 ms of CPU on a busy
 * machine, most of it the exec). ftp.ts checks on start that this gives exactly the bytes pure-pw
 * gives, and falls back to pure-pw when it does not.
 *
 * Layout (big-endian u32 throughout): "PDB2"; 257 offsets, one per bucket of the low byte of a
 * key's hash plus one past the last; per bucket its (hash, data offset) pairs sorted by hash then
 * offset, or a filler word when empty; then each record in insertion order: key length, key,
 * content length, content. The hash is djb2 with XOR over the key's bytes, last byte first.
 */

const MAGIC = Buffer.from("PDB2", "latin1");
const BUCKETS = 256;

/** One account of the PDB: its key (the login) and content (the rest of its passwd line), as bytes. */
export interface PureDbRecord {
  key: Buffer;
  content: Buffer;
  /** pureDbHash(key), worked out once per record rather than once per build. */
  hash: number;
}

/** The hash pure-ftpd's puredb uses for a key (its UTF-8 bytes), last byte first. */
export function pureDbHash(key: string): number {
  // A login is ASCII (the schemas' names): its characters are its bytes, with no Buffer to make.
  const bytes = /[^\p{ASCII}]/u.test(key) ? Buffer.from(key) : undefined;
  let hash = 5381;
  for (let i = (bytes ?? key).length - 1; i >= 0; i--) {
    hash = (hash + ((hash << 5) >>> 0)) >>> 0;
    hash = (hash ^ (bytes ? bytes[i] : key.charCodeAt(i))) >>> 0;
  }
  return hash;
}

/** The record of one passwd line ("login:rest\n", as bytes): key and content are views of `line`. */
export function lineRecord(line: Buffer): PureDbRecord {
  const colon = line.indexOf(":");
  const end = line[line.length - 1] === 0x0a ? line.length - 1 : line.length;
  const key = line.subarray(0, colon);
  return { key, content: line.subarray(colon + 1, end), hash: pureDbHash(key.toString()) };
}

/** The PDB file `pure-pw mkdb` writes for these records, in this order. */
export function buildPureDb(records: PureDbRecord[]): Buffer {
  const buckets: Array<Array<{ hash: number; offset: number }>> = Array.from({ length: BUCKETS }, () => []);
  let dataSize = 0;
  for (const { key, content, hash } of records) {
    buckets[hash & 0xff].push({ hash, offset: dataSize });
    dataSize += 8 + key.length + content.length;
  }
  const indexSize = MAGIC.length + (BUCKETS + 1) * 4;
  const pairsSize = buckets.reduce((sum, bucket) => sum + (bucket.length === 0 ? 4 : bucket.length * 8), 0);
  const firstData = indexSize + pairsSize;
  const out = Buffer.alloc(firstData + dataSize);
  MAGIC.copy(out, 0);
  let at = MAGIC.length;
  let offset = indexSize;
  for (const bucket of buckets) {
    out.writeUInt32BE(offset, at);
    at += 4;
    offset += bucket.length === 0 ? 4 : bucket.length * 8;
  }
  out.writeUInt32BE(offset, at);
  at += 4;
  buckets.forEach((bucket, index) => {
    if (bucket.length === 0) {
      out.writeUInt32BE(index + 1, at);
      at += 4;
      return;
    }
    bucket.sort((a, b) => a.hash - b.hash || a.offset - b.offset);
    for (const { hash, offset: dataOffset } of bucket) {
      out.writeUInt32BE(hash, at);
      out.writeUInt32BE(dataOffset + firstData, at + 4);
      at += 8;
    }
  });
  for (const { key, content } of records) {
    out.writeUInt32BE(key.length, at);
    at += 4 + key.copy(out, at + 4);
    out.writeUInt32BE(content.length, at);
    at += 4 + content.copy(out, at + 4);
  }
  return out;
}
