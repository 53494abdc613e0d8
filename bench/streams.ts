/**
 * Gateway memory per idle event stream: N GET /mcp streams held open on raw sockets (the cheapest
 * client), opened in batches; RSS from /proc before and after, once it settles.
 */
import { connect, type Socket } from "node:net";
import { checkPost, type GatewayUnderTest } from "./stack.js";
import { openInspector, type Inspector } from "./inspector.js";
import { openFds, rssKb, sleep } from "./processes.js";
import { upstreamStreams } from "./sse.js";

export interface IdleStreams {
  streams: number;
  /** RSS (KB) after full collections with none, half and all of the streams open. */
  beforeKb: number;
  halfKb: number;
  afterKb: number;
  perStreamKb: number;
  /** Per stream between half and all open. */
  marginalKb: number;
  /** V8's JS heap per stream (KB), none to all open. */
  heapPerStreamKb: number;
  fdsBefore: number;
  fdsHeld: number;
  fdsAfter: number;
}

/** Each stream holds two gateway sockets (client, upstream); keep 100 descriptors for everything else. */
export const streamBound = (hardLimit: number): number => Math.floor((hardLimit - 100) / 2);

function openRawStream(port: number, authorization: string, all: Socket[]): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    all.push(socket);
    let head = "";
    const fail = (why: string) => {
      socket.destroy();
      reject(new Error(why));
    };
    socket.setEncoding("utf8");
    socket.once("connect", () =>
      socket.write(`GET /mcp HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: ${authorization}\r\nAccept: text/event-stream\r\n\r\n`),
    );
    socket.on("data", function onHead(chunk: string) {
      head += chunk;
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) return;
      socket.off("data", onHead);
      const headers = head.slice(0, end);
      if (!headers.startsWith("HTTP/1.1 200") || !/^content-type: *text\/event-stream/im.test(headers)) return fail(`not an event stream:\n${headers}`);
      socket.on("data", () => {});
      resolve(socket);
    });
    socket.once("error", (error) => fail(error.message));
    socket.once("close", () => fail(`closed before its headers: ${head.slice(0, 200)}`));
  });
}

/** Open `size` streams at once; throws unless every one answered 200 text/event-stream within 30 s. */
async function openBatch(port: number, authorization: string, size: number, all: Socket[]): Promise<void> {
  const results = await Promise.allSettled(
    Array.from({ length: size }, () =>
      Promise.race([openRawStream(port, authorization, all), sleep(30_000).then(() => Promise.reject(new Error("no response headers within 30 s")))]),
    ),
  );
  const failed = results.filter((r) => r.status === "rejected");
  if (failed.length) throw new Error(`${failed.length} of a batch of ${size} streams did not open: ${(failed[0]!.reason as Error).message}`);
}

interface Reading {
  rssKb: number;
  heapBytes: number;
}

/** Full collections a second apart until RSS holds still (V8 and malloc return freed pages lazily). */
async function afterFullGc(pid: number, inspector: Inspector): Promise<Reading> {
  let last = rssKb(pid);
  for (let i = 0; i < 8; i++) {
    await inspector.collectGarbage();
    await sleep(1000);
    const now = rssKb(pid);
    if (Math.abs(now - last) / last < 0.005) break;
    last = now;
  }
  return { rssKb: rssKb(pid), heapBytes: await inspector.heapUsed() };
}

/**
 * Hold `count` streams and read memory after full collections with none, half and all of them
 * open: (all − none) / count is the figure, (all − half) / (count − half) the cost of one more.
 * The gateway must have been started with --inspect-port (see inspector.ts).
 */
export async function holdIdleStreams(gateway: GatewayUnderTest, controlUrl: string, count: number, batch = 250): Promise<IdleStreams> {
  const port = Number(new URL(gateway.mcpUrl).port);
  const inspector = await openInspector(gateway.pid, gateway.stderrPath);
  await upstreamStreams(controlUrl, 0);
  const fdsBefore = openFds(gateway.pid);
  // One batch opened and closed first: the code paths compiled and the pools grown are not per-stream costs
  const warmUp: Socket[] = [];
  await openBatch(port, gateway.authorization, batch, warmUp).finally(() => warmUp.forEach((socket) => socket.destroy()));
  await upstreamStreams(controlUrl, 0);
  const before = await afterFullGc(gateway.pid, inspector);
  const half = Math.floor(count / 2);
  const all: Socket[] = [];
  let atHalf = before;
  try {
    for (let opened = 0; opened < count;) {
      const size = Math.min(batch, (opened < half ? half : count) - opened);
      await openBatch(port, gateway.authorization, size, all).catch((error: Error) => {
        throw new Error(`${opened} of ${count} idle streams open, then: ${error.message}`);
      });
      opened += size;
      if (opened === half) atHalf = await afterFullGc(gateway.pid, inspector);
    }
    await upstreamStreams(controlUrl, count);
    const after = await afterFullGc(gateway.pid, inspector);
    const fdsHeld = openFds(gateway.pid);
    for (const socket of all) socket.destroy();
    await upstreamStreams(controlUrl, 0, 60_000);
    for (let waited = 0; openFds(gateway.pid) > fdsBefore + 5 && waited < 10_000; waited += 100) await sleep(100);
    await checkPost(gateway.mcpUrl, gateway.authorization);
    return {
      streams: count,
      beforeKb: before.rssKb,
      halfKb: atHalf.rssKb,
      afterKb: after.rssKb,
      perStreamKb: (after.rssKb - before.rssKb) / count,
      marginalKb: (after.rssKb - atHalf.rssKb) / (count - half),
      heapPerStreamKb: (after.heapBytes - before.heapBytes) / 1024 / count,
      fdsBefore,
      fdsHeld,
      fdsAfter: openFds(gateway.pid),
    };
  } finally {
    for (const socket of all) socket.destroy();
    inspector.close();
  }
}
