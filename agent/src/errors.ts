/**
 * The one error type the agent's request handling throws on purpose. It carries the HTTP status
 * and the `{ error: { code, message, details } }` body of the API, so handlers stay free of
 * response plumbing and nothing but this shape (no stack, no input value) reaches a client.
 */
import type { z } from "zod";
import type { ApiError } from "../../wire";

interface ErrorDetail {
  path: string;
  message: string;
}

export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: ErrorDetail[] = [],
  ) {
    super(message);
    this.name = "ApiFailure";
  }

  toBody(): ApiError {
    return { error: { code: this.code, message: this.message, details: this.details } };
  }
}

/** 400 from zod issues: each detail names the field (path joined with '.', under `prefix`) and the rule. */
export function validationFailure(error: z.ZodError, prefix?: string): ApiFailure {
  const pathOf = (segments: PropertyKey[]) => {
    const parts = [...(prefix === undefined ? [] : [prefix]), ...segments.map(String)];
    return parts.length > 0 ? parts.join(".") : "body";
  };
  // An unknown field is reported on the object that holds it; name the field itself instead.
  const details = error.issues.flatMap((issue) =>
    issue.code === "unrecognized_keys"
      ? issue.keys.map((key) => ({ path: pathOf([...issue.path, key]), message: "is not a known field" }))
      : [{ path: pathOf(issue.path), message: issue.message }],
  );
  const summary = details.map((detail) => `${detail.path}: ${detail.message}`).join("; ");
  return new ApiFailure(400, "validation_failed", `invalid request: ${summary}`, details);
}

export const notFound = (what: string): ApiFailure => new ApiFailure(404, "not_found", `${what} does not exist`);
