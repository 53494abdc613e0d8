/**
 * SSE event crossing time: one GET /mcp stream open on one path at a time; the upstream, told on its
 * control port, stamps each event with its CLOCK_MONOTONIC just before writing it; the receiver
 * stamps the chunk it arrives in. The difference is the time from the upstream's write to ours.
 */
import { request, type IncomingMessage } from "node:http";

export interface StreamEvents {
  /** Receive − send, µs, one per event. */
  crossingUs: number[];
}

/** Open one event stream; resolves once its headers arrived (200, text/event-stream), or throws. */
export function openEventStream(url: string, authorization: string | undefined): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: "GET", agent: false, headers: { accept: "text/event-stream", ...(authorization ? { authorization } : {}) } }, (res) => {
      const type = String(res.headers["content-type"] ?? "");
      if (res.statusCode === 200 && type.startsWith("text/event-stream")) return resolve(res);
      res.resume();
      reject(new Error(`GET ${url} answered ${res.statusCode} ${type}, not 200 text/event-stream`));
    });
    req.once("error", reject);
    req.end();
  });
}

/** Wait until the upstream holds exactly `open` streams (closes cross the proxies asynchronously). */
export async function upstreamStreams(controlUrl: string, open: number, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const { open: now } = (await (await fetch(`${controlUrl}/streams`)).json()) as { open: number };
    if (now === open) return;
    if (Date.now() > deadline) throw new Error(`the upstream holds ${now} event streams, expected ${open} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const STAMP = /"t":"(\d+)"/g;

/** Hold a stream on `url` while the upstream emits `count` events `intervalMs` apart; every one must arrive. */
export async function measureCrossing(
  url: string,
  authorization: string | undefined,
  controlUrl: string,
  count: number,
  intervalMs: number,
): Promise<StreamEvents> {
  await upstreamStreams(controlUrl, 0);
  const stream = await openEventStream(url, authorization);
  const crossingUs: number[] = [];
  let pending = "";
  stream.setEncoding("utf8");
  stream.on("data", (chunk: string) => {
    const received = process.hrtime.bigint();
    pending += chunk;
    const end = pending.lastIndexOf("\n\n");
    if (end < 0) return;
    for (const [, sent] of pending.slice(0, end).matchAll(STAMP)) crossingUs.push(Number(received - BigInt(sent!)) / 1000);
    pending = pending.slice(end + 2);
  });
  try {
    const answer = await fetch(`${controlUrl}/emit?count=${count}&interval=${intervalMs}`, { method: "POST" });
    const { receivers } = (await answer.json()) as { receivers: number };
    if (receivers !== 1) throw new Error(`the upstream emitted to ${receivers} streams, not the 1 under test`);
    const deadline = Date.now() + 5_000;
    while (crossingUs.length < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    if (crossingUs.length !== count) throw new Error(`${url}: ${crossingUs.length} of ${count} events arrived`);
    return { crossingUs };
  } finally {
    stream.destroy();
  }
}
