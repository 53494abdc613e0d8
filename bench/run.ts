/**
 * npm run bench: the gateway against its upstream reached directly and through nginx, every figure
 * of issue 5 in one run, written to docs/performance.md. Any error, timeout or unexpected status in
 * a measurement fails the run (exit 1) after the table is written with that row marked FAILED.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startNginx } from "./nginx.js";
import { median } from "./measure.js";
import { hardFdLimit, installCleanup, stop, tempDir, which } from "./processes.js";
import { busiestProfile, originLine, topLines } from "./profile.js";
import { machine, markdownTable, versions, writePerformanceDoc, type Row } from "./report.js";
import { cpuPerRequestAll } from "./cpu.js";
import { revocationPropagation } from "./revocation.js";
import { cpuRow, crossingRows, latencyRows, millionRow, revocationRow, saturationRow, scalingRows, streamsRow, validationsRows, type Outcome } from "./rows.js";
import { latencyAtRate, millionRequests, saturation, sseCrossing, type Path, type Settings } from "./sections.js";
import { checkPost, startBareProxy, startGateway, startUpstream } from "./stack.js";
import { holdIdleStreams, streamBound } from "./streams.js";
import { validationsPerSecond } from "./validations.js";
import { scaling } from "./workers.js";

const started = performance.now();
const elapsed = () => (performance.now() - started) / 1000;
const log = (line: string) => console.log(`[${elapsed().toFixed(0).padStart(3)} s] ${line}`);
const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback);

installCleanup();
const hard = hardFdLimit();
const ownSoft = Number(spawnSync("sh", ["-c", "ulimit -Sn"], { encoding: "utf8" }).stdout.trim()) || 1024;
const settings: Settings = {
  rounds: env("BENCH_ROUNDS", 5),
  seconds: env("BENCH_SECONDS", 5),
  connections: (process.env.BENCH_CONNECTIONS ?? "16,64,256").split(",").map(Number),
  latencySeconds: env("BENCH_LATENCY_SECONDS", 6),
  rate: env("BENCH_RATE", 1000),
  rateConnections: 16,
  sseEvents: 200,
  sseIntervalMs: 10,
  streams: Math.min(env("BENCH_STREAMS", 10_000), streamBound(hard), ownSoft - 200),
  million: env("BENCH_MILLION", 1_000_000),
  millionMaxSeconds: env("BENCH_MILLION_MAX_SECONDS", 240),
};
const cpuSettings = { requests: env("BENCH_CPU_REQUESTS", 30_000), connections: 16, rounds: env("BENCH_CPU_ROUNDS", 3) };
const scalingSettings = { rounds: env("BENCH_SCALING_ROUNDS", 3), seconds: env("BENCH_SCALING_SECONDS", 5) };
const loadAtStart = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
const profileDir = process.env.BENCH_PROFILE === "1" ? mkdtempSync(join(tmpdir(), "mcp-gateway-cpuprofile-")) : undefined;

/** BENCH_WITHOUT=nginx,wrk runs as if they were not installed (to check what a machine without them gets). */
const without = (process.env.BENCH_WITHOUT ?? "").split(",");
const wrkBinary = without.includes("wrk") ? undefined : which("wrk");
const nginxBinary = without.includes("nginx") ? undefined : which("nginx", ["/usr/sbin/nginx"]);
const missing = [nginxBinary ? "" : "nginx", wrkBinary ? "" : "wrk"].filter(Boolean);
const failures: string[] = [];

async function attempt<T>(title: string, needs: string[], measure: () => Promise<T>): Promise<Outcome<T>> {
  const absent = needs.filter((tool) => missing.includes(tool));
  if (absent.length) {
    log(`${title}: skipped, needs ${absent.join(" and ")} (apt-get install -y ${absent.join(" ")})`);
    return { skipped: `${absent.join(", ")} missing` };
  }
  log(title);
  try {
    return { ok: await measure() };
  } catch (error) {
    const message = (error as Error).message;
    failures.push(`${title}: ${message}`);
    console.error(`\n*** BENCH FAILED: ${title}\n${message}\n`);
    return { failed: message };
  }
}

