import type { IncomingMessage, ServerResponse } from "node:http";
import { finished, Writable } from "node:stream";

/** An SSE comment (WHATWG HTML §9.2.6: lines starting with a colon are ignored by clients). */
const HEARTBEAT = Buffer.from(": keep-alive\n\n");

/**
 * One /mcp request in flight and, once the upstream answered with one, its event stream. It is also
 * the signal that stops its upstream request: undici takes any object with `aborted`, `on`/`once` and
 * `removeListener`, and adds one "abort" listener while its request runs, so one slot is enough and no
 * EventEmitter or AbortController is made per request.
 */
export class Exchange {
  /** Its answer is an event stream, under way (its headers are written): set by `Relays.streaming`. */
  sse = false;
  /** When the client was last sent an event-stream byte (performance.now()). */
  lastWrite = 0;
  /** The last four bytes sent, to tell whether the stream rests between two events. */
  tail = FRESH;
  /** The response closed: the upstream request stops, or never starts. */
  aborted = false;
  /** Where it sits in its registry's list while in flight; -1 once out. */
  slot = -1;
  private onAbort: (() => void) | undefined = undefined;

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    /** The grant whose token it carries: its revocation ends the exchange's GET event stream. */
    readonly grantId: string,
  ) {}

  on(event: string, listener: () => void): this {
    if (event === "abort") this.onAbort = listener;
    return this;
  }

  once(event: string, listener: () => void): this {
    return this.on(event, listener);
  }

  removeListener(event: string, listener: () => void): this {
    if (event === "abort" && this.onAbort === listener) this.onAbort = undefined;
    return this;
  }

  abort(): void {
    this.aborted = true;
    const listener = this.onAbort;
    this.onAbort = undefined;
    listener?.();
  }
}

const EXCHANGE = Symbol("the /mcp exchange of a response");
type Tagged = ServerResponse & { [EXCHANGE]?: Exchange };

/**
 * Every /mcp exchange in flight: event streams get heartbeats when idle, and shutdown ends the
 * streams that wait for events (GET) at once while requests (POST) get a grace period to finish.
 *
 * Held in an array, each exchange knowing its slot, not in a Set: a Set under constant add and delete
 * rebuilds its table every few requests, and V8 leaves each replaced table pointing at its entries and
 * at the next table (for live iterators). Once one replaced table sits in the old generation, every later
 * table and every exchange in it (request, response and what they hold) survives each scavenge and is
 * promoted, to be freed only by a full collection. An array slot is overwritten when its exchange leaves.
 */
export class Relays {
  private readonly open: Exchange[] = [];
  private readonly timer: NodeJS.Timeout | undefined;
  private closing = false;

  /** One listener for every response: the client went away, the answer ended, or shutdown cut it. */
  private readonly closed: (this: Tagged) => void;

  /**
   * `heartbeatMs` 0: no heartbeats. `revoked`: whether the process knows a grant is revoked (the
   * revocation view), so that a GET event stream of one that starts after `endGrant` ends too.
   */
  constructor(
    private readonly heartbeatMs: number,
    private readonly revoked: (grantId: string) => boolean = () => false,
  ) {
    if (heartbeatMs > 0) this.timer = setInterval(() => this.beat(), Math.max(50, Math.floor(heartbeatMs / 3))).unref();
    const open = this.open;
    this.closed = function () {
      const exchange = this[EXCHANGE]!;
      forget(open, exchange);
      // the client went away (or, in MCP 2026-07-28, cancelled by closing the stream): stop upstream too
      exchange.abort();
    };
  }

  get size(): number {
    return this.open.length;
  }

  /** Note an exchange of `grantId` in flight (heartbeats, shutdown, revocation) from before its body is read until its response closes, when its upstream request stops. */
  add(req: IncomingMessage, res: Tagged, grantId: string): Exchange {
    const exchange = new Exchange(req, res, grantId);
    if (res.destroyed) {
      exchange.abort();
      return exchange;
    }
    exchange.slot = this.open.length;
    this.open.push(exchange);
    res[EXCHANGE] = exchange;
    res.on("close", this.closed);
    return exchange;
  }

