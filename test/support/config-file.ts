import { configRefusal } from "./config-refusal.js";
import { parseUpstreamsFile } from "../../src/config/file.js";

export const PUBLIC_URL = "https://gw.example.com";
export const SOURCE = "gateway.json";

/** Distinctive secrets: no error message may show one of them, nor any five characters of one. */
export const SECRETS = {
  GITHUB_CLIENT_SECRET: "Gq7Zp2Xv",
  INTERNAL_TOKEN: "Bw4Kd9Tm",
  SEARCH_KEY: "Kr8Lf3Yc",
  HEADER_SECRET: "Hv5Nj6Ps",
  SECRET_URL: "https://zk4hq9w.example/mcp",
};
export const LITERAL_SECRET = "Lc2Gu8Ra";
export const SECRET_PARTS = [
  SECRETS.GITHUB_CLIENT_SECRET,
  SECRETS.INTERNAL_TOKEN,
  SECRETS.SEARCH_KEY,
  SECRETS.HEADER_SECRET,
  "zk4hq9w",
  LITERAL_SECRET,
].flatMap((s) => Array.from({ length: s.length - 4 }, (_, i) => s.slice(i, i + 5).toLowerCase()));

export type Json = Record<string, unknown>;
const text = (file: unknown): string => (typeof file === "string" ? file : JSON.stringify(file, null, 2));
export const parse = (file: unknown, env: Record<string, string> = SECRETS) => parseUpstreamsFile(text(file), SOURCE, env, PUBLIC_URL);
export const one = (entry: Json, env?: Record<string, string>) => parse({ mcpServers: { x: entry } }, env)[0]!;
export const URL_X = "https://mcp.example.org/mcp";

/** The message of the ConfigError `parse` throws, one line and without a secret; fails the test when the file is accepted. */
export const refused = (file: unknown, env: Record<string, string> = SECRETS): string => configRefusal(() => parse(file, env), SECRET_PARTS);
export const refusedEntry = (entry: Json, env?: Record<string, string>) => refused({ mcpServers: { x: entry } }, env);

/** The example of /tmp/spec6.md ("The config file"), byte for byte. */
export const SPEC_EXAMPLE = `{
  "$schema": "./docs/gateway.schema.json",
  "mcpServers": {
    "github": {
      "url": "https://api.githubcopilot.com/mcp/",
      "title": "GitHub",
      "oauth": { "clientId": "Ov23li…", "clientSecret": "\${GITHUB_CLIENT_SECRET}", "scope": "repo read:org" },
      "headers": { "X-MCP-Readonly": "true" },
      "allowUsers": ["octocat"],
      "allowOrgs": ["acme"]
    },
    "notion": { "url": "https://mcp.notion.com/mcp" },
    "internal": { "url": "http://10.0.0.5:8080/mcp", "auth": { "bearer": "\${INTERNAL_TOKEN}" }, "identityHeaders": true },
    "search": { "url": "https://search.example.com/mcp", "auth": { "header": "X-API-Key", "value": "\${SEARCH_KEY}" } },
    "open": { "url": "http://127.0.0.1:9000/mcp", "auth": "none" }
  }
}`;

export const plain = { headers: {}, identityHeaders: false, allowUsers: [], allowOrgs: [] };
