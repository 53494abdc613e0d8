import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
  LoggingMessageNotificationSchema,
  type Progress,
} from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "../../../src/clock.js";
import { startBridgeServer } from "../../support/bridge-server.js";
import { TestProcesses } from "../../support/stdio-children.js";
import { pollUntil, readUntil, withDeadline } from "../../support/waiting.js";

/** The bridge (src/stdio/) against real server-everything processes, through the real SDK client; no gateway in front. */

const processes = new TestProcesses({ everything: { bin: "mcp-server-everything" } });
let server: Awaited<ReturnType<typeof startBridgeServer>>;
const clients: Client[] = [];

beforeAll(async () => {
  server = await startBridgeServer("everything", processes);
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
  await server.close();
  await processes.close();
});

async function connect(user = "alice"): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const client = new Client({ name: "bridge-test", version: "1.0.0" }, { capabilities: { sampling: {}, elicitation: {} } });
  client.setRequestHandler(CreateMessageRequestSchema, async (request) => ({
    model: "test-model",
    role: "assistant",
    content: { type: "text", text: `sampled: ${JSON.stringify(request.params.messages[0]?.content)}` },
  }));
  client.setRequestHandler(ElicitRequestSchema, async () => ({ action: "accept", content: { name: "Ada Lovelace", check: true } }));
  const transport = new StreamableHTTPClientTransport(new URL(server.url), { requestInit: { headers: { "x-test-user": user } } });
  await client.connect(transport);
  clients.push(client);
  return { client, transport };
}

const text = (result: unknown): string => JSON.stringify((result as { content: unknown }).content);