  /**
   * Where an upstream event stream goes: to the client, noted for heartbeats. When it breaks off
   * upstream, the client's stream ends cleanly and the client resumes with `Last-Event-ID` (MCP
   * transports §Resumability). Any other body that breaks off is cut, never ended as if whole.
   */
  eventStream(exchange: Exchange): Writable {
    const { res } = exchange;
    this.streaming(exchange);
    return new Writable({
      write(chunk: Buffer, _encoding, callback) {
        if (res.writableEnded) return callback();
        exchange.lastWrite = performance.now();
        exchange.tail = tailOf(exchange.tail, chunk);
        if (res.write(chunk)) callback();
        else res.once("drain", () => callback());
      },
      final(callback) {
        endThen(res, callback);
      },
      destroy(_error, callback) {
        if (!res.writableEnded && !res.destroyed) res.end();
        callback(null);
      },
    });
  }

  /**
   * The exchange's answer is an event stream, its headers written: noted for heartbeats. A GET stream
   * ends at once when shutdown has begun or its grant is revoked (it started after `endGrant`).
   */
  streaming(exchange: Exchange): void {
    exchange.sse = true;
    exchange.lastWrite = performance.now();
    if (waitsForEvents(exchange) && (this.closing || this.revoked(exchange.grantId))) exchange.res.end();
  }

  /**
   * A grant was revoked: its streams that wait for events (GET) end now, cleanly, so each client
   * reconnects and hears 401; one that starts later ends as it starts (`streaming`). A call already
   * under way is answered: it was let in before the revocation, and cutting it would show the client a
   * broken connection where a 401 is due next. Returns how many ended.
   */
  endGrant(grantId: string): number {
    let ended = 0;
    for (let i = this.open.length - 1; i >= 0; i--) {
      const x = this.open[i]!;
      if (x.grantId !== grantId || !waitsForEvents(x) || x.res.writableEnded) continue;
      ended++;
      x.res.end();
    }
    return ended;
  }

  /** Stop: event streams waiting for events end now; the rest get until `graceMs` to finish. */
  async drain(graceMs: number): Promise<void> {
    this.closing = true;
    if (this.timer) clearInterval(this.timer);
    // from the end: an exchange that leaves meanwhile moves the last one, already visited, into its slot
    for (let i = this.open.length - 1; i >= 0; i--) {
      const x = this.open[i]!;
      if (waitsForEvents(x)) x.res.end();
    }
    const deadline = performance.now() + graceMs;
    while (this.open.length > 0 && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));
    for (let i = this.open.length - 1; i >= 0; i--) this.open[i]?.res.destroy();
  }

  private beat(): void {
    const idleSince = performance.now() - this.heartbeatMs;
    for (let i = this.open.length - 1; i >= 0; i--) {
      const x = this.open[i]!;
      if (x.sse && x.lastWrite <= idleSince && betweenEvents(x.tail) && !x.res.writableEnded) {
        x.res.write(HEARTBEAT);
        x.lastWrite = performance.now();
      }
    }
  }
}

/** An event stream the client opened with GET to wait for the server's messages: it can end at any moment without losing an answer. */
const waitsForEvents = (x: Exchange): boolean => x.sse && x.req.method === "GET";

/** Take `exchange` out of `open` in O(1): the last exchange moves into its slot, and no slot points at it any more. */
function forget(open: Exchange[], exchange: Exchange): void {
  const slot = exchange.slot;
  if (slot < 0) return;
  exchange.slot = -1;
  const last = open.pop()!;
  if (last === exchange) return;
  open[slot] = last;
  last.slot = slot;
}

/** Run `then` once the response closes (the client went away, the answer ended, or shutdown cut it); at once if it already has. */
export function onClose(res: ServerResponse, then: () => void): void {
  if (res.destroyed) then();
  else res.once("close", then);
}

/**
 * Where a response goes once `ready` settles: writes wait until then (Writable `construct`), and a
 * rejection fails the exchange before anything reached the client. Used to write to the store what
 * the answer will tell the client (src/rs/sessions.ts) before the client can act on it.
 */
export function openedAfter(ready: Promise<void>, open: () => Writable): Writable {
  let target: Writable | undefined;
  return new Writable({
    construct(callback) {
      ready.then(() => {
        target = open();
        callback();
      }, callback);
    },
    write(chunk: Buffer, _encoding, callback) {
      if (target!.write(chunk)) callback();
      else target!.once("drain", () => callback());
    },
    final(callback) {
      endThen(target!, callback);
    },
    destroy(error, callback) {
      // a cut upstream cuts (or, for an event stream, ends) the client's side as it would without this
      if (error && target && !target.destroyed) target.destroy(error);
      callback(error);
    },
  });
}

/** End `target` and call back once it is done: finished, or closed first (`end`'s own callback never comes once the client is gone). */
function endThen(target: Writable | ServerResponse, callback: () => void): void {
  target.end();
  finished(target, { readable: false }, () => callback());
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
