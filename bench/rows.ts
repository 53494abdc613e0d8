/** Figures → table rows, each with its target from issue 5 and whether it holds. A figure never measured stays a word, never a number. */
import { median } from "./measure.js";
import type { Row } from "./report.js";
import { describePropagation, type Propagation } from "./revocation.js";
import { fmtMs, mb, type Crossing, type Latency, type Million, type PathName, type Saturation } from "./sections.js";
import type { IdleStreams } from "./streams.js";
import type { Validations } from "./validations.js";
import type { Scaling } from "./workers.js";

/** A section's outcome: its figures, or why there are none. */
export type Outcome<T> = { ok: T } | { failed: string } | { skipped: string };

const int = (n: number) => Math.round(n).toLocaleString("en-US");
const pct = (n: number) => `${(100 * n).toFixed(0)}%`;
const holds = (ok: boolean) => (ok ? "yes" : "no");
const signedMs = (us: number) => `${us >= 0 ? "+" : "−"}${(Math.abs(us) / 1000).toFixed(3)} ms`;

/** A row comparing the three paths, each cell from `cell`. */
const compared = (metric: string, cell: (p: PathName) => string, rest: Pick<Row, "versus" | "target" | "holds">): Row => ({
  metric,
  direct: cell("direct"),
  nginx: cell("nginx"),
  gateway: cell("gateway"),
  ...rest,
});

function unmeasured(metric: string, target: string, outcome: { failed: string } | { skipped: string }, paths: readonly PathName[]): Row {
  const word = "failed" in outcome ? "FAILED" : `not measured (${outcome.skipped})`;
  const why = "failed" in outcome ? outcome.failed.split("\n")[0]!.slice(0, 160) : "";
  return compared(metric, (p) => (paths.includes(p) ? word : "—"), { versus: why, target, holds: "failed" in outcome ? "no (failed)" : "not measured" });
}

const ALL: PathName[] = ["direct", "nginx", "gateway"];

export function saturationRow(o: Outcome<Saturation>): Row {
  const metric = "Requests/s at saturation (POST tools/call)";
  const target = "≥ 60% of nginx";
  if (!("ok" in o)) return unmeasured(metric, target, o, ALL);
  const rate = (p: PathName) => (o.ok.rates.has(p) ? median(o.ok.rates.get(p)!) : undefined);
  const cell = (p: PathName) => (rate(p) === undefined ? "not measured (nginx missing)" : `${int(rate(p)!)} (-c${o.ok.connections.get(p)})`);
  const [d, n, g] = [rate("direct")!, rate("nginx"), rate("gateway")!];
  const b = rate("bare");
  const bare = b === undefined ? "" : `; a bare Node proxy: ${int(b)}${n === undefined ? "" : `, ${pct(b / n)} of nginx`}`;
  const versus = (n === undefined ? `${pct(g / d)} of direct` : `${pct(g / n)} of nginx, ${pct(g / d)} of direct (nginx: ${pct(n / d)} of direct)`) + bare;
  return compared(metric, cell, { versus, target, holds: n === undefined ? "not measured" : holds(g >= 0.6 * n) });
}

export function latencyRows(o: Outcome<Map<PathName, Latency>>, rate: number): Row[] {
  const quantiles = [
    ["p50", "added ≤ 0.3 ms", 300],
    ["p99", "added ≤ 1.5 ms", 1500],
  ] as const;
  return quantiles.map(([q, target, limitUs]) => {
    const metric = `${q} latency at ~${int(rate)} req/s`;
    if (!("ok" in o)) return unmeasured(metric, target, o, ALL);
    const value = (p: PathName) => (o.ok.has(p) ? median(o.ok.get(p)![q]) : undefined);
    const achieved = (p: PathName) => (o.ok.has(p) ? ` at ${int(median(o.ok.get(p)!.rate))}/s` : "");
    const cell = (p: PathName) => (value(p) === undefined ? "not measured (nginx missing)" : `${fmtMs(value(p)!)}${achieved(p)}`);
    const [d, n, g] = [value("direct")!, value("nginx"), value("gateway")!];
    const versus = `${signedMs(g - d)} over direct${n === undefined ? "" : ` (nginx ${signedMs(n - d)})`}`;
    return compared(metric, cell, { versus, target, holds: holds(g - d <= limitUs) });
  });
}

