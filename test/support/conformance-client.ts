/**
 * The "client" the conformance suite's `auth/*` scenarios drive: the gateway, with the scenario's mock
 * MCP server as its upstream, and the real MCP SDK client signing in at the gateway through a scripted
 * browser, then listing and calling tools. Run by the suite as `<command> <mock MCP server URL>`, with
 * `MCP_CONFORMANCE_CONTEXT` holding what the scenario gives (pre-registered credentials). Exits 0 when
 * the tool call succeeded through the gateway; the suite's own checks judge the upstream side.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";
import { createLogger } from "../../src/log.js";
import { TestBrowser } from "./browser.js";
import { signingIn } from "./connect.js";
import { startTestGateway } from "./gateway.js";
import { RecordingOAuthProvider } from "./oauth-client.js";

const upstreamUrl = process.argv[2];
if (!upstreamUrl) throw new Error("usage: conformance-client <MCP server URL>");
const context = JSON.parse(process.env.MCP_CONFORMANCE_CONTEXT ?? "{}") as { client_id?: string; client_secret?: string };

/**
 * basic-cimd wants the client_id to be the Client ID Metadata Document URL its reference client
 * hard-codes. The gateway's own document lives at its public URL (https only); an operator who hosts
 * the document elsewhere gives its URL as the client id, as here.
 */
const CIMD_CLIENT_ID = "https://conformance-test.local/client-metadata.json";
const clientId = context.client_id ?? (process.env.MCP_CONFORMANCE_SCENARIO === "auth/basic-cimd" ? CIMD_CLIENT_ID : undefined);
const credentials = clientId ? { clientId, ...(context.client_secret ? { clientSecret: context.client_secret } : {}) } : {};
const gateway = await startTestGateway({
  mcpServers: { conformance: { url: upstreamUrl, oauth: credentials } },
  atMcp: true,
  log: createLogger((line) => process.stderr.write(`${line}\n`)),
});
const mcpUrl = new URL(`${gateway.publicUrl}/mcp`);
const provider = new RecordingOAuthProvider();
// the first sign-in, and the step-ups that follow
const { authorized, signIns } = signingIn(provider, new TestBrowser(), () => transport, 3);

/** MCP 2026-07-28 has no `initialize`: each request carries the protocol version in a header and in `_meta`. */
const MODERN = "2026-07-28";
const meta = {
  "io.modelcontextprotocol/protocolVersion": MODERN,
  "io.modelcontextprotocol/clientCapabilities": {},
  "io.modelcontextprotocol/clientInfo": { name: "conformance-via-gateway", version: "1.0.0" },
};

/** The SDK's transport speaking the stateless revision: it still does every OAuth step itself. */
async function modern(): Promise<string> {
  transport.setProtocolVersion(MODERN);
  const answers = new Map<number, (message: JSONRPCMessage) => void>();
  transport.onmessage = (message) => "id" in message && answers.get(message.id as number)?.(message);
  await transport.start();
  let id = 0;
  const request = async (method: string, params: Record<string, unknown> = {}) => {
    const answer = new Promise<JSONRPCMessage>((resolve) => answers.set(++id, resolve));
    const message = { jsonrpc: "2.0" as const, id, method, params: { ...params, _meta: meta } };
    await authorized(() => transport.send(message));
    const response = (await answer) as { result?: Record<string, unknown>; error?: unknown };
    if (!response.result) throw new Error(`${method} failed: ${JSON.stringify(response.error)}`);
    return response.result;
  };
  await request("server/discover");
  const { tools } = (await request("tools/list")) as { tools: { name: string }[] };
  const tool = tools[0];
  if (!tool) throw new Error("the upstream lists no tools");
  const result = await request("tools/call", { name: tool.name, arguments: {} });
  if (result.isError) throw new Error(`${tool.name} failed: ${JSON.stringify(result.content)}`);
  return tool.name;
}

/** The SDK's Client on the revisions with `initialize`. */
async function legacy(): Promise<string> {
  // a refused connect leaves its transport started: each attempt gets a new one
  await authorized(async () => {
    transport = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider });
    await client.connect(transport);
  });
  const { tools } = await authorized(() => client.listTools());
  const tool = tools[0];
  if (!tool) throw new Error("the upstream lists no tools");
  const result = await authorized(() => client.callTool({ name: tool.name, arguments: {} }));
  if (result.isError) throw new Error(`${tool.name} failed: ${JSON.stringify(result.content)}`);
  return tool.name;
}

const client = new Client({ name: "conformance-via-gateway", version: "1.0.0" });
let transport = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider });
try {
  const called = process.env.MCP_CONFORMANCE_PROTOCOL_VERSION === MODERN ? await modern() : await legacy();
  console.log(`called ${called} through the gateway after ${signIns()} sign-in(s)`);
} finally {
  await client.close().catch(() => {});
  await transport.close().catch(() => {});
  await gateway.close();
}