describe("stdio bridge, initialize era (SDK client)", () => {
  it("opens a session, lists and calls tools of the process", async () => {
    const { client, transport } = await connect();
    expect(transport.sessionId).toMatch(/^[0-9a-f-]{36}$/);
    expect(client.getServerVersion()?.name).toMatch(/everything/);
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toContain("echo");
    expect(text(await client.callTool({ name: "echo", arguments: { message: "hi" } }))).toContain("Echo: hi");
  });

  it("streams progress notifications of a call to its caller, under the caller's token", async () => {
    const { client } = await connect();
    const seen: Progress[] = [];
    const result = await client.callTool({ name: "trigger-long-running-operation", arguments: { duration: 1, steps: 3 } }, undefined, {
      onprogress: (progress) => seen.push(progress),
    });
    expect(text(result)).toContain("completed");
    expect(seen.map((p) => p.progress)).toEqual([1, 2, 3]);
  });

  it("carries sampling and elicitation of the process to the client whose call asked, and the answers back", async () => {
    const { client } = await connect();
    expect(text(await client.callTool({ name: "trigger-sampling-request", arguments: { prompt: "a haiku", maxTokens: 10 } }))).toContain("sampled:");
    expect(text(await client.callTool({ name: "trigger-elicitation-request", arguments: {} }))).toContain("Ada Lovelace");
  });

  it("serves several sessions of one owner from one process, initialized once", async () => {
    await connect("bob");
    const { client } = await connect("bob");
    expect(text(await client.callTool({ name: "echo", arguments: { message: "second" } }))).toContain("second");
    const sent = processes.childOf("everything", "bob")!.sent;
    expect(sent.filter((method) => method === "initialize")).toHaveLength(1);
    expect(sent.filter((method) => method === "notifications/initialized")).toHaveLength(1);
    expect(processes.running).toBe(2); // alice's and bob's
  });

  it("answers another owner's session id as unknown (404), and an ended session too", async () => {
    const { transport } = await connect("carol");
    const call = (user: string) =>
      fetch(server.url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
          "mcp-session-id": transport.sessionId!,
          "x-test-user": user,
        },
        body: JSON.stringify({ jsonrpc: "2.0", id: 9, method: "tools/list" }),
      });
    const other = await call("mallory");
    expect(other.status).toBe(404);
    expect(await other.json()).toMatchObject({ id: 9, error: { code: -32001 } });
    await transport.terminateSession();
    expect((await call("carol")).status).toBe(404);
  });

  it("gives a call in flight a JSON-RPC error when its process dies; the next call starts a new one", async () => {
    const { client } = await connect("dave");
    const pid = processes.pidOf("everything", "dave")!;
    let started!: () => void;
    const running = new Promise<void>((resolve) => (started = resolve));
    const call = client.callTool({ name: "trigger-long-running-operation", arguments: { duration: 10, steps: 10 } }, undefined, {
      onprogress: () => started(),
    });
    await running;
    process.kill(pid, "SIGKILL");
    await expect(call).rejects.toMatchObject({ code: -32603, message: expect.stringContaining("The stdio server everything exited") });
    expect(server.warnings).toContain("stdio everything: the process exited with 1 request(s) in flight, each answered with an error");
    expect(text(await client.callTool({ name: "echo", arguments: { message: "again" } }))).toContain("again");
    expect(processes.pids()).not.toContain(pid);
    // the new process was initialized by the bridge, with the session's first parameters, before the call
    expect(processes.childOf("everything", "dave")!.sent.slice(0, 3)).toEqual(["initialize", "notifications/initialized", "tools/call"]);
  });

  it("carries a request the server sends outside any call (roots/list) down the session's GET stream, and the answer back", async () => {
    const client = new Client({ name: "roots", version: "1.0.0" }, { capabilities: { roots: { listChanged: true } } });
    let asked!: () => void;
    const listed = new Promise<void>((resolve) => (asked = resolve));
    client.setRequestHandler(ListRootsRequestSchema, async () => {
      asked();
      return { roots: [{ uri: "file:///srv/henry", name: "henry's" }] };
    });
    const logged = new Promise<string>((resolve) => client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => resolve(String(n.params.data))));
    await client.connect(new StreamableHTTPClientTransport(new URL(server.url), { requestInit: { headers: { "x-test-user": "henry" } } }));
    clients.push(client);
    // server-everything asks for the roots 350 ms after `initialized`, then logs what it got
    await withDeadline(listed, 5000, "roots/list at the client");
    expect(await withDeadline(logged, 5000, "the server's log message")).toContain("1 root(s) received");
  });

  it("maps the client's notifications/cancelled to the bridge's id at the process", async () => {
    const { client } = await connect("judy");
    const child = processes.childOf("everything", "judy")!;
    const held = await pollUntil(
      () => child.holds,
      (n) => n === 1,
      5000,
    ); // the GET stream's
    const abort = new AbortController();
    let started!: () => void;
    const running = new Promise<void>((resolve) => (started = resolve));
    const call = client.callTool({ name: "trigger-long-running-operation", arguments: { duration: 10, steps: 10 } }, undefined, {
      signal: abort.signal,
      onprogress: () => started(),
    });
    await running;
    abort.abort("no longer wanted");
    await expect(call).rejects.toThrow();
    expect(await pollUntil(() => child.sent.includes("notifications/cancelled"), Boolean, 5000)).toBe(true);
    // the call's stream ended with it: only the GET stream holds the process
    expect(
      await pollUntil(
        () => child.holds,
        (n) => n === held,
        5000,
      ),
    ).toBe(held);
  });

  it("keeps such a request until the session opens its GET stream, and sends it down that stream then", async () => {
    const headers = { "content-type": "application/json", accept: "application/json, text/event-stream", "x-test-user": "mia" };
    const init = { protocolVersion: "2025-11-25", capabilities: { roots: {} }, clientInfo: { name: "late", version: "1" } };
    const opened = await fetch(server.url, { method: "POST", headers, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: init }) });
    const sessionId = opened.headers.get("mcp-session-id")!;
    await opened.text();
    const inSession = { ...headers, "mcp-session-id": sessionId, "mcp-protocol-version": "2025-11-25" };
    await fetch(server.url, { method: "POST", headers: inSession, body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }) });
    // server-everything asks for the roots 350 ms after `initialized`; no stream listens yet
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const get = await fetch(server.url, { headers: { ...inSession, accept: "text/event-stream" } });
    const reader = get.body!.getReader();
    expect(await withDeadline(readUntil(reader, '"method":"roots/list"'), 5000, "roots/list on the GET stream")).toContain('"id":"gateway-');
    await reader.cancel();
  });

  it("forgets the link to a process that is gone once no session uses it", async () => {
    const { transport } = await connect("kate");
    const pid = processes.pidOf("everything", "kate")!;
    await transport.terminateSession();
    const { links } = server.bridge.size;
    process.kill(pid, "SIGKILL");
    await pollUntil(
      () => processes.pidOf("everything", "kate"),
      (p) => p === undefined,
      5000,
    );
    await connect("leo"); // a new session sweeps: leo's link in, kate's out
    expect(server.bridge.size.links).toBe(links);
  });

  it("answers 503 with Retry-After when the pool refuses a process", async () => {
    processes.refuse = "the cap of 1 process is reached";
    try {
      const response = await fetch(server.url, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json, text/event-stream", "x-test-user": "erin" },
        body: JSON.stringify({
          jsonrpc: "2.0",
          id: 1,
          method: "initialize",
          params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "t", version: "1" } },
        }),
      });
      expect(response.status).toBe(503);
      expect(response.headers.get("retry-after")).toBe("7");
      expect(await response.json()).toMatchObject({ id: 1, error: { message: expect.stringContaining("the cap of 1 process is reached") } });
    } finally {
      processes.refuse = undefined;
    }
  });
});

