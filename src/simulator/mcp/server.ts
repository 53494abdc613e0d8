import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import {
  CompleteRequestSchema,
  ListPromptsRequestSchema,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
} from "@modelcontextprotocol/sdk/types.js";
import type { SimTool, ToolContext } from "./tools.js";

const INSTRUCTIONS = "The GitHub MCP Server provides tools to interact with GitHub platform. (Offline simulator: data is fake.)";

/** A fresh server per request, as github-mcp-server's stateless handler does. */
export function createMcpServer(tools: SimTool[], tc: ToolContext): McpServer {
  const server = new McpServer(
    { name: "github-mcp-server", title: "GitHub MCP Server", version: "simulator" },
    {
      capabilities: { completions: {}, prompts: {}, resources: {}, tools: {} },
      instructions: INSTRUCTIONS,
    },
  );
  for (const tool of tools) tool.register(server, tc);
  server.server.setRequestHandler(ListPromptsRequestSchema, () => ({ prompts: [] }));
  server.server.setRequestHandler(ListResourcesRequestSchema, () => ({ resources: [] }));
  server.server.setRequestHandler(ListResourceTemplatesRequestSchema, () => ({ resourceTemplates: [] }));
  server.server.setRequestHandler(CompleteRequestSchema, () => ({ completion: { values: [] } }));
  return server;
}
