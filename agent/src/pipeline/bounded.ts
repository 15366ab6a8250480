/**
 * Work over many orgs at once, a few at a time: the start renders every org, and each render
 * waits on the file system (libuv's thread pool) more than it computes, so one at a time leaves
 * the pool idle and a thousand orgs take seconds.
 */

/** `work` on every item, at most `limit` in flight; the results in the items' order. */
export async function mapBounded<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
