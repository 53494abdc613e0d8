/**
 * The measurements that compare paths (direct, nginx, gateway), each in alternating rounds so a
 * noisy neighbour hurts every path alike, and the million-request RSS run.
 */
import { median, percentile } from "./measure.js";
import { sampleRss } from "./processes.js";
import { measureCrossing } from "./sse.js";
import type { GatewayUnderTest } from "./stack.js";
import { wrk, type WrkResult } from "./wrk.js";

/**
 * "bare": bench/bare-proxy.mjs, measured at saturation and for CPU. "pretenured": the gateway run with
 * V8's allocation-site pretenuring left on (src/pretenuring.ts), for CPU only, to show what turning it off saves.
 */
export type PathName = "direct" | "nginx" | "gateway" | "bare" | "pretenured";

export interface Path {
  name: PathName;
  url: string;
  authorization?: string;
}

export interface Settings {
  rounds: number;
  seconds: number;
  connections: number[];
  latencySeconds: number;
  rate: number;
  rateConnections: number;
  sseEvents: number;
  sseIntervalMs: number;
  streams: number;
  million: number;
  millionMaxSeconds: number;
}

export interface Wrk {
  binary: string;
  dir: string;
}

type Log = (line: string) => void;

const brief = (r: WrkResult) => `${r.rate.toFixed(0)} req/s, p50 ${(r.latencyUs.p50 / 1000).toFixed(2)} ms, p99 ${(r.latencyUs.p99 / 1000).toFixed(2)} ms`;

export interface Saturation {
  connections: Map<PathName, number>;
  /** req/s, one per round. */
  rates: Map<PathName, number[]>;
}

/** Try each concurrency briefly per path, keep each path's best, then measure in alternating rounds. */
export async function saturation(w: Wrk, paths: readonly Path[], s: Settings, log: Log): Promise<Saturation> {
  const connections = new Map<PathName, number>();
  for (const path of paths) {
    let best = { c: 0, rate: 0 };
    for (const c of s.connections) {
      const r = await wrk(w.binary, w.dir, { url: path.url, authorization: path.authorization, connections: c, seconds: 2 }, path.name);
      log(`  calibrate ${path.name.padEnd(7)} -c${String(c).padEnd(4)} ${brief(r)}`);
      if (r.rate > best.rate) best = { c, rate: r.rate };
    }
    connections.set(path.name, best.c);
  }
  const rates = new Map<PathName, number[]>(paths.map((p) => [p.name, []]));
  for (let round = 1; round <= s.rounds; round++)
    for (const path of paths) {
      const c = connections.get(path.name)!;
      const r = await wrk(w.binary, w.dir, { url: path.url, authorization: path.authorization, connections: c, seconds: s.seconds }, path.name);
      rates.get(path.name)!.push(r.rate);
      log(`  round ${round} ${path.name.padEnd(7)} -c${c}: ${brief(r)}`);
    }
  return { connections, rates };
}

export interface Latency {
  /** µs, and the rate achieved, one per round. */
  p50: number[];
  p99: number[];
  rate: number[];
}

export async function latencyAtRate(w: Wrk, paths: readonly Path[], s: Settings, log: Log): Promise<Map<PathName, Latency>> {
  const out = new Map<PathName, Latency>(paths.map((p) => [p.name, { p50: [], p99: [], rate: [] }]));
  for (let round = 1; round <= s.rounds; round++)
    for (const path of paths) {
      const run = { url: path.url, authorization: path.authorization, connections: s.rateConnections, seconds: s.latencySeconds, rate: s.rate };
      const r = await wrk(w.binary, w.dir, run, path.name);
      const l = out.get(path.name)!;
      l.p50.push(r.latencyUs.p50);
      l.p99.push(r.latencyUs.p99);
      l.rate.push(r.rate);
      log(`  round ${round} ${path.name.padEnd(7)} at ${s.rate}/s: ${brief(r)}`);
    }
  return out;
}

