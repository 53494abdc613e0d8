export const PRM_PREFIX = "/.well-known/oauth-protected-resource";

export interface McpRoute {
  /** The request path from `/mcp` on, exactly as asked (trailing slash kept). */
  path: string;
  toolset: string | undefined;
  readonly: boolean;
  insiders: boolean;
}

const SEGMENT = /^[A-Za-z0-9_-]+$/;

/** github-mcp-server handler.go: `/mcp` + `/`, `/readonly`, `/insiders`, `/x/{toolset}[/readonly][/insiders]`. */
export function parseMcpPath(pathname: string): McpRoute | undefined {
  if (pathname !== "/mcp" && !pathname.startsWith("/mcp/")) return undefined;
  const rest = pathname.slice("/mcp".length).replace(/\/$/, "");
  const segments = rest === "" ? [] : rest.slice(1).split("/");
  let toolset: string | undefined;
  if (segments[0] === "x") {
    toolset = segments[1];
    if (toolset === undefined || !SEGMENT.test(toolset)) return undefined;
    segments.splice(0, 2);
  }
  const readonly = segments[0] === "readonly";
  if (readonly) segments.shift();
  const insiders = segments[0] === "insiders";
  if (insiders) segments.shift();
  if (segments.length > 0) return undefined;
  return { path: pathname, toolset, readonly, insiders };
}

/** RFC 9728 §3.1: metadata for `<origin>/mcp…` lives at `<origin>/.well-known/oauth-protected-resource/mcp…`. */
export const prmUrl = (mcpOrigin: string, route: McpRoute): string => `${mcpOrigin}${PRM_PREFIX}${route.path}`;
