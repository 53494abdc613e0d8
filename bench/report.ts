/** The bench's one table, on stdout and in docs/performance.md, with the machine, versions and date. */
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { cpus, release, totalmem } from "node:os";
import { join } from "node:path";
import { format, resolveConfig } from "prettier";
import { ROOT } from "./processes.js";

export interface Row {
  metric: string;
  direct: string;
  nginx: string;
  gateway: string;
  versus: string;
  target: string;
  holds: string;
}

export const HEADER: Row = {
  metric: "metric",
  direct: "direct",
  nginx: "nginx",
  gateway: "gateway",
  versus: "gateway vs reference",
  target: "target",
  holds: "holds?",
};

const COLUMNS = Object.keys(HEADER) as Array<keyof Row>;

export function markdownTable(rows: readonly Row[]): string[] {
  const line = (row: Row) => `| ${COLUMNS.map((c) => row[c].replace(/\|/g, "\\|")).join(" | ")} |`;
  return [line(HEADER), `|${COLUMNS.map((c) => (c === "metric" || c === "versus" || c === "target" ? "---" : "---:")).join("|")}|`, ...rows.map(line)];
}

const run = (command: string, args: string[]): string => {
  const r = spawnSync(command, args, { encoding: "utf8", cwd: ROOT });
  return `${r.stdout ?? ""}${r.stderr ?? ""}`.trim();
};

export function machine(): string {
  const model = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? cpus()[0]?.model ?? "unknown CPU";
  return `${model}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, Linux ${release()}`;
}

export function versions(tools: { nginx?: string; wrk?: string }): string {
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { name: string; version: string };
  const commit = run("git", ["rev-parse", "--short", "HEAD"]);
  const dirty = run("git", ["status", "--porcelain", "--untracked-files=no"]) ? " with uncommitted changes" : "";
  const nginx = tools.nginx ? /nginx\/\S+/.exec(run(tools.nginx, ["-v"]))?.[0] : undefined;
  const wrk = tools.wrk ? /^wrk \S+/.exec(run(tools.wrk, ["-v"]))?.[0] : undefined;
  return [`${pkg.name} ${pkg.version} (commit ${commit}${dirty})`, `node ${process.version}`, nginx ?? "nginx not installed", wrk ?? "wrk not installed"].join(
    ", ",
  );
}

export interface Report {
  date: string;
  machine: string;
  versions: string;
  settings: string[];
  rows: Row[];
  notes: string[];
  wallSeconds: number;
}

/** Written by hand, kept by every run: what bounds each figure, in terms the table above measures. */
const WHAT_BOUNDS_IT = [
  "## What bounds each figure",
  "",
  "- **CPU per request.** The bare Node proxy row (bench/bare-proxy.mjs: node:http in, undici `stream()` out, nothing",
  "  else) is the floor for any proxy on Node here; about half of its CPU is the kernel's (2 reads and 2 writes per",
  "  request over loopback, where the receiver's TCP work runs on the sender's CPU) and the rest Node's HTTP parser,",
  "  streams and promises. The gateway adds the Bearer check (a cache hit and a look in the revocation view: no store",
  "  read), the header policy both ways (verdicts remembered per upstream and per header name), the exchange registry",
  "  for heartbeats and shutdown (the exchange is the upstream request's abort signal too), and an access line built",
  "  from known-safe fields with no redaction pass. Per request that is a handful of objects. Garbage collection was",
  "  the rest, until two retainers were found: a `Set` of exchanges (now an array with slots, src/rs/relays.ts) and V8's",
  "  allocation-site pretenuring, which the proxy's exchanges fed until every request's ~6 KB survived each scavenge",
  "  (2–3 MB promoted per scavenge, 10–15 ms scavenges); it is off in the gateway's process (src/pretenuring.ts), and",
  "  the CPU row shows the same build with it left on, measured in the same rounds.",
  "- **Throughput against nginx.** nginx spends a few µs of user CPU per request where Node's HTTP parser, streams and",
  "  promises spend tens; the bare Node proxy reaches well under 60% of nginx on its own.",
  "- **One worker and two.** On this 2-core machine wrk, the upstream and the proxy share the cores: a second worker",
  "  gets only what wrk and the upstream leave, so neither nginx nor the gateway doubles; the ratio of the two nginx",
  "  rows is the most the machine allows. With 3 or more cores the proxies are pinned away from wrk.",
  "- **Revocation propagation.** Bounded by how the store tells each process (Redis pub/sub, SQLite's change counter",
  "  polled every few hundred ms); bench/revocation.ts measures it: two gateways on one store, one revokes, the other is polled.",
  "- **Token validations with no cache.** jose runs HMAC and AES-GCM through WebCrypto, each a job on libuv's thread pool",
  "  and back. The gateway imports its keys once, and `/mcp` checks a token's signature and seal only on its first use;",
  "  expiry, audience and revocation are checked on every request.",
  "- **p99 latency.** Scavenges of about 1 ms land on 1% of requests, and on this 2-core",
  "  machine the gateway shares the cores with wrk and the upstream; runs differ by tens of percent from one minute to",
  "  the next, so this row holds in some runs and not in others.",
  "- **File descriptors right after streams close.** The upstream sees every stream closed at once; the gateway then",
  "  briefly holds one new, unused connection per aborted stream: undici re-queues an aborted request and reconnects",
  "  for it (nodejs/undici#5845, fix pending in #5846). These connections are reused by later requests or closed when",
  "  the upstream drops idle connections.",
];

