/**
 * What the fault tests share: reproducible random kill points and a report of what each found.
 * Set LBHOSTING_FAULT_SEED to replay a run; every fault test prints the seed it used.
 */

/** mulberry32: a small seeded generator, so a failing run's kill points can be replayed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function faultSeed(): number {
  const fromEnv = Number(process.env.LBHOSTING_FAULT_SEED);
  return Number.isInteger(fromEnv) && fromEnv > 0 ? fromEnv : Math.floor(Math.random() * 2 ** 31) + 1;
}

/** `count` points spread over [0, span): one at random inside each of `count` equal slices. */
export function spreadPoints(count: number, span: number, random: () => number): number[] {
  return Array.from({ length: count }, (_, index) => Math.round(((index + random()) / count) * span));
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Prints one line per kill point, so the run's findings (and the seed, if random) are in the test output. */
export function printKillReport(title: string, rows: Array<Record<string, unknown>>, seed?: number): void {
  const fields = (row: Record<string, unknown>) =>
    Object.entries(row)
      .map(([key, value]) => `${key}=${String(value)}`)
      .join(" ");
  const lines = rows.map((row, index) => `        #${index + 1} ${fields(row)}`);
  console.log(`      ${title}${seed === undefined ? "" : ` (seed ${seed})`}:\n${lines.join("\n")}`);
}
