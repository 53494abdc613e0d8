import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  BEARER_PRELOAD,
  checkName,
  gatewayToken,
  passing,
  runSuite,
  startEverything,
  startGateway,
  tally,
  type Check,
  type Service,
  type SuiteRun,
} from "../support/conformance.js";
import { killAll, type GatewayProcess } from "../support/processes.js";

/**
 * The official conformance suite's `server` scenarios against @modelcontextprotocol/server-everything,
 * once direct and once through a real gateway process (`--config`, the server as an `auth: "none"`
 * upstream, so the suite reaches it at /mcp/everything with a gateway token), for each requirement
 * set. The gateway must be transparent: every check that passes direct passes through it.
 */

const REQUIREMENTS = ["2025-11-25", "2026-07-28"] as const;

/** Checks that pass direct and may fail through the gateway, each with its reason. None today. */
const KNOWN_LOSSES: Record<string, Record<string, string>> = { "2025-11-25": {}, "2026-07-28": {} };

/**
 * Checks that fail direct and pass through the gateway, each with its reason, so the counts in
 * test/CONFORMANCE.md stay true: a new one fails this test until it is listed here and there.
 */
const KNOWN_GAINS: Record<string, Record<string, string>> = {
  "2025-11-25": {
    "dns-rebinding-protection › localhost-host-rebinding-rejected":
      "server-everything answers an initialize with Host and Origin evil.example.com (200); the gateway refuses a foreign Origin with 403 before anything else runs (src/rs/origin.ts)",
    "server-session-lifecycle › server-session-terminated-returns-404":
      "server-everything does not answer 404 on a session it has ended; the gateway forgets a session's binding when its DELETE succeeds and answers the id 404 itself (src/rs/sessions.ts, MU9)",
  },
  "2026-07-28": {},
};

let everything: Service;
let gateway: GatewayProcess & { issuer: string; mcpUrl: string };
let token: string;

beforeAll(async () => {
  everything = await startEverything();
  gateway = await startGateway(everything.url);
  token = await gatewayToken(gateway);
}, 60_000);

afterAll(async () => {
  await gateway?.kill();
  await everything?.stop();
  killAll();
});

const direct = (requirements: string) => runSuite(["server", "--url", everything.url, "--requirements", requirements]);
const throughGateway = (requirements: string) =>
  runSuite(["server", "--url", gateway.mcpUrl, "--requirements", requirements], {
    preload: BEARER_PRELOAD,
    env: { CONFORMANCE_BEARER: token, CONFORMANCE_BEARER_ORIGIN: new URL(gateway.mcpUrl).origin },
  });

/** Every scenario the requirement set names ran and saved its checks. */
function expectComplete(run: SuiteRun): void {
  const announced = /Running requirements \S+ \((\d+) scenarios\)/.exec(run.output)?.[1];
  expect(announced, run.output.slice(0, 2000)).toBeDefined();
  expect(new Set(run.checks.map((c) => c.scenario)).size).toBe(Number(announced));
}

/** What a run said of one check: each occurrence's status and message. */
const outcome = (run: SuiteRun, name: string) =>
  run.checks
    .filter((c) => checkName(c) === name)
    .map((c) => `${c.status} ${c.errorMessage ?? ""}`.trim())
    .join("; ");

const summary = (checks: readonly Check[]) => {
  const t = tally(checks);
  return `${t.SUCCESS} passed, ${t.FAILURE} failed, ${t.WARNING} warnings (${checks.length} checks)`;
};

describe.each(REQUIREMENTS)("official conformance suite: server scenarios, --requirements %s", (requirements) => {
  it("every check that passes against server-everything direct passes through the gateway", async () => {
    const before = await direct(requirements);
    const through = await throughGateway(requirements);
    expectComplete(before);
    expectComplete(through);
    console.log(
      `conformance server --requirements ${requirements}\n  direct:          ${summary(before.checks)}\n  through gateway: ${summary(through.checks)}`,
    );

    const passedDirect = passing(before.checks);
    const passedThrough = passing(through.checks);
    const lost = [...passedDirect].filter((name) => !passedThrough.has(name) && !(name in KNOWN_LOSSES[requirements]!));
    expect(lost.map((name) => `${name}: ${outcome(through, name)}`)).toEqual([]);
    const gained = [...passedThrough].filter((name) => !passedDirect.has(name));
    expect(gained.sort()).toEqual(Object.keys(KNOWN_GAINS[requirements]!).sort());
  }, 240_000);
});
