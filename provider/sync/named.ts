/**
 * Tokens go only where the stack says: a secondary that only the primary's record lists (anyone
 * holding the primary's token can write that record) is reported and never contacted, so no
 * token or snapshot reaches an address the stack did not name.
 */

/** Whether the stack (or the operator's command line) names an endpoint. */
export type EndpointFilter = (endpoint: string) => boolean;

export function splitNamed(
  listed: string[],
  isNamed: EndpointFilter | undefined,
): { named: string[]; unexpected: string[] } {
  if (!isNamed) return { named: listed, unexpected: [] };
  return { named: listed.filter(isNamed), unexpected: listed.filter((endpoint) => !isNamed(endpoint)) };
}

export const unexpectedSecondaryLine = (org: string, endpoint: string): string =>
  `unexpected secondary ${endpoint} of ${org}: the primary's record lists it but the stack does not name it; ` +
  `not contacted (name it among the org's secondaries or in lbhosting:tokens if it is yours)`;
