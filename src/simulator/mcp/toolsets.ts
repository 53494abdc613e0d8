import type { McpRoute } from "./paths.js";
import { TOOLS, type SimTool } from "./tools.js";

const FALSY = new Set(["", "false", "f", "no", "n", "0", "off"]);

/** github-mcp-server headers/parse.go: relaxed booleans. */
const relaxedBool = (value: string | undefined): boolean => value !== undefined && !FALSY.has(value.trim().toLowerCase());

const commaList = (value: string | undefined): string[] =>
  (value ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);

/**
 * Tools for one request: URL settings beat X-MCP-* headers (docs/remote-server.md); unknown toolsets are
 * ignored, an unknown tool in X-MCP-Tools is an error; readonly drops tools without readOnlyHint.
 */
export function selectTools(route: McpRoute, headers: Record<string, string>): { tools: SimTool[] } | { error: string } {
  const toolsets = route.toolset !== undefined ? [route.toolset] : commaList(headers["x-mcp-toolsets"]);
  const everything = toolsets.length === 0 || toolsets.includes("all");
  let tools = TOOLS.filter((t) => everything || toolsets.includes(t.toolset));
  const named = commaList(headers["x-mcp-tools"]);
  const unknown = named.find((name) => !TOOLS.some((t) => t.name === name));
  if (unknown !== undefined) return { error: `unknown tool: ${unknown}` };
  if (named.length > 0) tools = TOOLS.filter((t) => named.includes(t.name));
  const excluded = commaList(headers["x-mcp-exclude-tools"]);
  tools = tools.filter((t) => !excluded.includes(t.name));
  if (route.readonly || relaxedBool(headers["x-mcp-readonly"])) tools = tools.filter((t) => t.readOnly);
  return { tools };
}
