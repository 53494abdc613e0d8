import { fetch } from "undici";

/**
 * MCP over plain HTTP, as a replayed client speaks it (no SDK): JSON-RPC POSTs to the MCP URL, answered
 * with a JSON body or an SSE stream, whichever the server picks (MCP Transports §Streamable HTTP).
 */

export const initializeMessage = (protocolVersion: string, id = 1) => ({
  jsonrpc: "2.0",
  id,
  method: "initialize",
  params: { protocolVersion, capabilities: {}, clientInfo: { name: "replayed-client", version: "1.0.0" } },
});

export const mcpHeaders = (extra: Record<string, string> = {}) => ({
  "content-type": "application/json",
  accept: "application/json, text/event-stream",
  ...extra,
});

type RpcMessage = { id?: number; result?: unknown; error?: unknown };

/** The JSON-RPC messages of an SSE body: one per event, from its `data:` lines. */
const sseMessages = (text: string): RpcMessage[] =>
  text
    .split(/\r?\n\r?\n/)
    .map((event) =>
      event
        .split(/\r?\n/)
        .filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5).trimStart())
        .join("\n"),
    )
    .filter(Boolean)
    .map((data) => JSON.parse(data) as RpcMessage);

/** One JSON-RPC answer, from a JSON body or from the SSE stream the server chose to answer with. */
async function rpc(mcpUrl: string, headers: Record<string, string>, message: { id?: number } & Record<string, unknown>) {
  const response = await fetch(mcpUrl, { method: "POST", headers: mcpHeaders(headers), body: JSON.stringify(message), redirect: "manual" });
  const text = await response.text();
  if (response.status === 202 && message.id === undefined) return { response, result: undefined };
  if (response.status !== 200)
    throw new Error(`${String(message.method)} at ${mcpUrl}: HTTP ${response.status} ${response.headers.get("www-authenticate") ?? ""} ${text.slice(0, 300)}`);
  const messages = (response.headers.get("content-type") ?? "").startsWith("text/event-stream") ? sseMessages(text) : [JSON.parse(text) as RpcMessage];
  const answer = messages.find((m) => m.id === message.id);
  if (!answer || answer.error) throw new Error(`${String(message.method)}: ${JSON.stringify(answer?.error ?? messages)}`);
  return { response, result: answer.result };
}

/**
 * What a client does with its token in the initialize era: `initialize`, `notifications/initialized`,
 * then `tools/call get_me` (the simulator's GitHub tool) in the session. Returns the GitHub login.
 */
export async function getMeOverHttp(mcpUrl: string, accessToken: string, protocolVersion = "2025-06-18"): Promise<string> {
  const authorization = { authorization: `Bearer ${accessToken}` };
  const init = await rpc(mcpUrl, authorization, initializeMessage(protocolVersion));
  const negotiated = (init.result as { protocolVersion: string }).protocolVersion;
  const sessionId = init.response.headers.get("mcp-session-id");
  const inSession = { ...authorization, "mcp-protocol-version": negotiated, ...(sessionId ? { "mcp-session-id": sessionId } : {}) };
  await rpc(mcpUrl, inSession, { jsonrpc: "2.0", method: "notifications/initialized" });
  const call = await rpc(mcpUrl, inSession, { jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "get_me", arguments: {} } });
  const result = call.result as { isError?: boolean; content: { type: string; text: string }[] };
  if (result.isError) throw new Error(`get_me failed: ${JSON.stringify(result.content)}`);
  return (JSON.parse(result.content[0]!.text) as { login: string }).login;
}

/** The status a bare POST with this token gets (200 when the token is good at this MCP URL). */
export async function mcpStatus(mcpUrl: string, accessToken: string): Promise<number> {
  const response = await fetch(mcpUrl, {
    method: "POST",
    headers: mcpHeaders({ authorization: `Bearer ${accessToken}` }),
    body: JSON.stringify(initializeMessage("2025-06-18")),
  });
  await response.body?.cancel();
  return response.status;
}