console.log(`# npm run bench — ${new Date().toISOString()}`);
console.log(`${machine()}\n${versions({ nginx: nginxBinary, wrk: wrkBinary })}\nload average at start: ${loadAtStart}`);
if (missing.length) console.log(`\nMISSING: ${missing.join(", ")}. Add with: apt-get install -y ${missing.join(" ")}\n`);
console.log(
  `fd limit: hard ${hard} (children get it as their soft limit); each idle stream costs the gateway 2 sockets, so at most floor((${hard} − 100) / 2) = ${streamBound(hard)} streams: holding ${settings.streams}`,
);
if (nginxBinary) console.log("nginx: one worker process, no master (one core, as the gateway is one Node thread)");
if (profileDir) console.log(`BENCH_PROFILE=1: the gateway runs with --cpu-prof (slower); profile in ${profileDir}`);

const dir = tempDir("mcp-gateway-bench");
const upstream = await startUpstream();
const gateway = await startGateway(upstream, dir, profileDir ? { profileDir } : {});
mkdirSync(join(dir, "nginx"));
const nginx = nginxBinary ? await startNginx(nginxBinary, join(dir, "nginx"), upstream.mcpUrl, hard) : undefined;
const paths: Path[] = [
  { name: "direct", url: upstream.mcpUrl },
  ...(nginx ? [{ name: "nginx" as const, url: nginx.mcpUrl }] : []),
  { name: "gateway", url: gateway.mcpUrl, authorization: gateway.authorization },
];
const bare = await startBareProxy(upstream);
const bareNode: Path = { name: "bare", url: bare.mcpUrl };
for (const path of [...paths, bareNode]) await checkPost(path.url, path.authorization);
log(`upstream ${upstream.mcpUrl}, gateway ${gateway.mcpUrl} (pid ${gateway.pid})${nginx ? `, nginx ${nginx.mcpUrl}` : ""}: each answered a tools/call`);

const w = { binary: wrkBinary ?? "", dir };
const validations = await attempt("token validations in this process, 3 s without and 3 s with the verified-token cache", [], () =>
  validationsPerSecond(gateway.tokenContext, gateway.authorization, gateway.mcpUrl, 3),
);
const sat = await attempt(
  `saturation: -c ${settings.connections.join("/")} tried per path, then ${settings.rounds} rounds of ${settings.seconds} s`,
  ["wrk"],
  () => saturation(w, [...paths, bareNode], settings, log),
);
const latency = await attempt(
  `latency at ${settings.rate} req/s over ${settings.rateConnections} connections, ${settings.rounds} rounds of ${settings.latencySeconds} s`,
  ["wrk"],
  () => latencyAtRate(w, paths, settings, log),
);
const crossing = await attempt(`SSE crossing: ${settings.sseEvents} events ${settings.sseIntervalMs} ms apart per path and round`, [], () =>
  sseCrossing(paths, upstream.controlUrl, settings, log),
);
const cpu = await attempt(
  `CPU per request: ${cpuSettings.rounds} alternating rounds of ${cpuSettings.requests} requests at -c${cpuSettings.connections} per path`,
  ["wrk"],
  async () => {
    // the same build with V8's default kept (src/pretenuring.ts), side by side
    const pretenured = await startGateway(upstream, dir, { nodeFlags: ["--allocation-site-pretenuring"] });
    try {
      return await cpuPerRequestAll(
        w,
        [
          { ...paths[0]!, pid: upstream.child.pid! },
          ...(nginx ? [{ name: "nginx" as const, url: nginx.mcpUrl, pid: nginx.child.pid! }] : []),
          { ...bareNode, pid: bare.child.pid! },
          { name: "gateway", url: gateway.mcpUrl, authorization: gateway.authorization, pid: gateway.pid },
          { name: "pretenured", url: pretenured.mcpUrl, authorization: pretenured.authorization, pid: pretenured.pid },
        ],
        cpuSettings,
        log,
      );
    } finally {
      await pretenured.stop();
    }
  },
);
const gatewayRate = "ok" in sat ? median(sat.ok.rates.get("gateway")!) : undefined;
const million = await attempt(`RSS over ${settings.million} requests`, ["wrk"], async () => {
  if (gatewayRate === undefined || !("ok" in sat)) throw new Error("needs the saturation figures, which failed");
  return millionRequests(w, gateway, sat.ok.connections.get("gateway")!, gatewayRate, settings, log);
});
await gateway.stop();
const streams = await attempt(`idle streams: ${settings.streams} GET /mcp held through a freshly started gateway`, [], async () => {
  const fresh = await startGateway(upstream, dir, { ...(profileDir ? { profileDir } : {}), nodeFlags: ["--inspect-port=127.0.0.1:0"] });
  try {
    return await holdIdleStreams(fresh, upstream.controlUrl, settings.streams);
  } finally {
    await fresh.stop();
  }
});

