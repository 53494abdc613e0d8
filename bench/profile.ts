/** Top functions by self time in a V8 .cpuprofile (the gateway's `--cpu-prof` output). */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Not work: the thread waiting for events. */
const IDLE = "(idle)";

export interface SelfTime {
  path: string;
  busyUs: number;
  /** Function (file:line of the built code in dist/) → µs, most first. */
  functions: Array<[string, number]>;
  /** Package, source file, node internals or native code → µs, most first. */
  origins: Array<[string, number]>;
}

export function selfTime(path: string): SelfTime {
  const profile = JSON.parse(readFileSync(path, "utf8")) as CpuProfile;
  const nodes = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const us = new Map<string, number>();
  const byOrigin = new Map<string, number>();
  profile.samples.forEach((id, i) => {
    const frame = nodes.get(id);
    if (!frame || frame.functionName === IDLE) return;
    const t = profile.timeDeltas[i + 1] ?? 0; // a sample lasts until the next one
    const name = frame.url ? `${frame.functionName || "(anonymous)"} ${shortUrl(frame.url)}:${frame.lineNumber + 1}` : frame.functionName;
    us.set(name, (us.get(name) ?? 0) + t);
    byOrigin.set(origin(frame.url, frame.functionName), (byOrigin.get(origin(frame.url, frame.functionName)) ?? 0) + t);
  });
  const sorted = (m: Map<string, number>) => [...m.entries()].sort((a, b) => b[1] - a[1]);
  const functions = sorted(us);
  return { path, busyUs: functions.reduce((sum, [, t]) => sum + t, 0), functions, origins: sorted(byOrigin) };
}

/** The profile of the busiest thread (the main one; tsx's loader thread writes one too), or undefined. */
export function busiestProfile(dir: string): SelfTime | undefined {
  const profiles = readdirSync(dir)
    .filter((f) => f.endsWith(".cpuprofile"))
    .map((f) => selfTime(join(dir, f)));
  return profiles.sort((a, b) => b.busyUs - a.busyUs)[0];
}

export const topLines = (p: SelfTime, top = 20): string[] =>
  p.functions.slice(0, top).map(([name, t]) => `${(t / 1000).toFixed(0).padStart(7)} ms ${((100 * t) / p.busyUs).toFixed(1).padStart(5)}%  ${name}`);

export const originLine = (p: SelfTime, top = 10): string =>
  p.origins
    .slice(0, top)
    .map(([name, t]) => `${name} ${((100 * t) / p.busyUs).toFixed(0)}%`)
    .join(", ");

function origin(url: string, functionName: string): string {
  if (!url) return functionName.startsWith("(") ? functionName : "native code (syscalls, C++)";
  if (url.startsWith("node:")) return "node internals";
  const pkg = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)?.[1];
  return pkg ?? shortUrl(url);
}

const shortUrl = (url: string): string => url.replace(/^file:\/\/.*?\/node_modules\//, "~/").replace(/^file:\/\/.*?\/(src|bench)\//, "$1/");
