import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { RS, load, refused, scratch } from "../../support/config-load.js";

const { dir, envFile } = scratch();

describe("loadConfig: the proxy", () => {
  it("applies the defaults", () => {
    expect(load(RS).proxy).toEqual({ upstreamTimeout: 120, sseHeartbeat: 15, shutdownGrace: 10, maxStreamsPerGrant: 20, maxStreamsPerAddress: 200 });
    expect(Object.isFrozen(load(RS).proxy)).toBe(true);
  });

  it("takes the numbers from flags and from the environment", () => {
    expect(load([...RS, "--upstream-timeout", "30", "--sse-heartbeat", "0", "--shutdown-grace", "0"]).proxy).toMatchObject({
      upstreamTimeout: 30,
      sseHeartbeat: 0,
      shutdownGrace: 0,
    });
    const env = { MCP_GATEWAY_UPSTREAM_TIMEOUT: "5", MCP_GATEWAY_SSE_HEARTBEAT: "25", MCP_GATEWAY_SHUTDOWN_GRACE: "60" };
    expect(load(RS, env).proxy).toMatchObject({ upstreamTimeout: 5, sseHeartbeat: 25, shutdownGrace: 60 });
  });

  it.each([
    ["--upstream-timeout", "0"],
    ["--upstream-timeout", "86401"],
    ["--sse-heartbeat", "-1"],
    ["--sse-heartbeat", "3601"],
    ["--shutdown-grace", "3601"],
    ["--shutdown-grace", "1.5"],
    ["--upstream-timeout", "soon"],
  ])("refuses %s=%s, naming the flag and the range", (flag, value) => {
    const message = refused([...RS, `${flag}=${value}`]);
    expect(message).toMatch(new RegExp(`^${flag} \\(MCP_GATEWAY_`));
    expect(message).toMatch(/give a whole number from \d+ to \d+$/);
  });

  it("takes repeated --upstream-header, names lower-cased, values as given", () => {
    const headers = load([...RS, "--upstream-header", "X-MCP-Readonly: true", "--upstream-header", "X-MCP-Toolsets:repos,issues"]).upstreams[0]!.headers;
    expect(headers).toEqual({ "x-mcp-readonly": "true", "x-mcp-toolsets": "repos,issues" });
  });

  it("takes MCP_GATEWAY_UPSTREAM_HEADERS one per line, and flags over it", () => {
    const env = { MCP_GATEWAY_UPSTREAM_HEADERS: "X-MCP-Readonly: true\r\n\nX-MCP-Toolsets: repos\n" };
    expect(load(RS, env).upstreams[0]!.headers).toEqual({ "x-mcp-readonly": "true", "x-mcp-toolsets": "repos" });
    expect(load([...RS, "--upstream-header", "X-MCP-Lockdown: true"], env).upstreams[0]!.headers).toEqual({ "x-mcp-lockdown": "true" });
  });

  it.each([
    ["no colon", "X-MCP-Readonly true"],
    ["no name", ": true"],
    ["a space in the name", "X MCP: true"],
    ["a line break in the value", "X-MCP-Readonly: true\nfalse"],
    ["a CR in the value", "X-MCP-Readonly: tr\rue"],
    ["a NUL in the value", "X-MCP-Readonly: tr\0ue"],
  ])("refuses an --upstream-header with %s, showing the form to use", (_what, line) => {
    const message = refused([...RS, "--upstream-header", line]);
    expect(message).toContain("--upstream-header (MCP_GATEWAY_UPSTREAM_HEADERS)");
    expect(message).toContain("'Name: value'");
    expect(message).not.toContain("\n");
  });

  it.each([
    ["Authorization: Bearer s3cr3t-value"],
    ["host: evil.example"],
    ["Content-Length: 0"],
    ["Transfer-Encoding: chunked"],
    ["Connection: close"],
    ["X-Forwarded-User: root"],
  ])("refuses --upstream-header %j, a header the gateway sets itself, without showing the value", (line) => {
    const [name, value] = line.split(": ") as [string, string];
    const message = refused([...RS, "--upstream-header", line]);
    expect(message).toMatch(new RegExp(`^--upstream-header \\(MCP_GATEWAY_UPSTREAM_HEADERS\\): ${name} is set by the gateway`));
    expect(message).not.toContain(value);
  });

  it("reads --config, expanding ${VAR} from the environment and from the env file", () => {
    const file = join(dir, "gateway.json");
    const server = (name: string, variable: string) => ({ url: `https://${name}.example/mcp`, auth: { bearer: `\${${variable}}` } });
    writeFileSync(file, JSON.stringify({ mcpServers: { a: server("a", "FROM_ENV"), b: server("b", "FROM_FILE") } }));
    const env = envFile("FROM_FILE=file-token\nFROM_ENV=loses-to-the-environment\n");
    const config = load(["--config", file, "--env-file", env], { FROM_ENV: "env-token" });
    expect(config.upstreams.map((u) => [u.path, u.resource, u.credentials])).toEqual([
      ["/mcp/a", "https://a.example/mcp", { authorization: "Bearer env-token" }],
      ["/mcp/b", "https://b.example/mcp", { authorization: "Bearer file-token" }],
    ]);
    expect(refused(["demo", "--config", file, "--env-file", env])).toMatch(/^--config \(MCP_GATEWAY_CONFIG\) is not for the demo/);
  });

  it("refuses --config together with an --upstream-* flag", () => {
    expect(refused([...RS, "--config", "gateway.json"])).toBe(
      "--config (MCP_GATEWAY_CONFIG) and --upstream-rs (MCP_GATEWAY_UPSTREAM_RS) do not go together: give upstreams either in the config file or with the --upstream-* flags",
    );
  });
});
