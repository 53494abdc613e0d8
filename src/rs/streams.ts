import type { IncomingMessage, ServerResponse } from "node:http";
import proxyaddr from "proxy-addr";
import { JSONRPC, sendJsonRpcError } from "./jsonrpc.js";
import { onClose } from "./relays.js";

/** Retry-After on a refused event stream: streams end when their clients close them, which no clock says. */
const STREAM_RETRY_AFTER = 10;

/** Which limit a new stream would pass, and its size. */
export interface StreamRefusal {
  over: "grant" | "address";
  limit: number;
}

/**
 * docs/security.md HI9: the event streams (GET /mcp) each grant and each client address hold open on
 * this instance. A GET stream has no end of its own and holds two descriptors (client, upstream), so
 * it is the one counted; a POST's response, event stream or not, ends with its answer.
 */
export class StreamLimits {
  private readonly byGrant = new Map<string, number>();
  private readonly byAddress = new Map<string, number>();

  constructor(
    private readonly perGrant: number,
    private readonly perAddress: number,
  ) {}

  /** Count one more stream, with the function that ends its count (once, however often called), or say which limit it passes. */
  open(grant: string, address: string): (() => void) | StreamRefusal {
    if ((this.byGrant.get(grant) ?? 0) >= this.perGrant) return { over: "grant", limit: this.perGrant };
    if ((this.byAddress.get(address) ?? 0) >= this.perAddress) return { over: "address", limit: this.perAddress };
    add(this.byGrant, grant, 1);
    add(this.byAddress, address, 1);
    let open = true;
    return () => {
      if (!open) return;
      open = false;
      add(this.byGrant, grant, -1);
      add(this.byAddress, address, -1);
    };
  }

  /** Streams counted right now (0 once every one has ended). */
  get size(): number {
    let n = 0;
    for (const count of this.byGrant.values()) n += count;
    return n;
  }
}

/** docs/security.md HI9: count a GET event stream against its grant's and address's limits until its response closes, or refuse it (429). */
export function holdStream(limits: StreamLimits, grant: string, address: string, res: ServerResponse): boolean {
  const held = limits.open(grant, address);
  if (typeof held === "function") {
    onClose(res, held);
    return true;
  }
  const holder = held.over === "grant" ? "This authorization" : "This address";
  const message = `${holder} already holds ${held.limit} open event streams (GET); close one and try again.`;
  sendJsonRpcError(res, 429, null, JSONRPC.serverError, message, { "retry-after": String(STREAM_RETRY_AFTER) });
  return false;
}

function add(counts: Map<string, number>, key: string, by: number): void {
  const count = (counts.get(key) ?? 0) + by;
  if (count > 0) counts.set(key, count);
  else counts.delete(key);
}

/**
 * The client's address as Express's `req.ip` tells it, by the same module (proxy-addr): the socket's
 * peer, or, through each hop `trust` believes, the next address of `X-Forwarded-For` from the right.
 */
export const clientAddress = (req: IncomingMessage, trust: (address: string, hop: number) => boolean): string => proxyaddr(req, trust);
