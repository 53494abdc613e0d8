import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { chromiumSession } from "../support/chromium-session.js";
import { callGetMe } from "../support/connect.js";
import { LOGIN } from "../support/config.js";
import { poll, registerDeviceClient, startDevice } from "../support/device-steps.js";
import { startStack, type Stack } from "../support/stack.js";

/** The device flow's pages in headless Chromium, clicked through like a person would (RFC 8628 §3.3, §5.4). */
describe("a real browser (Chromium) on the device pages", () => {
  const chromium = chromiumSession();
  const { problems } = chromium;
  let stack: Stack;
  let gw: string;
  beforeEach(async () => {
    stack = await startStack({ simulator: { consent: "page" } });
    gw = stack.gateway.publicUrl;
  });
  afterEach(() => stack?.close());

  it("opens verification_uri_complete with the code filled in and waiting, then Screen 1 for a device, GitHub's page, and Device connected", async () => {
    const client = (await registerDeviceClient(gw)).body.client_id;
    const started = await startDevice(gw, client, { resource: stack.mcpUrl });
    const page = await chromium.openPage(stack.simulator.webOrigin);

    await page.goto(started.verification_uri_complete);
    // §5.4: filled in, not sent: the page stays until the user presses Continue
    await expect.poll(() => page.getByLabel("Code shown on your device").inputValue()).toBe(started.user_code);
    await new Promise((r) => setTimeout(r, 300));
    expect(page.url()).toBe(started.verification_uri_complete);
    await page.getByRole("button", { name: "Continue" }).click();

    await page.waitForURL((url) => url.href.startsWith(`${gw}/login?`));
    const text = await page.locator("main").innerText();
    expect(text).toContain("A device is asking for access.");
    expect(text).toContain(started.user_code);
    expect(await page.getByLabel("Remember this client").count()).toBe(0);
    await page.getByLabel("Gateway username").fill(LOGIN.username);
    await page.getByLabel("Gateway password").fill(LOGIN.password);
    await page.getByRole("button", { name: "Approve" }).click();

    await page.waitForURL((url) => url.href.startsWith(`${stack.simulator.webOrigin}/login/oauth/authorize`));
    await page.getByRole("button", { name: "Authorize" }).click();
    await page.getByRole("heading", { name: "Device connected" }).waitFor();
    expect(await page.locator("main").innerText()).toContain("Return to your device");
    expect(problems).toEqual([]);

    stack.clock.advance(10_000);
    const granted = await poll(gw, client, started.device_code);
    expect(granted.status).toBe(200);
    expect((await callGetMe(gw, granted.body.access_token!)).login).toBe("octocat");
  });
});
