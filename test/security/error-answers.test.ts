import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import express from "express";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorMiddleware, OAuthError } from "../../src/errors.js";
import { createLogger } from "../../src/log.js";
import { MALFORMED_ENCODINGS } from "../support/fuzz.js";
import { register } from "../support/oauth-steps.js";
import { json, send } from "../support/raw-http.js";
import { startStack, type Stack } from "../support/stack.js";

/** Every route with a path parameter (src/as/routes.ts, src/login/routes.ts), and whether it answers with a page. */
const PARAMETER_ROUTES: { methods: string[]; template: string; page: boolean }[] = [
  { methods: ["GET", "PUT", "DELETE", "OPTIONS"], template: "/register/:client_id", page: false },
  { methods: ["GET"], template: "/upstream/callback/:name", page: true },
  { methods: ["GET"], template: "/upstream/client-metadata/:name.json", page: false },
];

describe("HI10 malformed percent-encoding in a path parameter", () => {
  let stack: Stack;
  const lines: string[] = [];
  beforeAll(async () => {
    stack = await startStack({ log: createLogger((l) => lines.push(l)) });
  });
  afterAll(() => stack?.close());

  for (const { methods, template, page } of PARAMETER_ROUTES)
    it(`HI10 ${template} answers 400 invalid_request with a fixed description, and logs no unexpected error`, async () => {
      const before = lines.length;
      for (const method of methods)
        for (const malformed of MALFORMED_ENCODINGS) {
          const path = template.replace(/:\w+/, malformed);
          const what = `${method} ${path}`;
          const answer = await send(`${stack.gateway.publicUrl}${path}`, {
            method,
            ...(method === "PUT" ? { headers: { "content-type": "application/json" }, body: "{}" } : {}),
          });
          expect(answer.status, `${what}: ${answer.text.slice(0, 200)}`).toBe(400);
          expect(answer.headers["cache-control"], what).toBe("no-store");
          if (page) {
            expect(answer.headers["content-type"], what).toMatch(/^text\/html/);
            expect(answer.text, what).toContain("invalid_request");
            expect(answer.text, what).toContain("The request path is not valid percent-encoding.");
          } else expect(json(answer.text), what).toEqual({ error: "invalid_request", error_description: "The request path is not valid percent-encoding." });
          expect(answer.text, what).not.toMatch(/URIError|decode param|at \w+ \(/);
        }
      const logged = lines.slice(before);
      expect(logged.filter((l) => / error /.test(l))).toEqual([]);
      expect(logged.filter((l) => / 400 \d+ms$/.test(l))).toHaveLength(methods.length * MALFORMED_ENCODINGS.length);
    });

  it("HI10 a well-formed percent-encoded path parameter still reaches its handler", async () => {
    const gw = stack.gateway.publicUrl;
    const client = await register(gw);
    const encoded = [...client.client_id].map((c) => `%${c.charCodeAt(0).toString(16).padStart(2, "0")}`).join("");
    const { registration_access_token: rat } = client as { registration_access_token?: string };
    const read = await send(`${gw}/register/${encoded}`, { method: "GET", headers: { authorization: `Bearer ${rat}` } });
    expect([read.status, json(read.text).client_id]).toEqual([200, client.client_id]);
    // an unknown name is the handler's 404, not the decoder's 400
    expect((await send(`${gw}/upstream/client-metadata/%6eone.json`, { method: "GET" })).status).toBe(404);
  });
});

it("HI3 an error page whose view engine cannot load answers its error in plain text, never Express's stack trace", async () => {
  // Express throws from res.render before any callback when the engine's module is missing (an install without ejs)
  const app = express().set("view engine", "no-such-engine");
  const logged: string[] = [];
  app.get("/page", (_req, res) => {
    res.locals.page = true;
    throw new OAuthError("invalid_request", "The request is missing a parameter.");
  });
  app.use(errorMiddleware(createLogger((l) => logged.push(l))));
  const server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    const answer = await send(`http://127.0.0.1:${(server.address() as AddressInfo).port}/page`, { method: "GET" });
    expect([answer.status, answer.headers["content-type"], answer.text]).toEqual([
      400,
      "text/plain; charset=utf-8",
      "invalid_request: The request is missing a parameter.",
    ]);
    expect(answer.headers["cache-control"]).toBe("no-store");
    expect(logged.filter((l) => l.includes("error page failed to render"))).toHaveLength(1);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});
