import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../src/log.js";
import { startStack, type Stack } from "../support/stack.js";

/** docs/security.md HI4: the /mcp access line is built from fields the gateway vouches for, so it needs no redaction pass. */
describe("the /mcp access line", () => {
  const lines: string[] = [];
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ log: createLogger((l) => lines.push(l)) });
  });
  afterAll(() => stack.close());

  const accessLines = (method: string, status: number) => lines.filter((l) => new RegExp(` info ${method} /mcp ${status} \\d+ms$`).test(l));

  it("names the endpoint by its own path, never as the client spelt it", async () => {
    const secret = "Zx9-s3cr3t_VALUE-in-the-query";
    const response = await fetch(`${stack.gateway.publicUrl}/MCP/?access_token=${secret}&x=%0Aforged`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    expect(response.status).toBe(401);
    await expect.poll(() => accessLines("POST", 401)).toHaveLength(1);
    const all = lines.join("\n");
    expect(all).not.toContain(secret);
    expect(all).not.toContain("/MCP");
    expect(all).not.toContain("forged");
  });

  it("has one line per request, with the method, the status and the time", async () => {
    const response = await fetch(`${stack.gateway.publicUrl}/mcp`, { method: "PATCH" });
    expect(response.status).toBe(405);
    await expect.poll(() => accessLines("PATCH", 405)).toHaveLength(1);
  });
});
