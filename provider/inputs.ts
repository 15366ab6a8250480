/**
 * Input handling shared by the resource providers: zod validation that tolerates values Pulumi
 * does not know yet during preview, and canonical comparison (key order never makes a diff).
 */
import type * as pulumi from "@pulumi/pulumi";
import type { z } from "zod";
import { normalizeEndpoint, UNKNOWN_VALUE, type OrgRef } from "../sdk/schemas";

const PROVIDER_KEY = "__provider";

/** Inputs without Pulumi's own `__provider` property and without undefined members. */
function ownInputs(inputs: Record<string, unknown>): Record<string, unknown> {
  const own: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(inputs)) {
    if (key !== PROVIDER_KEY && value !== undefined) own[key] = value;
  }
  return own;
}

function isUnknownAt(value: unknown, path: PropertyKey[]): boolean {
  let current = value;
  for (const key of path) {
    if (current === UNKNOWN_VALUE) return true;
    if (current === null || typeof current !== "object") return false;
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return current === UNKNOWN_VALUE;
}

export function containsUnknown(value: unknown): boolean {
  if (value === UNKNOWN_VALUE) return true;
  if (Array.isArray(value)) return value.some(containsUnknown);
  if (value !== null && typeof value === "object") return Object.values(value).some(containsUnknown);
  return false;
}

/**
 * Validates inputs with a schema and turns each zod issue into a Pulumi check failure naming the
 * property. Issues about values that are still unknown (preview) are not failures.
 */
export function checkInputs(
  schema: z.ZodType,
  news: Record<string, unknown>,
): { inputs: Record<string, unknown>; failures: pulumi.dynamic.CheckFailure[] } {
  const inputs = ownInputs(news);
  const result = schema.safeParse(inputs);
  if (result.success) return { inputs, failures: [] };
  const failures = result.error.issues
    .filter((issue) => !isUnknownAt(inputs, issue.path))
    .map((issue) => ({
      property: issue.path.length > 0 ? issue.path.map(String).join(".") : "",
      reason: `${issue.path.length > 0 ? issue.path.map(String).join(".") : "input"} ${issue.message}`,
    }));
  return { inputs, failures };
}

/** An org reference with its endpoints in canonical form (the load balancer only when set). */
export function normalizeRef(ref: OrgRef): OrgRef {
  return {
    name: ref.name,
    primary: normalizeEndpoint(ref.primary),
    ...(ref.loadBalancer ? { loadBalancer: normalizeEndpoint(ref.loadBalancer) } : {}),
    ...(ref.loadBalancerFtp ? { loadBalancerFtp: ref.loadBalancerFtp } : {}),
  };
}

/** Canonical JSON (sorted keys, undefined dropped) for comparing values from state and program. */
export function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, item: unknown) =>
    item !== null && typeof item === "object" && !Array.isArray(item)
      ? Object.fromEntries(Object.entries(item as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)))
      : item,
  );
}

/** Whether two values differ, treating a list as a set when `asSet` is given. */
export function differs(a: unknown, b: unknown, asSet = false): boolean {
  if (containsUnknown(b)) return true;
  if (asSet && Array.isArray(a) && Array.isArray(b)) return canonical([...a].sort()) !== canonical([...b].sort());
  return canonical(a) !== canonical(b);
}

/** An error the dynamic-provider host turns into a partial failure: the object exists with these outputs. */
export function partialFailure(message: string, id: string, properties: Record<string, unknown>): Error {
  return Object.assign(new Error(message), { id, properties, reasons: [message] });
}