const revocation = await attempt("revocation propagation: /revoke on A, refused by B, two gateways on SQLite then on Redis", [], () =>
  revocationPropagation(upstream),
);

if (nginx) await stop(nginx.child, "SIGQUIT");
await stop(bare.child);
const scaled = await attempt(
  `one worker and two: gateway --workers 1/2 and nginx 1/2 workers, ${scalingSettings.rounds} alternating rounds of ${scalingSettings.seconds} s`,
  ["wrk"],
  () => scaling(w, upstream, { nginx: nginxBinary, hard, ...scalingSettings }, log),
);
await stop(upstream.child);

const rows: Row[] = [
  saturationRow(sat),
  cpuRow(cpu),
  ...scalingRows(scaled),
  ...latencyRows(latency, settings.rate),
  ...crossingRows(crossing),
  streamsRow(streams, settings.streams),
  ...validationsRows(validations),
  millionRow(million, settings.million),
  revocationRow(revocation),
];
const notes = [
  "nginx: Debian's, one worker process and no master (`worker_processes 1; master_process off`), so one core as the gateway is one Node thread; `keepalive 64` to the upstream, `proxy_buffering off`, no access log.",
  "Load: Debian's wrk, one thread; every request a `POST /mcp` `tools/call` with `Accept: application/json, text/event-stream` (and the gateway's Bearer token). Any socket error, timeout or status ≥ 400 fails the run; the paced and million runs also count every non-2xx status.",
  `Saturation: each path at the concurrency (of ${settings.connections.join(", ")}) that gave it the most requests/s in a 2 s trial. On ${settings.rounds === 1 ? "one round" : `${settings.rounds} alternating rounds`}, the median.`,
  `Latency: wrk's, from writing a request to the end of its response, at a fixed rate paced by a Lua delay() over ${settings.rateConnections} connections (wrk 4.1 has no -R); the rate achieved is shown. Medians of the rounds' p50 and p99.`,
  `CPU per request: utime + stime (every thread) from /proc/<pid>/stat of the proxy's processes (nginx's or the gateway's primary and all its descendants), read before and after a wrk run that stops at ${cpuSettings.requests} responses at -c${cpuSettings.connections}, divided by the responses; the upstream's and wrk's CPU are not counted, except in the direct column, which is the upstream's own for scale. One warm-up run per path, then ${cpuSettings.rounds} alternating rounds; the median. /proc counts in ticks of 10 ms: over a run of about a second of CPU that is 1%. "With V8's pretenuring left on": a second gateway process of the same build run as \`node --allocation-site-pretenuring dist/main.js\` (src/pretenuring.ts), in the same rounds.`,
  "One worker and two: each proxy on its own, its processes started afresh, at -c64; the gateway with `--workers 1` and `--workers 2` over one SQLite store, nginx with one worker (no master) and with a master and two workers. wrk is pinned with `taskset -c` to the last CPU; with 3 or more CPUs the proxies (every thread of every process) to the others; on 2 CPUs they cannot be kept apart.",
  "SSE crossing: the upstream stamps each event with process.hrtime.bigint() (CLOCK_MONOTONIC) right before writing it; a raw node:http client in the bench process stamps it on arrival. One stream open at a time.",
  `Idle streams: a freshly started gateway (so the figure is not blurred by the garbage of the runs before), with \`--inspect-port\` so the bench can open its inspector (SIGUSR1) and run full collections (HeapProfiler.collectGarbage) before each reading; one batch opened and closed first as a warm-up; raw sockets, opened in batches of 250, each checked for 200 and text/event-stream; VmRSS from /proc with none, half and all of them open. The hard fd limit (${hard}) bounds the count: 2 gateway sockets per stream.`,
  "Validations: `validateAccessToken` (src/grants/validate.ts) awaited in a loop in the bench process with a MemoryStore, without and with a `VerifiedTokens` cache. jose's WebCrypto work runs on libuv's thread pool, hence the figure per CPU-second too.",
  "RSS growth: the mean of VmRSS samples (every 0.5 s) over the last 10 s of a 15 s warm-up, against the same over the last 10 s of the run, both under the same load; wrk stops at exactly the goal's count of responses. Idle RSS is not used: when an idle Node process returns memory depends on when V8's memory reducer happens to run.",
  "Revocation propagation: two gateway processes on one store (SQLite file, then Redis with appendfsync everysec), one public URL; per grant, B verifies the token, A answers /revoke, then B is sent tools/call back to back until it answers 401: the time from A's answer to B's refusal (its resolution is one proxied request). The bound is by design: SQLite polls every 250 ms, Redis publishes; a view that cannot vouch for 1 s reads the store.",
  "The machine's cores are shared by wrk, the upstream and the proxy under test: the direct path has the most CPU to itself.",
  ...(profileDir ? ["This run had the gateway under --cpu-prof, which slows it."] : []),
];
const table = markdownTable(rows);
console.log(`\n${table.join("\n")}\n`);
if ("ok" in sat && sat.ok.rates.has("nginx")) {
  const [d, n, g] = (["direct", "nginx", "gateway"] as const).map((p) => median(sat.ok.rates.get(p)!));
  console.log(
    `ratios (requests/s at saturation): gateway/nginx ${(g! / n!).toFixed(2)}, gateway/direct ${(g! / d!).toFixed(2)}, nginx/direct ${(n! / d!).toFixed(2)}`,
  );
}

