/**
 * npm run bench: every figure measured side by side in alternating rounds of one run (the machines
 * are shared and noisy, so the ratios are the figures to read, not the absolute numbers).
 */
import { cpus } from "node:os";
import { connectWithOAuth } from "../test/support/connect.js";
import { startStack } from "../test/support/stack.js";
import { describeLoad, median, throughput } from "./measure.js";
import { benchStores } from "./store.js";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);

/** /mcp through the gateway against the same upstream called directly. */
async function benchProxy(): Promise<string[]> {
  const stack = await startStack();
  try {
    const { client, provider } = await connectWithOAuth(stack.mcpUrl);
    await client.close();
    const gatewayToken = `Bearer ${provider.tokens()!.access_token}`;
    const upstreamToken = `Bearer ${stack.simulator.issuedTokens().access.at(-1)!}`;
    await throughput(stack.simulator.mcpUrl, upstreamToken); // warm-up
    await throughput(stack.mcpUrl, gatewayToken);
    const direct: number[] = [];
    const proxied: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      direct.push(await throughput(stack.simulator.mcpUrl, upstreamToken));
      proxied.push(await throughput(stack.mcpUrl, gatewayToken));
    }
    const d = median(direct);
    const p = median(proxied);
    return [
      "/mcp tools/call get_me, gateway (memory store) against the upstream directly (req/s, median):",
      "",
      "| path | req/s | ratio |",
      "|---|---:|---:|",
      `| upstream directly | ${d.toFixed(0)} | 1.00 |`,
      `| through the gateway | ${p.toFixed(0)} | ${(p / d).toFixed(2)} |`,
    ];
  } finally {
    await stack.close();
  }
}

console.log(`# npm run bench — ${new Date().toISOString().slice(0, 10)}, node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? "cpu"}`);
console.log(`(${ROUNDS} rounds; ${describeLoad()}; client, gateway and upstream share one process, so ratios bound the overhead from above)\n`);
for (const section of [benchProxy, benchStores]) console.log(`${(await section()).join("\n")}\n`);
