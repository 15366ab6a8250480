/**
 * What a sync would change on a secondary: a pure, field-by-field comparison of the primary's
 * snapshot with the secondary's copy. Used by `lbhosting diff`; password hashes never leave it —
 * a different hash shows only as "password changed" — and a website's certificate shows only as
 * its fingerprint and expiry, never its PEM or key.
 */
import { type OrgRecord, type ServiceRecord, type Snapshot, type UserRecord, certificateSummary } from "../wire";

export type PlannedAction = "add" | "change" | "remove";

export interface PlannedChange {
  kind: "org" | "user" | "service";
  action: PlannedAction;
  /** The org, user or service name. */
  name: string;
  /** For "change": one entry per differing field, e.g. `displayName: "Al" → "Alice"`. */
  fields: string[];
}

type AnyRecord = OrgRecord | UserRecord | ServiceRecord;

/** The changes that turn `copy` (undefined: the secondary has no copy) into `primary`. */
export function planSync(primary: Snapshot, copy: Snapshot | undefined): PlannedChange[] {
  const org = compareRecord("org", primary.org.name, primary.org, copy?.org);
  return [
    ...(org ? [org] : []),
    ...compareSets("user", primary.users, copy?.users ?? [], (user) => user.username),
    ...compareSets("service", primary.services, copy?.services ?? [], (service) => service.name),
  ];
}

function compareSets<T extends AnyRecord>(
  kind: PlannedChange["kind"],
  wanted: T[],
  current: T[],
  key: (record: T) => string,
): PlannedChange[] {
  const have = new Map(current.map((record) => [key(record), record]));
  const want = new Map(wanted.map((record) => [key(record), record]));
  const names = [...new Set([...want.keys(), ...have.keys()])].sort();
  return names.flatMap((name) => {
    const change = compareRecord(kind, name, want.get(name), have.get(name));
    return change ? [change] : [];
  });
}

function compareRecord(
  kind: PlannedChange["kind"],
  name: string,
  wanted: AnyRecord | undefined,
  current: AnyRecord | undefined,
): PlannedChange | undefined {
  if (!wanted) return { kind, action: "remove", name, fields: [] };
  if (!current) return { kind, action: "add", name, fields: [] };
  const before = current as Record<string, unknown>;
  const after = wanted as Record<string, unknown>;
  const keys = [...new Set([...Object.keys(after), ...Object.keys(before)])].sort();
  const fields = keys
    .filter((field) => !sameValue(before[field], after[field]))
    .map((field) => {
      if (field === "passwordHash") return "password changed";
      const shown = field === "tls" ? showTls : show;
      return `${field}: ${shown(before[field])} → ${shown(after[field])}`;
    });
  return fields.length > 0 ? { kind, action: "change", name, fields } : undefined;
}

const sameValue = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** A website's TLS as `diff` may print it: the certificate's fingerprint and expiry, and its settings. */
function showTls(value: unknown): string {
  if (value === undefined) return "(none)";
  const tls = value as NonNullable<Extract<ServiceRecord, { kind: "website" }>["tls"]>;
  const { fingerprint, notAfter } = certificateSummary(tls.certificate);
  return `certificate sha256:${fingerprint.slice(0, 16)}… until ${notAfter}, httpsRedirect ${tls.httpsRedirect}, hsts ${tls.hsts}`;
}

function show(value: unknown): string {
  if (value === undefined) return "(none)";
  if (Array.isArray(value)) return `[${value.join(", ")}]`;
  return JSON.stringify(value);
}
