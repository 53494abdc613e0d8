import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { callGetMe } from "../support/connect.js";
import { approveOnBrowser, DEVICE_CODE_GRANT, deviceAuthorizationRequest, poll } from "../support/device-steps.js";
import { metadataDocument } from "../support/https.js";
import { startMetadataWorld, type MetadataWorld } from "../support/metadata-world.js";
import type { GatewayProcess } from "../support/processes.js";

/** A device client named by its Client ID Metadata Document, first seen at the device authorization endpoint. */
describe("the device grant for a Client ID Metadata Document client", () => {
  let world: MetadataWorld;
  let gateway: GatewayProcess;
  beforeAll(async () => {
    world = await startMetadataWorld();
    gateway = await world.startGateway();
  }, 60_000);
  afterAll(() => world?.close());

  const publish = (path: string, extra: Record<string, unknown>) => {
    const url = `${world.docs.origin}${path}`;
    world.docs.serve(path, { body: metadataDocument(url, extra) });
    return url;
  };

  it("fetches a device-only document (no redirect_uris) at /device_authorization, and its tokens work", async () => {
    const clientId = publish("/device/agent.json", { redirect_uris: undefined, response_types: undefined, grant_types: [DEVICE_CODE_GRANT, "refresh_token"] });
    const started = await deviceAuthorizationRequest(`${gateway.url}/device_authorization`, { client_id: clientId });
    expect(started.status, JSON.stringify(started.body)).toBe(200);
    expect(world.docs.hits("/device/agent.json")).toBe(1);
    const { screen1, end } = await approveOnBrowser(started.body.verification_uri!, started.body.user_code!);
    // anyone may name this URL at /device_authorization: Screen 1 says the name proves nothing, not the loopback text
    expect(screen1.text).toContain("Anyone can use this client id");
    expect(screen1.text).not.toContain("receives its answer on your own computer");
    expect(end.text).toContain("Device connected");
    await new Promise((r) => setTimeout(r, 5_100));
    const granted = await poll(gateway.url, clientId, started.body.device_code!);
    expect(granted.status, JSON.stringify(granted.body)).toBe(200);
    expect((await callGetMe(gateway.url, granted.body.access_token!)).login).toBe("octocat");
  }, 30_000);

  it("answers unauthorized_client to a document without the device grant", async () => {
    const clientId = publish("/device/browser-only.json", {});
    const refused = await deviceAuthorizationRequest(`${gateway.url}/device_authorization`, { client_id: clientId });
    expect(refused).toMatchObject({ status: 400, body: { error: "unauthorized_client" } });
  });

  it("MC5 refuses a device document at a gateway that allows only listed redirect URIs", async () => {
    const narrowed = await world.startGateway(["--redirect-uri-allow", "loopback"]);
    const clientId = publish("/device/narrowed.json", {
      redirect_uris: undefined,
      response_types: undefined,
      grant_types: [DEVICE_CODE_GRANT, "refresh_token"],
    });
    const refused = await deviceAuthorizationRequest(`${narrowed.url}/device_authorization`, { client_id: clientId });
    expect(refused.status).toBe(400);
    expect(refused.body.error_description).toContain("--redirect-uri-allow");
  }, 30_000);
});
