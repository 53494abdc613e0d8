import type { IncomingMessage } from "node:http";
import { Readable } from "node:stream";
import { OAuthError } from "../errors.js";

/** docs/security.md HI2: the largest /mcp request body relayed. Content-Length is checked first; chunked bodies are counted as they stream. */
export const MCP_BODY_LIMIT = 4 * 1024 * 1024;
/** Bodies up to this size are read whole before they go upstream: one write, and an error can name the request's id. */
const SMALL_BODY = 64 * 1024;

/** What goes upstream: nothing, the body read whole, or the body as it streams. */
export interface RequestBody {
  body: Buffer | Readable | null;
  /** Whether a streamed body went over MCP_BODY_LIMIT (the relay then failed on it). */
  overLimit: () => boolean;
}

const none = (): boolean => false;

/** The declared body size, when there is one. */
export const declaredLength = (req: IncomingMessage): number | undefined =>
  req.headers["content-length"] === undefined ? undefined : Number(req.headers["content-length"]);

/**
 * The body of a POST: small ones whole, larger ones streamed. Node's parser ends a body at its
 * Content-Length, already checked: only chunked bodies need counting. Undefined when the client went
 * away before sending it all.
 */
export async function requestBody(req: IncomingMessage, length: number | undefined): Promise<RequestBody | undefined> {
  if (req.method !== "POST") return { body: null, overLimit: none };
  if (length !== undefined && length <= SMALL_BODY) {
    const whole = arrived(req, length) ?? (await readWhole(req));
    return whole && { body: whole, overLimit: none };
  }
  if (length !== undefined) return { body: req, overLimit: none };
  const { chunks, overLimit } = counted(req, MCP_BODY_LIMIT);
  return { body: chunks, overLimit };
}

/** The body when it was read whole (an error can then name the request's id). */
export const wholeBody = (body: RequestBody["body"]): Buffer | undefined => (Buffer.isBuffer(body) ? body : undefined);

/**
 * 413, and the connection closes after it: the rest of the body is never read (RFC 9110 §15.5.14).
 * Until then the socket stays whole, so the client reads the answer rather than a reset.
 */
export function refuseBody(res: { setHeader(name: string, value: string): unknown }): never {
  res.setHeader("Connection", "close");
  throw new OAuthError("invalid_request", `The request body is larger than ${MCP_BODY_LIMIT / 1024 / 1024} MB.`, 413);
}

/**
 * The whole body when Node's parser has already buffered all of it (it usually came in the packet of the
 * headers, parsed before the token check resumed): taken in one read, with no listener, promise or copy.
 */
function arrived(req: IncomingMessage, length: number): Buffer | undefined {
  // the parser ends a body at its Content-Length: once that many bytes wait, no more belong to it
  if (length === 0 || req.readableLength !== length) return undefined;
  return (req.read(length) as Buffer | null) ?? undefined;
}

/** The whole body, or undefined when the client went away before sending it all. */
function readWhole(req: IncomingMessage): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.once("end", () => resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)));
    req.once("close", () => req.complete || resolve(undefined));
  });
}

/** The request body as it streams, ending in an error once more than `limit` bytes went by. */
function counted(source: Readable, limit: number): { chunks: Readable; overLimit: () => boolean } {
  let total = 0;
  async function* chunks() {
    for await (const chunk of source.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (total > limit) throw new Error("request body over the limit");
      yield chunk;
    }
  }
  return { chunks: Readable.from(chunks(), { objectMode: false }), overLimit: () => total > limit };
}

/** The body whole, "over" past MCP_BODY_LIMIT (docs/security.md HI2), undefined when the client went away first. */
export async function bodyWhole(req: IncomingMessage): Promise<Buffer | "over" | undefined> {
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of req as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (total > MCP_BODY_LIMIT) return "over";
      chunks.push(chunk);
    }
  } catch {
    return undefined;
  }
  return Buffer.concat(chunks);
}

/**
 * The body of a POST read whole, for an installed policy: it then sees the call of every request, however
 * large (up to MCP_BODY_LIMIT, past which 413) or chunked, and a batch (security.md ST4).
 */
export async function requestBodyWhole(req: IncomingMessage, res: { setHeader(name: string, value: string): unknown }): Promise<RequestBody | undefined> {
  if (req.method !== "POST") return { body: null, overLimit: none };
  const whole = await bodyWhole(req);
  if (whole === "over") return refuseBody(res);
  return whole && { body: whole, overLimit: none };
}
