/**
 * Waits the agent may spend before it answers, which a client's timeout must allow for.
 */

/**
 * The longest an agent waits for what a change retires to drain: nginx's old workers after a
 * reload, and the connections of load-balancer servers a route change removes. Past it the
 * change is live anyway and the agent answers.
 */
export const DRAIN_TIMEOUT_MS = 30_000;

/** How long a client waits for an answer that may include a drain: the drain plus ordinary work. */
export const DRAINING_ANSWER_TIMEOUT_MS = DRAIN_TIMEOUT_MS + 15_000;
