/**
 * Debian's wrk 4.1, one thread, driven by a generated Lua script whose done() prints one
 * machine-readable line. wrk 4.1 has no -R: a fixed rate is paced by delay(), handing out send
 * slots from one schedule on CLOCK_MONOTONIC (LuaJIT's ffi), so late sends never accumulate.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { launch } from "./processes.js";
import { TOOLS_CALL } from "./stack.js";

export interface WrkResult {
  requests: number;
  durationUs: number;
  /** Socket errors and timeouts, plus responses that were not 2xx. */
  errors: { connect: number; read: number; write: number; timeout: number; status: number; non2xx: number };
  latencyUs: { p50: number; p90: number; p99: number; p999: number; max: number; mean: number };
  rate: number;
}

export interface WrkRun {
  url: string;
  authorization?: string;
  connections: number;
  seconds: number;
  /** Pace to this many requests/s over all connections (else: as fast as responses come). */
  rate?: number;
  /** Stop the thread once exactly this many responses arrived (`seconds` is then only a bound). */
  stopAfter?: number;
  /** Run wrk under `taskset -c <cpus>`, apart from the processes it loads. */
  cpus?: string;
}

const luaString = (s: string) => `[==[${s}]==]`;

export function script(run: WrkRun): string {
  const headers = {
    "Content-Type": "application/json",
    Accept: "application/json, text/event-stream",
    ...(run.authorization ? { Authorization: run.authorization } : {}),
  };
  return [
    `wrk.method = "POST"`,
    `wrk.body = ${luaString(TOOLS_CALL)}`,
    ...Object.entries(headers).map(([name, value]) => `wrk.headers[ ${luaString(name)} ] = ${luaString(value)}`),
    `local threads = {}`,
    `function setup(thread) table.insert(threads, thread) end`,
    `non2xx = 0`,
    ...(run.rate || run.stopAfter ? counting(run.stopAfter ?? 0) : []),
    ...(run.rate ? pacing(run.rate) : []),
    `function done(summary, latency, requests)`,
    `  local non2xx = 0`,
    `  for _, t in ipairs(threads) do non2xx = non2xx + t:get("non2xx") end`,
    `  local e = summary.errors`,
    `  local p = function(q) return latency:percentile(q) end`,
    `  io.write(string.format('BENCH {"requests":%d,"durationUs":%d,"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d,"status":%d,"non2xx":%d},' ..`,
    `    '"latencyUs":{"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d,"mean":%.1f}}\\n',`,
    `    summary.requests, summary.duration, e.connect, e.read, e.write, e.timeout, e.status, non2xx,`,
    `    p(50), p(90), p(99), p(99.9), latency.max, latency.mean))`,
    `end`,
    ``,
  ].join("\n");
}

/**
 * Every status seen, so 1xx/3xx count as failures too. wrk then hands each response to Lua, which
 * costs it CPU: saturation runs skip this and rely on wrk's own count of statuses above 399.
 */
function counting(stopAfter: number): string[] {
  return [
    `responses = 0`,
    `function response(status, headers, body)`,
    `  responses = responses + 1`,
    `  if status < 200 or status > 299 then non2xx = non2xx + 1 end`,
    // wrk's main thread sleeps out -d whatever its threads do: the marker tells the bench to SIGINT it
    `  if responses == ${stopAfter} then io.write("BENCH-STOPPED\\n"); io.flush(); wrk.thread:stop() end`,
    `end`,
  ];
}

/** How far behind its schedule the paced load may fall and still catch up (a stall longer than this is not made up for). */
const CATCH_UP_MS = 20;

function pacing(rate: number): string[] {
  return [
    `local ffi = require("ffi")`,
    `ffi.cdef[[ typedef struct { long tv_sec; long tv_nsec; } bench_timespec; int clock_gettime(int clk, bench_timespec *tp); ]]`,
    `local ts = ffi.new("bench_timespec")`,
    `local function now_ms() ffi.C.clock_gettime(1, ts); return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6 end`,
    `local interval = ${1000 / rate}`,
    `local next_at = nil`,
    `function delay()`,
    `  local now = now_ms()`,
    `  if next_at == nil or next_at < now - ${CATCH_UP_MS} then next_at = now end`,
    `  next_at = next_at + interval`,
    `  return math.floor(next_at - now + 0.5)`,
    `end`,
  ];
}

/** Run wrk once; any socket error, timeout or non-2xx response fails the bench. */
export async function wrk(binary: string, dir: string, run: WrkRun, label: string): Promise<WrkResult> {
  const path = join(dir, `wrk-${Math.random().toString(36).slice(2)}.lua`);
  writeFileSync(path, script(run));
  const args = ["-t1", `-c${run.connections}`, `-d${run.seconds}s`, "--timeout", "10s", "-s", path, run.url];
  const child = run.cpus
    ? launch("taskset", ["-c", run.cpus, binary, ...args], { stdio: ["ignore", "pipe", "pipe"] })
    : launch(binary, args, { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stopped = false;
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk;
    if (run.stopAfter && !stopped && stdout.includes("BENCH-STOPPED")) stopped = child.kill("SIGINT");
  });
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  const code = await new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
  if (code !== 0) throw new Error(`wrk ${args.join(" ")} exited ${code}:\n${stdout}`);
  const line = /^BENCH (\{.*\})$/m.exec(stdout)?.[1];
  if (!line) throw new Error(`wrk printed no result line for ${label}:\n${stdout}`);
  const parsed = JSON.parse(line) as Omit<WrkResult, "rate">;
  const result: WrkResult = { ...parsed, rate: parsed.requests / (parsed.durationUs / 1e6) };
  const e = result.errors;
  const failed = e.connect + e.read + e.write + e.timeout + e.status + e.non2xx;
  if (failed > 0 || result.requests === 0) throw new Error(`wrk against ${label} had errors: ${JSON.stringify(e)} over ${result.requests} requests\n${stdout}`);
  return result;
}