describe("stdio bridge, how many sessions it keeps", () => {
  const clock = new ManualClock();
  let small: Awaited<ReturnType<typeof startBridgeServer>>;
  const mine: Client[] = [];
  beforeAll(async () => {
    small = await startBridgeServer("everything", processes, { clock, sessionLimits: { perOwner: 2, total: 3, idleMs: 3600_000 } });
  });
  afterAll(async () => {
    await Promise.all(mine.map((c) => c.close().catch(() => undefined)));
    await small.close();
  });

  const open = async (user: string) => {
    const client = new Client({ name: "bridge-test", version: "1.0.0" });
    const transport = new StreamableHTTPClientTransport(new URL(small.url), { requestInit: { headers: { "x-test-user": user } } });
    await client.connect(transport);
    mine.push(client);
    await new Promise((resolve) => setTimeout(resolve, 200)); // its GET stream opened (and used the session) at this time of the clock
    return { client, transport };
  };
  const listWith = (user: string, sessionId: string) =>
    fetch(small.url, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream", "x-test-user": user, "mcp-session-id": sessionId },
      body: JSON.stringify({ jsonrpc: "2.0", id: 5, method: "tools/list" }),
    });

  it("ends an owner's least recently used session past its cap, refuses a new one (503) past the total, and forgets idle ones", async () => {
    const first = await open("quinn");
    clock.advance(1000);
    const second = await open("quinn");
    clock.advance(1000);
    await first.client.listTools(); // first is now the more recently used
    clock.advance(1000);
    const third = await open("quinn");
    expect((await listWith("quinn", second.transport.sessionId!)).status).toBe(404);
    expect((await listWith("quinn", first.transport.sessionId!)).status).toBe(200);
    expect(small.bridge.size.sessions).toBe(2);
    await open("rosa");
    expect(small.bridge.size.sessions).toBe(3);
    const refused = await fetch(small.url, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream", "x-test-user": "sam" },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "initialize",
        params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "t", version: "1" } },
      }),
    });
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).toBe("60");
    expect(await refused.json()).toMatchObject({ id: 1, error: { code: -32000 } });
    // a session with its GET stream open is never idle: the clients go away without DELETE
    await Promise.all(mine.map((c) => c.close()));
    await new Promise((resolve) => setTimeout(resolve, 200));
    clock.advance(3600_000 + 1);
    await open("sam"); // the idle ones are forgotten first
    expect(small.bridge.size.sessions).toBe(1);
    expect((await listWith("quinn", third.transport.sessionId!)).status).toBe(404);
  });
});

