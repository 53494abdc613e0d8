import { Agent, fetch as undiciFetch } from "undici";

/**
 * The one pooled HTTP dispatcher for everything the gateway sends upstream: OAuth calls and the
 * /mcp proxy. Timeouts cover connecting and waiting for response headers only, so idle event
 * streams stay open (DESIGN §5). No cap on connections per upstream: every open event stream
 * holds one, and a capped pool would leave the next stream waiting for a free connection forever.
 */
export function createDispatcher(): Agent {
  return new Agent({
    connect: { timeout: 10_000 },
    headersTimeout: 120_000,
    bodyTimeout: 0,
    keepAliveTimeout: 30_000,
  });
}

export type Fetch = (url: string, init: RequestInit) => Promise<Response>;

/** The largest OAuth or discovery answer the gateway reads from an upstream: metadata and token responses are a few KB. */
export const OAUTH_MAX_BYTES = 256 * 1024;

/**
 * A fetch over the shared dispatcher for short OAuth exchanges and discovery: one deadline for the
 * whole exchange, body included (a caller's `signal` may set a shorter one), and a bounded body. An
 * answer that never ends, or never stops, fails instead of holding the gateway.
 */
export function oauthFetch(dispatcher: Agent, timeoutMs = 15_000): Fetch {
  return async (url, init) => {
    const signal = init.signal ? AbortSignal.any([init.signal, AbortSignal.timeout(timeoutMs)]) : AbortSignal.timeout(timeoutMs);
    const response = await undiciFetch(url, {
      method: init.method,
      headers: init.headers as Record<string, string>,
      body: init.body as string | URLSearchParams | null | undefined,
      dispatcher,
      redirect: "manual", // RFC 9700 §4.11: never follow redirects with credentials
      signal,
    });
    if (!response.body) return response;
    return new Response(response.body.pipeThrough(byteLimit(OAUTH_MAX_BYTES)), {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers as unknown as Headers,
    });
  };
}

function byteLimit(limit: number): TransformStream<Uint8Array, Uint8Array> {
  let total = 0;
  return new TransformStream({
    transform(chunk, controller) {
      total += chunk.byteLength;
      if (total > limit) controller.error(new Error(`the upstream's answer is larger than ${limit / 1024} KB`));
      else controller.enqueue(chunk);
    },
  });
}