/** Written as Prettier would format it, so `prettier --check .` stays clean after a run. */
export async function writePerformanceDoc(report: Report): Promise<string> {
  const path = join(ROOT, "docs", "performance.md");
  const text = [
    "# Performance",
    "",
    "Generated by `npm run bench` (bench/run.ts); do not edit by hand, run it again. The gateway is",
    "measured against the same upstream reached directly (the physical limit on this machine) and",
    "through nginx (the reference proxy), in alternating rounds of one run; figures are medians over",
    "the rounds. The machine has few cores that the load generator, the upstream and the proxy under",
    "test all share, so read the ratios and the added latency rather than the absolute numbers.",
    "",
    `- Date: ${report.date}`,
    `- Machine: ${report.machine}`,
    `- Versions: ${report.versions}`,
    `- Run: \`npm run bench\` (${report.wallSeconds.toFixed(0)} s wall clock for this run)`,
    ...report.settings.map((s) => `- ${s}`),
    "",
    ...markdownTable(report.rows),
    "",
    ...report.notes.map((n) => `- ${n}`),
    "",
    ...WHAT_BOUNDS_IT,
    "",
    "## Running it",
    "",
    "`npm run bench` needs Debian's `nginx` and `wrk` (`apt-get install -y nginx wrk`); without one it",
    "says so, runs what it can and marks the rest as not measured. Settings, by environment variable:",
    "",
    "- `BENCH_ROUNDS` (5): alternating rounds per comparison; `BENCH_SECONDS` (5): length of a saturation run;",
    "  `BENCH_LATENCY_SECONDS` (6) and `BENCH_RATE` (1000): the fixed-rate run; `BENCH_CONNECTIONS` (16,64,256):",
    "  the concurrencies tried for saturation, each path then measured at its best one;",
    "- `BENCH_STREAMS` (10000, bounded by the fd limit): idle event streams held; `BENCH_MILLION` (1000000) and",
    "  `BENCH_MILLION_MAX_SECONDS` (240): requests for the RSS figure, fewer if the measured throughput",
    "  would not fit them in that time (the row then says how many);",
    "- `BENCH_CPU_REQUESTS` (30000) and `BENCH_CPU_ROUNDS` (3): responses per CPU-time run and alternating rounds;",
    "  `BENCH_SCALING_ROUNDS` (3) and `BENCH_SCALING_SECONDS` (5): the one-worker and two-worker runs;",
    "- `BENCH_PROFILE=1`: the gateway runs with `--cpu-prof`; the profile's path and its top functions by",
    "  self time are printed; such a run is slower and leaves this file as it was;",
    "- `BENCH_STORES=1`: an extra section, on stdout only, comparing the store backends;",
    "- `BENCH_WITHOUT=nginx,wrk`: run as if those were not installed.",
    "",
  ].join("\n");
  writeFileSync(path, await format(text, { ...(await resolveConfig(path)), filepath: path }));
  return path;
}
