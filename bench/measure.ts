/** Order statistics, and the fetch-driven load of the store section (bench/store.ts). */

/** The q-th percentile (0–100) by nearest rank. */
export function percentile(xs: readonly number[], q: number): number {
  if (xs.length === 0) throw new Error("percentile of no values");
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((q / 100) * sorted.length) - 1))]!;
}

export const median = (xs: readonly number[]): number => percentile(xs, 50);

const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 400);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);

const body = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "get_me", arguments: {} } });

export const describeLoad = (): string => `${REQUESTS} requests per round, concurrency ${CONCURRENCY}`;

/** Requests per second for REQUESTS `tools/call get_me` POSTs from CONCURRENCY workers. */
export async function throughput(url: string, authorization: string): Promise<number> {
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next++ < REQUESTS) {
      const response = await fetch(url, {
        method: "POST",
        headers: { authorization, "content-type": "application/json", accept: "application/json, text/event-stream" },
        body,
      });
      const text = await response.text();
      if (response.status !== 200 || !text.includes("octocat")) throw new Error(`bench request failed: ${response.status} ${text.slice(0, 200)}`);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return REQUESTS / ((performance.now() - started) / 1000);
}
