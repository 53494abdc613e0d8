import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { CreateMessageRequestSchema, ElicitRequestSchema } from "@modelcontextprotocol/sdk/types.js";
import type { TestUser } from "./config.js";
import { grantFor } from "./oauth-steps.js";

/** The real SDK client with a bearer of its own grant, declaring sampling and elicitation, whose handlers answer them. */
export async function stdioClient(
  gatewayUrl: string,
  mcpUrl: string,
  login?: TestUser,
): Promise<{ client: Client; transport: StreamableHTTPClientTransport; token: string }> {
  const { tokens } = await grantFor(gatewayUrl, mcpUrl, undefined, login);
  const token = tokens.access_token!;
  const client = new Client({ name: "stdio-e2e", version: "1.0.0" }, { capabilities: { sampling: {}, elicitation: {} } });
  client.setRequestHandler(CreateMessageRequestSchema, async () => ({
    model: "test-model",
    role: "assistant",
    content: { type: "text", text: "sampled by the client" },
  }));
  client.setRequestHandler(ElicitRequestSchema, async () => ({ action: "accept", content: { name: "Ada Lovelace", check: true } }));
  const transport = new StreamableHTTPClientTransport(new URL(mcpUrl), { requestInit: { headers: { authorization: `Bearer ${token}` } } });
  await client.connect(transport);
  return { client, transport, token };
}

/** A tool's content as JSON text. */
export const contentOf = (result: unknown): string => JSON.stringify((result as { content: unknown }).content);
