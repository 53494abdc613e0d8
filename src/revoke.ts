import { findGrants, type GrantRecord } from "./grants/records.js";
import { endGrants } from "./grants/revoke.js";
import { systemClock } from "./clock.js";
import type { Config } from "./config/types.js";
import type { Logger } from "./log.js";
import { describeStore, openStore } from "./store/open.js";

/** What the command says, and how it exits. */
export interface RevokeOutcome {
  code: 0 | 2;
  /** Exit 0: stdout; exit 2: one line for stderr. */
  text: string;
}

/**
 * `mcp-oauth-gateway revoke --user NAME --client ID`: end the named users' and clients' grants in the
 * configured store. Every gateway process on that store is told (Store.publish) and refuses their tokens
 * at /mcp within 1 s and at their next refresh, without a restart (docs/security.md RU1, RU5).
 */
export async function revokeCommand(config: Readonly<Config>, log: Logger): Promise<RevokeOutcome> {
  const selection = config.revoke!;
  if (config.store.kind === "memory")
    return {
      code: 2,
      text: "revoke: --store memory keeps grants inside the running gateway's own process, where no other process can reach them: restart that gateway to end them all, or run it on sqlite or Redis",
    };
  const store = await openStore(config.store, { clock: systemClock, log });
  try {
    const grants = await findGrants(store, selection, { olderGrants: true });
    await endGrants({ store, clock: systemClock, accessTokenTtl: config.accessTokenTtl, refreshTokenTtl: config.refreshTokenTtl }, grants);
    return { code: 0, text: report(grants, selection, describeStore(config.store)) };
  } finally {
    await store.close();
  }
}

function report(grants: GrantRecord[], selection: NonNullable<Config["revoke"]>, where: string): string {
  const whose = [...selection.users.map((u) => `user ${u}`), ...selection.clients.map((c) => `client ${c}`)].join(", ");
  if (!grants.length) return `No live grants of ${whose} in ${where}: nothing to end.`;
  return [
    `Ended ${grants.length} grant${grants.length === 1 ? "" : "s"} of ${whose} in ${where}:`,
    ...grants.map((g) => `  user ${g.sub}, client ${g.clientId}, ${g.resource}, granted ${new Date(g.grantedAt * 1000).toISOString()}`),
    "Gateways on this store refuse their tokens within 1 s. The upstream tokens of a grant are",
    "given back to the upstream when its client next presents one of the grant's refresh tokens.",
  ].join("\n");
}