export function crossingRows(o: Outcome<Map<PathName, Crossing>>): Row[] {
  return (["median", "p99"] as const).map((q) => {
    const target = q === "median" ? "added ≤ 1 ms" : "— (shown for context)";
    if (!("ok" in o)) return unmeasured(`SSE event crossing time, ${q}`, target, o, ALL);
    const events = o.ok.get("gateway")?.events ?? 0;
    const metric = `SSE event crossing time, ${q} (${int(events)} events per path)`;
    const value = (p: PathName) => o.ok.get(p)?.[q];
    const cell = (p: PathName) => (value(p) === undefined ? "not measured (nginx missing)" : fmtMs(value(p)!));
    const [d, n, g] = [value("direct")!, value("nginx"), value("gateway")!];
    const versus = `${signedMs(g - d)} over direct${n === undefined ? "" : ` (nginx ${signedMs(n - d)})`}`;
    return compared(metric, cell, { versus, target, holds: q === "median" ? holds(g - d <= 1000) : "—" });
  });
}

export function streamsRow(o: Outcome<IdleStreams>, wanted: number): Row {
  const metric = `Gateway memory per idle SSE stream (${int(wanted)} GET streams held)`;
  const target = "≤ 25 KB";
  if (!("ok" in o)) return unmeasured(metric, target, o, ["gateway"]);
  const s = o.ok;
  const gateway = `${s.perStreamKb.toFixed(1)} KB (RSS ${mb(s.beforeKb)} → ${mb(s.halfKb)} at half → ${mb(s.afterKb)})`;
  const versus = `${s.marginalKb.toFixed(1)} KB per stream from half to all open; JS heap ${s.heapPerStreamKb.toFixed(1)} KB per stream; gateway fds ${s.fdsBefore} → ${s.fdsHeld} held → ${s.fdsAfter} after closing (waited ≤ 10 s)`;
  return { metric, direct: "—", nginx: "—", gateway, versus, target, holds: holds(s.perStreamKb <= 25) };
}

export function validationsRows(o: Outcome<{ full: Validations; cached: Validations }>): Row[] {
  const target = "≥ 50,000/s per core";
  const kinds = [
    ["full", "Gateway-token validations/s, one thread: signature and seal checked every time"],
    ["cached", "… the same token again, through the verified-token cache (what /mcp does after first use)"],
  ] as const;
  return kinds.map(([kind, metric]) => {
    if (!("ok" in o)) return unmeasured(metric, target, o, ["gateway"]);
    const v = o.ok[kind];
    const versus = `${int(v.perCpuSecond)} per CPU-second (thread pool included)`;
    return { metric, direct: "—", nginx: "—", gateway: `${int(v.perSecond)}/s`, versus, target, holds: holds(v.perSecond >= 50_000) };
  });
}

export function millionRow(o: Outcome<Million>, wanted: number): Row {
  const metric = `Gateway RSS under load: after warm-up → at the end of ${int(wanted)} requests`;
  const target = "≤ 5% growth";
  if (!("ok" in o)) return unmeasured(metric, target, o, ["gateway"]);
  const m = o.ok;
  const growth = (m.afterKb - m.beforeKb) / m.beforeKb;
  const short = m.requests < m.wanted;
  const gateway = `${mb(m.beforeKb)} → ${mb(m.afterKb)}${short ? ` over ${int(m.requests)} requests only` : ""}`;
  const versus = `${growth >= 0 ? "+" : "−"}${Math.abs(100 * growth).toFixed(1)}% (peak ${mb(m.peakKb)}; ${m.seconds.toFixed(0)} s)`;
  return { metric, direct: "—", nginx: "—", gateway, versus, target, holds: short ? `not at ${int(m.wanted)}` : holds(growth <= 0.05) };
}

