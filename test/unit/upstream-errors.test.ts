import * as oauth from "oauth4webapi";
import { describe, expect, it } from "vitest";
import { classify, refreshFailure } from "../../src/upstream/errors.js";

const as: oauth.AuthorizationServer = { issuer: "https://up.example", token_endpoint: "https://up.example/token" };
const client: oauth.Client = { client_id: "gateway" };

/** What oauth4webapi makes of an upstream token-endpoint answer, classified as the gateway does. */
async function refreshAnswer(status: number, body: string, type = "application/json") {
  const error = await oauth.processRefreshTokenResponse(as, client, new Response(body, { status, headers: { "content-type": type } })).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeDefined();
  return classify(error, "upstream refresh");
}

/** NA2/NA4: only a definitive RFC 6749 §5.2 answer costs the client its grant. */
describe("classify", () => {
  it("treats an RFC 6749 §5.2 invalid_grant as the end of the grant", async () => {
    const failure = await refreshAnswer(400, JSON.stringify({ error: "invalid_grant", error_description: "revoked" }));
    expect([failure.definitive, failure.endsGrant, failure.code]).toEqual([true, true, "invalid_grant"]);
    expect(refreshFailure(failure)).toMatchObject({ code: "invalid_grant", status: 400 });
  });

  it.each([
    ["invalid_client", 401],
    ["unauthorized_client", 400],
  ])("treats a refusal of the gateway's own credentials (%s) as definitive, but no user's fault", async (code, status) => {
    const failure = await refreshAnswer(status, JSON.stringify({ error: code }));
    expect([failure.definitive, failure.endsGrant, failure.code]).toEqual([true, false, code]);
    expect(refreshFailure(failure)).toMatchObject({ code: "server_error", status: 500 });
  });

  it.each([
    ["a 503 temporarily_unavailable", 503, JSON.stringify({ error: "temporarily_unavailable" }), "application/json"],
    ["a 400 server_error", 400, JSON.stringify({ error: "server_error" }), "application/json"],
    ["a 502 HTML page", 502, "<html>Bad gateway</html>", "text/html"],
    ["a 200 that is not JSON", 200, "access_token=", "text/plain"],
    ["a 500 with an empty body", 500, "", "text/plain"],
  ])("treats %s as transient", async (_what, status, body, type) => {
    const failure = await refreshAnswer(status, body, type);
    expect(failure.definitive).toBe(false);
    const error = refreshFailure(failure);
    expect([error.code, error.status]).toEqual(["temporarily_unavailable", 503]);
    expect(Number(error.headers["Retry-After"])).toBeGreaterThan(0);
  });

  it.each([
    ["a timeout", new DOMException("The operation was aborted due to timeout", "TimeoutError")],
    ["a connection reset", new TypeError("fetch failed", { cause: Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" }) })],
    ["a refused connection", new TypeError("fetch failed", { cause: Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }) })],
  ])("treats %s as transient", (_what, error) => {
    expect(classify(error, "upstream refresh").definitive).toBe(false);
  });
});
