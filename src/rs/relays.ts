import type { IncomingMessage, ServerResponse } from "node:http";
import type { Readable } from "node:stream";

/** An SSE comment (WHATWG HTML §9.2.6: lines starting with a colon are ignored by clients). */
const HEARTBEAT = Buffer.from(": keep-alive\n\n");

interface Relay {
  req: IncomingMessage;
  res: ServerResponse;
  /** The response is an event stream. */
  sse: boolean;
  /** When the client was last sent something (ms, performance.now()). */
  lastWrite: number;
  /** The last four bytes sent, to tell whether the stream rests between two events. */
  tail: number;
}

/**
 * Every /mcp exchange in flight: event streams get heartbeats when idle, and shutdown ends the
 * streams that wait for events (GET) at once while requests (POST) get a grace period to finish.
 */
export class Relays {
  private readonly open = new Set<Relay>();
  private readonly timer: NodeJS.Timeout | undefined;
  private closing = false;

  /** `heartbeatMs` 0: no heartbeats. */
  constructor(private readonly heartbeatMs: number) {
    if (heartbeatMs > 0) this.timer = setInterval(() => this.beat(), Math.max(50, Math.floor(heartbeatMs / 3))).unref();
  }

  get size(): number {
    return this.open.size;
  }

  /**
   * Relay an upstream body to the client. An event stream that breaks off upstream ends cleanly
   * for the client, which resumes with `Last-Event-ID` (MCP transports §Resumability); any other
   * body that breaks off is cut, so the client cannot take a truncated body for a whole one.
   */
  relay(req: IncomingMessage, res: ServerResponse, body: Readable, sse: boolean): Promise<void> {
    const relay: Relay = { req, res, sse, lastWrite: performance.now(), tail: FRESH };
    this.open.add(relay);
    if (this.closing && req.method === "GET") res.end();
    return new Promise<void>((resolve) => {
      const done = () => {
        this.open.delete(relay);
        resolve();
      };
      body.on("data", (chunk: Buffer) => {
        if (sse) {
          relay.lastWrite = performance.now();
          relay.tail = tailOf(relay.tail, chunk);
        }
        if (!res.write(chunk)) body.pause();
      });
      res.on("drain", () => body.resume());
      body.once("end", () => res.end());
      body.once("error", () => (sse && !res.destroyed ? res.end() : res.destroy()));
      res.once("close", () => {
        if (!body.destroyed) body.destroy();
        done();
      });
    });
  }

  /** Stop: event streams waiting for events end now; the rest get until `graceMs` to finish. */
  async drain(graceMs: number): Promise<void> {
    this.closing = true;
    if (this.timer) clearInterval(this.timer);
    for (const r of this.open) if (r.req.method === "GET") r.res.end();
    const deadline = performance.now() + graceMs;
    while (this.open.size > 0 && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));
    for (const r of this.open) r.res.destroy();
  }

  private beat(): void {
    const idleSince = performance.now() - this.heartbeatMs;
    for (const r of this.open)
      if (r.sse && r.lastWrite <= idleSince && betweenEvents(r.tail) && !r.res.writableEnded) {
        r.res.write(HEARTBEAT);
        r.lastWrite = performance.now();
      }
  }
}

/** The stream's last four bytes packed in a number; a fresh stream rests as if after an event. */
const FRESH = 0x0a0a;

function tailOf(previous: number, chunk: Buffer): number {
  let tail = previous;
  for (let i = Math.max(0, chunk.length - 4); i < chunk.length; i++) tail = ((tail << 8) | chunk[i]!) >>> 0;
  return tail;
}

/** WHATWG HTML §9.2.5: an event ends with a blank line, so the stream rests once two line ends (CRLF, LF or CR) close it. */
function betweenEvents(tail: number): boolean {
  let ends = 0;
  for (let shift = 0; shift < 32 && ends < 2;) {
    const byte = (tail >>> shift) & 0xff;
    if (byte === 0x0a && ((tail >>> (shift + 8)) & 0xff) === 0x0d && shift < 24) shift += 16;
    else if (byte === 0x0a || byte === 0x0d) shift += 8;
    else break;
    ends++;
  }
  return ends >= 2;
}
