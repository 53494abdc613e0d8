import type { UpstreamConfig } from "../config.js";
import type { OAuthErrorCode } from "../errors.js";
import type { Logger } from "../log.js";
import type { CodeExchange } from "../upstream/client.js";
import type { Membership, UpstreamIdentity } from "../upstream/identity.js";
import type { Mount } from "../upstream/mounts.js";

/** Why a user may not pass: what the page says, and the error the client hears (RFC 6749 §4.1.2.1). */
export interface Refusal {
  error: Extract<OAuthErrorCode, "access_denied" | "temporarily_unavailable">;
  reason: string;
  /** What the user (or an admin) can do about it. */
  hint?: string;
}

const denied = (reason: string, hint?: string): Refusal => ({ error: "access_denied", reason, ...(hint ? { hint } : {}) });

/** `allowUsers` of an upstream without a leg of its own (static credentials, none): gateway user names. */
export function gatewayUserRefusal(config: UpstreamConfig, user: string): Refusal | undefined {
  if (config.allowOrgs.length) return denied(`${config.title} checks GitHub organisations, which needs an upstream that signs users in with GitHub.`);
  if (config.allowUsers.length && !config.allowUsers.includes(user)) return denied(`The gateway user ${user} may not use ${config.title}.`);
  return undefined;
}

/**
 * Who the user is upstream, and whether the allowlists let them pass: a listed user, or an active
 * member of a listed GitHub organisation. Without allowlists or identity headers, identity is best effort.
 */
export async function whoMayPass(
  mount: Mount,
  exchange: CodeExchange,
  log: Pick<Logger, "warn">,
): Promise<{ identity?: UpstreamIdentity } | { refusal: Refusal }> {
  const { allowUsers, allowOrgs, title } = mount.config;
  const guarded = allowUsers.length > 0 || allowOrgs.length > 0;
  let identity: UpstreamIdentity | undefined;
  try {
    identity = await mount.client.identity(exchange);
  } catch (error) {
    // with identity headers on, a grant made now would lack them for the whole of its life
    if (!guarded && !mount.config.identityHeaders) {
      log.warn(`cannot learn the upstream identity for ${mount.resource}: ${(error as Error).message}`);
      return {};
    }
    return {
      refusal: { error: "temporarily_unavailable", reason: `The gateway could not ask ${title} who you are, which it needs to know before it lets you pass.` },
    };
  }
  if (!guarded) return identity ? { identity } : {};
  if (!identity) return { refusal: denied(`${title} does not tell the gateway who you are, so its allowlist cannot be checked.`) };
  if (listed(allowUsers, identity)) return { identity };
  const web = allowOrgs.length ? await mount.client.githubWeb() : undefined;
  if (allowOrgs.length && !web) return { refusal: denied(`${title} lists organisations, which only an upstream that signs users in with GitHub can check.`) };

  const memberships: [string, Membership][] = [];
  for (const org of allowOrgs) {
    const membership = await mount.client.membership(exchange.tokens, org).catch(() => undefined);
    if (membership === undefined)
      return { refusal: { error: "temporarily_unavailable", reason: `The gateway could not check your membership of ${org} at ${title}.` } };
    if (membership === "active") return { identity };
    memberships.push([org, membership]);
  }
  return { refusal: denied(`${describe(identity)} may not use ${title} through this gateway.`, hint(memberships, web)) };
}

/** GitHub logins ignore case, as GitHub does; OIDC `sub` is exact; a (verified) email ignores case. */
function listed(allowUsers: readonly string[], identity: UpstreamIdentity): boolean {
  const lower = (s: string | undefined) => s?.toLowerCase();
  return allowUsers.some(
    (entry) =>
      (identity.login !== undefined && lower(entry) === lower(identity.login)) ||
      (identity.login === undefined && entry === identity.sub) ||
      (identity.email !== undefined && lower(entry) === lower(identity.email)),
  );
}

const describe = (identity: UpstreamIdentity): string =>
  identity.login ? `GitHub user ${identity.login}` : `The account ${identity.email ?? identity.preferred_username ?? identity.sub ?? "you signed in with"}`;

function hint(memberships: [string, Membership][], web = "https://github.com"): string | undefined {
  const notes = memberships.flatMap(([org, membership]) => {
    if (membership === "pending") return [`Your invitation to ${org} is still pending: accept it on GitHub, then sign in again.`];
    if (membership === "restricted")
      return [
        `${org} restricts third-party OAuth apps and has not approved this gateway's app, so your membership cannot be seen: an owner of ${org} can approve it at ${web}/organizations/${org}/settings/oauth_application_policy.`,
      ];
    return [];
  });
  return notes.length ? notes.join(" ") : undefined;
}