describe("stdio bridge, a shared process (one for every user)", () => {
  const shared = new TestProcesses({ everything: { bin: "mcp-server-everything", shared: true } });
  let one: Awaited<ReturnType<typeof startBridgeServer>>;
  const theirs: Client[] = [];
  beforeAll(async () => {
    one = await startBridgeServer("everything", shared);
  });
  afterAll(async () => {
    await Promise.all(theirs.map((c) => c.close().catch(() => undefined)));
    await one.close();
    await shared.close();
  });

  /** A client declaring roots, noting every roots/list and log message that reaches it. */
  async function user(name: string) {
    const client = new Client({ name, version: "1.0.0" }, { capabilities: { roots: { listChanged: true } } });
    const seen: string[] = [];
    client.setRequestHandler(ListRootsRequestSchema, async () => {
      seen.push("roots/list");
      return { roots: [{ uri: `file:///srv/${name}`, name }] };
    });
    client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void seen.push(`log: ${String(n.params.data)}`));
    await client.connect(new StreamableHTTPClientTransport(new URL(one.url), { requestInit: { headers: { "x-test-user": name } } }));
    theirs.push(client);
    return { client, seen };
  }

  it("answers the process's request made outside any call with an error instead of sending it to whichever user listens", async () => {
    const ann = await user("ann");
    // server-everything asks for the roots 350 ms after `initialized`
    await pollUntil(() => one.warnings.find((line) => line.includes("roots/list request answered with an error")), Boolean, 5000);
    expect(one.warnings.join("\n")).toContain("The server is shared by several users: roots/list outside a call cannot be sent to any one of them.");
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(ann.seen).toEqual([]);
  });

  it("sends no user's log messages to another user's session", async () => {
    const ann = await user("ann2");
    const ben = await user("ben");
    await new Promise((resolve) => setTimeout(resolve, 500)); // both GET streams listen
    expect(text(await ann.client.callTool({ name: "toggle-simulated-logging", arguments: {} }))).toContain("Started simulated");
    await new Promise((resolve) => setTimeout(resolve, 500));
    await ann.client.callTool({ name: "toggle-simulated-logging", arguments: {} });
    expect(ben.seen).toEqual([]);
  });
});

const MODERN = "2026-07-28";
const meta = (capabilities: Record<string, unknown> = {}) => ({
  "io.modelcontextprotocol/protocolVersion": MODERN,
  "io.modelcontextprotocol/clientCapabilities": capabilities,
  "io.modelcontextprotocol/clientInfo": { name: "by-hand", version: "1.0.0" },
});

/** One 2026-07-28 request by hand: `_meta` in the body, the version and method in headers. */
function modern(user: string, method: string, params: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
  return fetch(server.url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json",
      "mcp-protocol-version": MODERN,
      "mcp-method": method,
      "x-test-user": user,
      ...headers,
    },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params: { ...params, _meta: meta() } }),
  });
}

