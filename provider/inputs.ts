/**
 * Input handling shared by the resource providers: zod validation that tolerates values Pulumi
 * does not know yet during preview, and canonical comparison (key order never makes a diff).
 */
import type * as pulumi from "@pulumi/pulumi";
import type { z } from "zod";
import { canonicalJson, normalizeEndpoint } from "../wire";
import { UNKNOWN_VALUE, type OrgRef } from "../sdk/inputs";

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

/**
 * The stored inputs among a resource's outputs (state): the keys of its inputs schema that are
 * present, nothing else — so `read` returns inputs in the shape the program gave them.
 */
export function inputsOf(schema: z.ZodType, props: object): Record<string, unknown> {
  const keys = inputKeys(schema);
  return Object.fromEntries(Object.entries(props).filter(([key, value]) => keys.has(key) && value !== undefined));
}

/** Every key an inputs schema knows (for a union of kinds, the union of their keys). */
function inputKeys(schema: unknown): Set<string> {
  const def = (schema as { def?: { type?: string; options?: unknown[]; in?: unknown; schema?: unknown } }).def;
  const shape = (schema as { shape?: Record<string, unknown> }).shape;
  if (shape) return new Set(Object.keys(shape));
  if (def?.options) return new Set(def.options.flatMap((option) => [...inputKeys(option)]));
  if (def?.in) return inputKeys(def.in);
  if (def?.schema) return inputKeys(def.schema);
  return new Set();
}

/** The Pulumi resource name, from the owner mark `pulumi:<project>/<stack>/<name>` the SDK sets. */
export function resourceName(inputs: { managedBy?: string }): string | undefined {
  const mark = inputs.managedBy;
  return mark?.startsWith("pulumi:") ? mark.slice(mark.lastIndexOf("/") + 1) || undefined : undefined;
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

/** Canonical JSON (the wire's, see wire/canonical-json.ts) for comparing values from state and program; "" for undefined. */
export const canonical = (value: unknown): string => (value === undefined ? "" : canonicalJson(value));

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
