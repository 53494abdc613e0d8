/**
 * CPU time per proxied request, read from /proc: utime + stime of each process of the proxy under test
 * (every thread, libuv's pool included; with --workers or nginx's master, the primary and all its
 * descendants) before and after a wrk run that stops at a fixed count of responses, divided by the
 * responses. wrk's own CPU and the upstream's are not counted (for "direct", the upstream's is the figure).
 */
import { readdirSync, readFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { median } from "./measure.js";
import type { Path, PathName, Wrk } from "./sections.js";
import { wrk } from "./wrk.js";

/** Clock ticks per second of /proc/<pid>/stat's times (USER_HZ, 100 on Linux). */
const TICKS = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;

/** utime + stime of one process in µs (fields 14 and 15 of /proc/<pid>/stat, after the command's closing parenthesis), or undefined once gone. */
function cpuUs(pid: number): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / TICKS;
}

/** The parent pid of every process, from /proc/<pid>/stat (field 4). */
function parents(): Map<number, number> {
  const out = new Map<number, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      out.set(Number(entry), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** `pid` and every process below it (cluster workers, nginx's workers). */
export function processTree(pid: number): number[] {
  const ppid = parents();
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) for (const [child, parent] of ppid) if (parent === tree[i]) tree.push(child);
  return tree;
}

/** Summed CPU µs of the processes that were alive both before and after. */
function cpuOf(pids: readonly number[]): Map<number, number> {
  const out = new Map<number, number>();
  for (const pid of pids) {
    const us = cpuUs(pid);
    if (us !== undefined) out.set(pid, us);
  }
  return out;
}

const spent = (before: Map<number, number>, after: Map<number, number>): number =>
  [...after].reduce((sum, [pid, us]) => sum + (before.has(pid) ? us - before.get(pid)! : 0), 0);

/** A path and the process whose CPU is its cost. */
export interface Measured extends Path {
  pid: number;
}

export interface CpuSettings {
  /** Responses per run. */
  requests: number;
  connections: number;
  rounds: number;
}

/** µs of CPU per request for one path over one fixed-count run. */
export async function cpuPerRequest(w: Wrk, path: Measured, s: CpuSettings): Promise<number> {
  const pids = processTree(path.pid);
  const before = cpuOf(pids);
  const run = { url: path.url, authorization: path.authorization, connections: s.connections, seconds: 120, stopAfter: s.requests };
  const r = await wrk(w.binary, w.dir, run, `${path.name} CPU`);
  return spent(before, cpuOf(pids)) / r.requests;
}

/** Every path once as a warm-up, then `rounds` alternating rounds; the median per path. */
export async function cpuPerRequestAll(w: Wrk, paths: readonly Measured[], s: CpuSettings, log: (line: string) => void): Promise<Map<PathName, number>> {
  for (const path of paths) await cpuPerRequest(w, path, { ...s, requests: Math.min(s.requests, 10_000) });
  const us = new Map<PathName, number[]>(paths.map((p) => [p.name, []]));
  for (let round = 1; round <= s.rounds; round++)
    for (const path of paths) {
      const x = await cpuPerRequest(w, path, s);
      us.get(path.name)!.push(x);
      log(`  round ${round} ${path.name.padEnd(10)} ${x.toFixed(1)} µs CPU per request`);
    }
  return new Map([...us].map(([name, xs]) => [name, median(xs)]));
}
