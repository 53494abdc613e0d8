/**
 * npm run bench: /mcp throughput through the gateway against the same upstream called directly,
 * measured side by side in alternating rounds of one run (the machines are shared and noisy, so
 * the ratio is the figure to read, not the absolute numbers).
 */
import { connectWithOAuth } from "../test/support/connect.js";
import { startStack } from "../test/support/stack.js";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 400);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);

const body = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "get_me", arguments: {} } });

async function run(url: string, authorization: string): Promise<number> {
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next++ < REQUESTS) {
      const response = await fetch(url, { method: "POST", headers: { authorization, "content-type": "application/json", accept: "application/json, text/event-stream" }, body });
      const text = await response.text();
      if (response.status !== 200 || !text.includes("octocat")) throw new Error(`bench request failed: ${response.status} ${text.slice(0, 200)}`);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return REQUESTS / ((performance.now() - started) / 1000);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const stack = await startStack();
try {
  const { client, provider } = await connectWithOAuth(stack.mcpUrl);
  await client.close();
  const gatewayToken = `Bearer ${provider.tokens()!.access_token}`;
  const upstreamToken = `Bearer ${stack.simulator.issuedTokens().access.at(-1)!}`;
  await run(stack.simulator.mcpUrl, upstreamToken); // warm-up
  await run(stack.mcpUrl, gatewayToken);
  const direct: number[] = [];
  const proxied: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    direct.push(await run(stack.simulator.mcpUrl, upstreamToken));
    proxied.push(await run(stack.mcpUrl, gatewayToken));
  }
  const d = median(direct);
  const p = median(proxied);
  console.log(`/mcp tools/call get_me, ${REQUESTS} requests x ${ROUNDS} rounds, concurrency ${CONCURRENCY}, node ${process.version}`);
  console.log(`  upstream directly:    ${d.toFixed(0)} req/s (median)`);
  console.log(`  through the gateway:  ${p.toFixed(0)} req/s (median)`);
  console.log(`  ratio gateway/direct: ${(p / d).toFixed(2)}`);
  console.log("  (client, gateway and simulator share one process and event loop: the ratio bounds the overhead from above)");
} finally {
  await stack.close();
}