export interface Crossing {
  /** µs over every event of every round. */
  median: number;
  p99: number;
  events: number;
}

export async function sseCrossing(paths: readonly Path[], controlUrl: string, s: Settings, log: Log): Promise<Map<PathName, Crossing>> {
  const all = new Map<PathName, number[]>(paths.map((p) => [p.name, []]));
  for (let round = 1; round <= s.rounds; round++)
    for (const path of paths) {
      const { crossingUs } = await measureCrossing(path.url, path.authorization, controlUrl, s.sseEvents, s.sseIntervalMs);
      all.get(path.name)!.push(...crossingUs);
      log(`  round ${round} ${path.name.padEnd(7)} ${crossingUs.length} events: median ${fmtMs(median(crossingUs))}, p99 ${fmtMs(percentile(crossingUs, 99))}`);
    }
  return new Map([...all].map(([name, xs]) => [name, { median: median(xs), p99: percentile(xs, 99), events: xs.length }]));
}

export const fmtMs = (us: number): string => `${(us / 1000).toFixed(3)} ms`;

export interface Million {
  /** Responses counted (the thread stops at the goal; a few more may land in the same loop turn). */
  requests: number;
  /** `s.million`: the goal, which the time bound may have lowered. */
  wanted: number;
  seconds: number;
  /** Mean RSS under load over the warm-up's last 10 s, and over the run's last 10 s. */
  beforeKb: number;
  afterKb: number;
  peakKb: number;
}

const WARM_UP_SECONDS = 15;
/** Long enough to average out the sawtooth of V8's collections. */
const WINDOW_SECONDS = 10;
const meanOfLast = (samples: number[], seconds: number) => {
  const window = samples.slice(-Math.max(1, Math.round(seconds * 2)));
  return window.reduce((sum, kb) => sum + kb, 0) / window.length;
};

/**
 * RSS under load after a warm-up, then under the same load at the end of `s.million` responses
 * counted by wrk (which stops at exactly that many), or as many as fit in `s.millionMaxSeconds` at
 * the throughput measured before. Read under load, not idle: when an idle Node process returns
 * memory depends on when V8's memory reducer happens to run, which moves RSS by a third.
 */
export async function millionRequests(w: Wrk, gateway: GatewayUnderTest, connections: number, measuredRate: number, s: Settings, log: Log): Promise<Million> {
  const path = { url: gateway.mcpUrl, authorization: gateway.authorization, connections };
  const warmUp = sampleRss(gateway.pid);
  await wrk(w.binary, w.dir, { ...path, seconds: WARM_UP_SECONDS }, "gateway warm-up");
  const beforeKb = meanOfLast(warmUp(), WINDOW_SECONDS);
  const fits = Math.floor((measuredRate * s.millionMaxSeconds) / 10_000) * 10_000;
  const requests = Math.max(10_000, Math.min(s.million, fits));
  log(
    `  ${requests} requests at -c${connections} (about ${(requests / measuredRate).toFixed(0)} s at ${measuredRate.toFixed(0)} req/s), RSS under load after warm-up ${mb(beforeKb)}`,
  );
  const bound = Math.ceil((3 * requests) / measuredRate) + 60;
  const run = sampleRss(gateway.pid);
  const r = await wrk(w.binary, w.dir, { ...path, seconds: bound, stopAfter: requests }, "gateway million");
  const samples = run();
  if (r.requests < requests) throw new Error(`wrk stopped after ${r.requests} of ${requests} responses (time bound ${bound} s)`);
  const afterKb = meanOfLast(samples, WINDOW_SECONDS);
  const peakKb = Math.max(...samples);
  log(`  done in ${(r.durationUs / 1e6).toFixed(0)} s (${brief(r)}), RSS under load at the end ${mb(afterKb)}, peak ${mb(peakKb)}`);
  return { requests: r.requests, wanted: s.million, seconds: r.durationUs / 1e6, beforeKb, afterKb, peakKb };
}

export const mb = (kb: number): string => `${(kb / 1024).toFixed(1)} MB`;
