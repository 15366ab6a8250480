/**
 * How a renderer reports each step it runs against its server (`nginx -t`, a reload, a PDB build,
 * a drain): its duration and whether it worked. The agent's metrics (metrics/) count them; the
 * renderers know nothing of Prometheus.
 */
export type StepReport = (step: string, seconds: number, ok: boolean) => void;

/** Run `work` as `step` and report it; `ok` tells a result that means failure (a command's exit status). */
export async function timedStep<T>(
  report: StepReport | undefined,
  step: string,
  work: () => Promise<T>,
  ok: (result: T) => boolean = () => true,
): Promise<T> {
  const started = performance.now();
  const seconds = () => (performance.now() - started) / 1000;
  let result: T;
  try {
    result = await work();
  } catch (error) {
    report?.(step, seconds(), false);
    throw error;
  }
  report?.(step, seconds(), ok(result));
  return result;
}
