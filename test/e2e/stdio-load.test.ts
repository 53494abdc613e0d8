import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Gateway } from "../../src/gateway.js";
import { openFiles } from "../support/fds.js";
import { startTestGateway } from "../support/gateway.js";
import { TestBrowser } from "../support/browser.js";
import { obtainCode, redeem } from "../support/oauth-steps.js";
import { tempDir } from "../support/processes.js";
import { bin, processesUnder } from "../support/stdio-procs.js";
import { inParallel, pollUntil, steady } from "../support/waiting.js";

const CAP = 50;
const INITIALIZE = { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "load", version: "1" } };

/** One POST of the initialize era: status, session id, and the text of its answer. */
async function post(url: string, token: string, message: Record<string, unknown>, sessionId?: string) {
  const response = await fetch(url, {
    method: "POST",
    headers: {
      authorization: `Bearer ${token}`,
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      ...(sessionId ? { "mcp-session-id": sessionId, "mcp-protocol-version": "2025-11-25" } : {}),
    },
    body: JSON.stringify({ jsonrpc: "2.0", ...message }),
  });
  return {
    status: response.status,
    retryAfter: response.headers.get("retry-after"),
    sessionId: response.headers.get("mcp-session-id"),
    text: await response.text(),
  };
}

/**
 * Issue 18 acceptance, the load test: 50 grants, each with a server-memory process of its own; the 51st
 * grant gets the cap's 503 while the 50 go on working; once idle, the processes end and the gateway's
 * descriptors are back where they started.
 */
describe(`${CAP} grants with a stdio process each, then the cap`, () => {
  let gateway: Gateway;
  const url = () => `${gateway.publicUrl}/mcp/memory`;
  const running = () => processesUnder(process.pid, "mcp-server-memory");
  const snapshot = () => openFiles(process.pid).fds;

  beforeAll(async () => {
    gateway = await startTestGateway({
      mcpServers: { memory: { command: bin("mcp-server-memory"), env: { MEMORY_FILE_PATH: "{{userDir}}/memory.jsonl" } } },
      stdio: { dir: tempDir("stdio-load"), maxProcesses: CAP, maxPerUser: CAP, idleTimeout: 3 },
    });
  });
  afterAll(async () => gateway?.close());

  it(`runs ${CAP} processes, answers the next grant 503 with Retry-After, and returns to its baseline of processes and descriptors`, async () => {
    // one browser signed in once: the per-address limit on sign-in pages (src/ratelimit.ts) is not what this tests
    const browser = new TestBrowser();
    const streams: AbortController[] = [];
    const tokens = await inParallel(CAP + 1, 1, async () => {
      const { status, body } = await redeem(gateway.publicUrl, await obtainCode(gateway.publicUrl, { resource: url(), browser }));
      expect(status).toBe(200);
      return body.access_token!;
    });
    // idle keep-alive connections of the sign-ins close within Node's 5 s keep-alive timeout
    const before = await steady(snapshot, 6000, 30_000);
    expect(running()).toEqual([]);

    const sessions = await inParallel(CAP, 8, async (i) => {
      const opened = await post(url(), tokens[i]!, { id: 1, method: "initialize", params: INITIALIZE });
      expect(opened.status, opened.text).toBe(200);
      const call = {
        id: 2,
        method: "tools/call",
        params: { name: "create_entities", arguments: { entities: [{ name: `entity-${i}`, entityType: "n", observations: [] }] } },
      };
      const created = await post(url(), tokens[i]!, call, opened.sessionId!);
      expect(created.text).toContain(`entity-${i}`);
      // a GET stream holds its process, as a connected SDK client's does
      const stream = new AbortController();
      const get = await fetch(url(), {
        headers: {
          authorization: `Bearer ${tokens[i]!}`,
          accept: "text/event-stream",
          "mcp-session-id": opened.sessionId!,
          "mcp-protocol-version": "2025-11-25",
        },
        signal: stream.signal,
      });
      expect(get.status).toBe(200);
      streams.push(stream);
      return opened.sessionId!;
    });
    expect(running()).toHaveLength(CAP);
    expect(gateway.stdio.running).toBe(CAP);

    const refused = await post(url(), tokens[CAP]!, { id: 51, method: "initialize", params: INITIALIZE });
    expect(refused.status).toBe(503);
    expect(Number(refused.retryAfter)).toBeGreaterThan(0);
    expect(JSON.parse(refused.text)).toMatchObject({
      id: 51,
      error: { message: expect.stringContaining(`as many stdio server processes as it may (${CAP})`) },
    });

    // nothing else broke: every session still answers (one user's processes share a directory, so not its graph alone)
    await inParallel(CAP, 8, async (i) => {
      const read = await post(url(), tokens[i]!, { id: 3, method: "tools/call", params: { name: "read_graph", arguments: {} } }, sessions[i]);
      expect(read.status).toBe(200);
      expect(read.text).toContain('"id":3,"result"');
    });

    // the clients go away: their streams close, and the processes end once idle
    for (const stream of streams) stream.abort();
    const ended = await pollUntil(
      () => ({ pids: running().length, pool: gateway.stdio.running }),
      (n) => n.pids + n.pool === 0,
      30_000,
    );
    expect(ended).toEqual({ pids: 0, pool: 0 });
    expect(await steady(snapshot, 6000, 30_000)).toBeLessThanOrEqual(before);

    // the cap is free again: the 51st grant gets its process
    const late = await post(url(), tokens[CAP]!, { id: 52, method: "initialize", params: INITIALIZE });
    expect(late.status).toBe(200);
  }, 180_000);
});
