/**
 * Requests/s with one and two worker processes: the gateway with `--workers 1` and `--workers 2` (built
 * on branch w-workers; "not measured" while this build lacks the flag) against nginx with one and two
 * workers. wrk runs pinned to the last CPU (`taskset -c <n−1>`); with 3 or more CPUs the proxies are
 * pinned to the others, so the load generator never takes a proxy's core. On 2 CPUs they cannot be kept
 * apart: the second worker shares a core with wrk and the upstream, which bounds the scaling figure.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { median } from "./measure.js";
import { processTree } from "./cpu.js";
import { startNginx } from "./nginx.js";
import { stop } from "./processes.js";
import type { Wrk } from "./sections.js";
import { startGateway, type Upstream } from "./stack.js";
import { wrk } from "./wrk.js";

export interface Scaling {
  /** req/s (median over the rounds) by worker count; undefined: not measured, with why. */
  gateway: Map<number, number> | { skipped: string };
  nginx: Map<number, number>;
  pinning: string;
}

const CONNECTIONS = 64;

/** The CPU lists for wrk and for the proxies, and how they were chosen. */
export function pinning(): { wrk: string; proxies: string | undefined; description: string } {
  const n = cpus().length;
  const wrkCpu = String(n - 1);
  if (n >= 3) return { wrk: wrkCpu, proxies: `0-${n - 2}`, description: `wrk on CPU ${wrkCpu} (taskset -c), proxies and their workers on CPUs 0-${n - 2}` };
  return {
    wrk: wrkCpu,
    proxies: undefined,
    description: `wrk on CPU ${wrkCpu} (taskset -c); with ${n} CPUs the proxies and the upstream are not pinned and share it`,
  };
}

/** Whether this build has `--workers` (branch w-workers). */
export const hasWorkersFlag = (): boolean => spawnSync(process.execPath, ["dist/main.js", "--help"], { encoding: "utf8" }).stdout.includes("--workers");

function pin(pid: number, list: string | undefined): void {
  if (list) for (const each of processTree(pid)) spawnSync("taskset", ["-a", "-p", "-c", list, String(each)]);
}

interface Contender {
  label: string;
  url: string;
  authorization?: string;
  pid: number;
  close: () => Promise<void>;
}

async function contenders(upstream: Upstream, dir: string, nginxBinary: string | undefined, hard: number, withWorkers: boolean): Promise<Contender[]> {
  const out: Contender[] = [];
  for (const workers of [1, 2]) {
    if (nginxBinary) {
      const nginxDir = join(dir, `nginx-${workers}w`);
      mkdirSync(nginxDir, { recursive: true });
      const n = await startNginx(nginxBinary, nginxDir, upstream.mcpUrl, hard, workers);
      out.push({ label: `nginx ${workers}`, url: n.mcpUrl, pid: n.child.pid!, close: () => stop(n.child, "SIGQUIT") });
    }
    if (withWorkers) {
      const dataDir = join(dir, `store-${workers}w`);
      mkdirSync(dataDir, { recursive: true, mode: 0o700 }); // the gateway refuses a data directory others can read
      const g = await startGateway(upstream, dir, { args: ["--workers", String(workers)], store: ["--store", "sqlite", "--data-dir", dataDir] });
      out.push({ label: `gateway ${workers}`, url: g.mcpUrl, authorization: g.authorization, pid: g.pid, close: () => g.stop() });
    }
  }
  return out;
}

/** Each contender at -c64 for `seconds`, in `rounds` alternating rounds; the median. */
export async function scaling(
  w: Wrk,
  upstream: Upstream,
  opts: { nginx: string | undefined; hard: number; rounds: number; seconds: number },
  log: (line: string) => void,
): Promise<Scaling> {
  const pins = pinning();
  const withWorkers = hasWorkersFlag();
  const all = await contenders(upstream, w.dir, opts.nginx, opts.hard, withWorkers);
  try {
    await new Promise((resolve) => setTimeout(resolve, 500)); // cluster workers fork after the primary's banner
    for (const c of all) pin(c.pid, pins.proxies);
    const rates = new Map<string, number[]>(all.map((c) => [c.label, []]));
    for (let round = 1; round <= opts.rounds; round++)
      for (const c of all) {
        const run = { url: c.url, authorization: c.authorization, connections: CONNECTIONS, seconds: opts.seconds, cpus: pins.wrk };
        const r = await wrk(w.binary, w.dir, run, c.label);
        rates.get(c.label)!.push(r.rate);
        log(`  round ${round} ${c.label.padEnd(10)} -c${CONNECTIONS}: ${r.rate.toFixed(0)} req/s`);
      }
    const byWorkers = (kind: string) => new Map([1, 2].flatMap((n) => (rates.has(`${kind} ${n}`) ? [[n, median(rates.get(`${kind} ${n}`)!)] as const] : [])));
    return {
      gateway: withWorkers ? byWorkers("gateway") : { skipped: "--workers not in this build" },
      nginx: byWorkers("nginx"),
      pinning: pins.description,
    };
  } finally {
    for (const c of all) await c.close();
  }
}