describe("stdio bridge, 2026-07-28 (stateless, by hand)", () => {
  it("answers server/discover from the process's InitializeResult, and calls a tool without a session", async () => {
    const discover = await modern("frank", "server/discover");
    expect(discover.status).toBe(200);
    expect(discover.headers.get("mcp-session-id")).toBeNull();
    const { result } = (await discover.json()) as { result: { capabilities: Record<string, unknown> } };
    expect(result).toMatchObject({ resultType: "complete", supportedVersions: [MODERN], serverInfo: { name: expect.stringMatching(/everything/) } });
    expect(result.capabilities.tools).toBeDefined();
    const list = (await (await modern("frank", "tools/list")).json()) as { result: unknown };
    expect(list.result).toMatchObject({ ttlMs: 0, cacheScope: "private" });
    const call = await modern("frank", "tools/call", { name: "echo", arguments: { message: "stateless" } }, { "mcp-name": "echo" });
    expect(call.status).toBe(200);
    expect(JSON.stringify(((await call.json()) as { result: { content: unknown } }).result.content)).toContain("Echo: stateless");
  });

  it("refuses a version header that differs from _meta's (400, HeaderMismatch -32020) and an unknown version (-32022)", async () => {
    const mismatch = await modern("frank", "tools/list", {}, { "mcp-protocol-version": "2025-11-25" });
    expect(mismatch.status).toBe(400);
    expect(await mismatch.json()).toMatchObject({ id: 1, error: { code: -32020 } });
    const missing = await fetch(server.url, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json", "x-test-user": "frank" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 2, method: "tools/list", params: { _meta: meta() } }),
    });
    expect(missing.status).toBe(400);
    expect(await missing.json()).toMatchObject({ id: 2, error: { code: -32020 } });
    const future = await fetch(server.url, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json", "mcp-protocol-version": "2099-01-01", "x-test-user": "frank" },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 3,
        method: "tools/list",
        params: { _meta: { ...meta(), "io.modelcontextprotocol/protocolVersion": "2099-01-01" } },
      }),
    });
    expect(future.status).toBe(400);
    expect(await future.json()).toMatchObject({ id: 3, error: { code: -32022 } });
  });

  it("streams progress on the request's own event stream when the client accepts one", async () => {
    const response = await fetch(server.url, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream", "mcp-protocol-version": MODERN, "x-test-user": "frank" },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: "long",
        method: "tools/call",
        params: { name: "trigger-long-running-operation", arguments: { duration: 1, steps: 2 }, _meta: { ...meta(), progressToken: "mine" } },
      }),
    });
    expect(response.headers.get("content-type")).toBe("text/event-stream");
    const events = (await response.text())
      .split("\n")
      .filter((line) => line.startsWith("data: "))
      .map((line) => JSON.parse(line.slice(6)));
    expect(events.filter((e) => e.method === "notifications/progress").map((e) => e.params.progressToken)).toEqual(["mine", "mine"]);
    expect(events.at(-1)).toMatchObject({ id: "long", result: { content: [expect.objectContaining({ type: "text" })] } });
  });

  it("cancels the request at the process when the client closes its response stream", async () => {
    await (await modern("ivan", "server/discover")).text();
    const child = processes.childOf("everything", "ivan")!;
    const stream = new AbortController();
    const response = await fetch(server.url, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "text/event-stream", "mcp-protocol-version": MODERN, "x-test-user": "ivan" },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 8,
        method: "tools/call",
        params: { name: "trigger-long-running-operation", arguments: { duration: 10, steps: 10 }, _meta: { ...meta(), progressToken: 1 } },
      }),
      signal: stream.signal,
    });
    const reader = response.body!.getReader();
    await reader.read(); // the first progress event: the call runs
    stream.abort();
    expect(await pollUntil(() => child.sent.includes("notifications/cancelled"), Boolean, 5000)).toBe(true);
    expect(child.holds).toBe(0);
  });

  it("fails a tool that asks the client something (sampling) at once instead of hanging: no server-to-client requests on this wire", async () => {
    // the process was initialized by a client declaring sampling, so it offers the tool; this client cannot answer it
    const { client } = await connect("grace");
    expect((await client.listTools()).tools.map((t) => t.name)).toContain("trigger-sampling-request");
    const call = await modern("grace", "tools/call", { name: "trigger-sampling-request", arguments: { prompt: "x" } });
    const body = await call.json();
    expect(JSON.stringify(body)).toContain("2026-07-28");
    expect(server.warnings).toContainEqual(expect.stringContaining("stdio everything: its sampling/createMessage request answered with an error"));
  });
});
