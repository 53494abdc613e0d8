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

/** A fetch over the shared dispatcher with an overall time limit, for short OAuth exchanges. */
export function oauthFetch(dispatcher: Agent, timeoutMs = 15_000): Fetch {
  return (url, init) =>
    undiciFetch(url, {
      method: init.method,
      headers: init.headers as Record<string, string>,
      body: init.body as string | URLSearchParams | null | undefined,
      dispatcher,
      redirect: "manual", // RFC 9700 §4.11: never follow redirects with credentials
      signal: init.signal ?? AbortSignal.timeout(timeoutMs),
    });
}