/** CPU µs per request by path ("direct": the upstream's own, for scale), and the bare Node proxy's. */
export function cpuRow(o: Outcome<Map<PathName, number>>): Row {
  const metric = "CPU per proxied request (utime + stime from /proc, the proxy's processes only)";
  const target = "≤ 1.3× the bare Node proxy, ≤ 60 µs";
  if (!("ok" in o)) return unmeasured(metric, target, o, ALL);
  const us = (p: PathName) => o.ok.get(p);
  const cell = (p: PathName) => (us(p) === undefined ? "not measured" : `${us(p)!.toFixed(1)} µs${p === "direct" ? " (the upstream itself)" : ""}`);
  const [g, b, n, p] = [us("gateway")!, us("bare"), us("nginx"), us("pretenured")];
  const ratio = b === undefined ? undefined : g / b;
  const versus = [
    b === undefined ? "bare Node proxy not measured" : `${ratio!.toFixed(2)}× the bare Node proxy (${b.toFixed(1)} µs)`,
    ...(n === undefined ? [] : [`${(g / n).toFixed(1)}× nginx`]),
    ...(p === undefined ? [] : [`with V8's pretenuring left on: ${p.toFixed(1)} µs (${(p / g).toFixed(2)}× the gateway)`]),
  ].join("; ");
  return compared(metric, cell, { versus, target, holds: ratio === undefined ? "not measured" : holds(ratio <= 1.3 && g <= 60) });
}

/** Requests/s with one worker and with two, gateway (`--workers`) against nginx. */
export function scalingRows(o: Outcome<Scaling>): Row[] {
  return [1, 2].map((n) => {
    const metric = `Requests/s with ${n === 1 ? "one worker process" : "two worker processes"} (wrk pinned apart, -c64)`;
    const target = n === 1 ? "— (the base of the next row)" : "gateway --workers 2 ≥ 1.6× --workers 1";
    if (!("ok" in o)) return { ...unmeasured(metric, target, o, ["nginx", "gateway"]), direct: "—" };
    const { gateway, nginx } = o.ok;
    const measured = gateway instanceof Map;
    const g = measured ? gateway.get(n) : undefined;
    const nginxCell = nginx.has(n) ? int(nginx.get(n)!) : "not measured (nginx missing)";
    const gatewayCell = g === undefined ? `not measured (${measured ? "failed" : gateway.skipped})` : `${int(g)} (--workers ${n})`;
    const scale = (m: Map<number, number>) => (m.has(1) && m.has(2) ? `${(m.get(2)! / m.get(1)!).toFixed(2)}×` : "—");
    const versus =
      n === 1
        ? `${g !== undefined && nginx.has(1) ? `${pct(g / nginx.get(1)!)} of nginx; ` : ""}${o.ok.pinning}`
        : `2 workers / 1: gateway ${measured ? scale(gateway) : "not measured"}, nginx ${scale(nginx)}`;
    const holdsCell = n === 1 ? "—" : measured && gateway.has(1) && gateway.has(2) ? holds(gateway.get(2)! >= 1.6 * gateway.get(1)!) : "not measured";
    return { metric, direct: "—", nginx: nginxCell, gateway: gatewayCell, versus, target, holds: holdsCell };
  });
}

/** Revocation propagation (bench/revocation.ts): the gateway's own figure, no reference path. */
export function revocationRow(o: Outcome<Propagation>): Row {
  const metric = "Revocation propagation: /revoke on instance A → refused by B (same store)";
  const target = "≤ 1 s";
  if (!("ok" in o)) return unmeasured(metric, target, o, ["gateway"]);
  const [sqlite, redis] = [o.ok.ms.get("sqlite")!, o.ok.ms.get("redis")!];
  const worst = Math.max(...sqlite, ...redis);
  return {
    metric,
    direct: "—",
    nginx: "—",
    gateway: `SQLite ${describePropagation(sqlite)}; Redis ${describePropagation(redis)}`,
    versus: `median of ${o.ok.grants} grants per store; bound 1 s by design (docs/storage.md)`,
    target,
    holds: holds(worst <= 1000),
  };
}