if (profileDir) {
  const busiest = busiestProfile(profileDir);
  if (!busiest) console.log(`\nno .cpuprofile in ${profileDir}: the gateway did not exit cleanly`);
  else
    console.log(
      `\ngateway CPU profile: ${busiest.path}\n${(busiest.busyUs / 1e6).toFixed(1)} s busy over the run; by origin: ${originLine(busiest)}\ntop 20 functions by self time (share of busy time):\n${topLines(busiest).join("\n")}\n`,
    );
}

if (process.env.BENCH_STORES === "1") {
  const { benchStores } = await import("./store.js");
  log("store backends (BENCH_STORES=1; stdout only)");
  console.log(`${(await benchStores()).join("\n")}\n`);
}

if (profileDir) log("docs/performance.md left as it was: a profiling run's figures are slower than the gateway's own");
else {
  const path = await writePerformanceDoc({
    date: new Date().toISOString().slice(0, 10),
    machine: machine(),
    versions: versions({ nginx: nginxBinary, wrk: wrkBinary }),
    settings: [
      `${settings.rounds} round${settings.rounds === 1 ? "" : "s"}; saturation ${settings.seconds} s per run; ${settings.rate} req/s for ${settings.latencySeconds} s per run; ${settings.sseEvents} SSE events per path and round; ${settings.streams} idle streams`,
      `Load average (1, 5, 15 min) when the run started: ${loadAtStart} (anything else running skews the figures)`,
    ],
    rows,
    notes,
    wallSeconds: elapsed(),
  });
  log(`wrote ${path}`);
}
log(`${elapsed().toFixed(0)} s wall clock`);
if (failures.length) {
  console.error(`\n*** BENCH FAILED (${failures.length}):\n${failures.map((f) => `- ${f.split("\n")[0]}`).join("\n")}`);
  process.exit(1);
}
process.exit(0);
