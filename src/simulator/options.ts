import type { Clock } from "../clock.js";

export interface SimApp {
  kind: "oauth_app" | "github_app";
  clientId: string;
  clientSecrets: string[];
  callbackUrls: string[];
  name?: string;
  /** github_app only; default true. */
  expiringUserTokens?: boolean;
  suspended?: boolean;
}

export interface SimEmail {
  email: string;
  primary: boolean;
  verified: boolean;
  visibility: "public" | "private" | null;
}

export interface SimOrgMembership {
  login: string;
  id: number;
  role: "admin" | "member" | "billing_manager";
  state: "active" | "pending";
  /** client_ids this org has not approved under OAuth App access restrictions. */
  oauthAppRestricted?: string[];
  samlRequired?: boolean;
}

export interface SimUser {
  id: number;
  login: string;
  name?: string;
  publicEmail?: string | null;
  /** Default: one verified primary address. */
  emails?: SimEmail[];
  orgs?: SimOrgMembership[];
}

export interface SimQuirks {
  validateTokensUpfront: boolean;
  emitLegacySessionId: boolean;
  prmResourceBug2025: boolean;
  legacyRedirectMismatch: boolean;
  longTokens: boolean;
}

export interface SimFaults {
  /** The next N token-endpoint calls answer 502. */
  tokenEndpoint5xx: number;
  /** The next N token-endpoint calls have their connection reset before any answer. */
  tokenEndpointReset: number;
  latencyMs: number;
}

export interface SimulatorOptions {
  clock?: Clock;
  host?: string;
  ports?: { web?: number; api?: number; mcp?: number };
  apps?: SimApp[];
  users?: SimUser[];
  browserUser?: number;
  consent?: "auto-approve" | "auto-deny" | "page";
  quirks?: Partial<SimQuirks>;
  faults?: Partial<SimFaults>;
}

export const DEFAULT_APPS: SimApp[] = [
  {
    kind: "oauth_app",
    clientId: "Ov23liSimOAuthApp0001",
    clientSecrets: ["5f0c3e9a7b1d2c4e6f8a0b1c2d3e4f5a6b7c8d9e"],
    callbackUrls: ["http://127.0.0.1/upstream/callback"],
    name: "Simulated OAuth App",
  },
  {
    kind: "github_app",
    clientId: "Iv23liSimGitHubApp001",
    clientSecrets: ["a1b2c3d4e5f60718293a4b5c6d7e8f9001122334"],
    callbackUrls: ["http://127.0.0.1/upstream/callback"],
    name: "Simulated GitHub App",
    expiringUserTokens: true,
  },
];

export const DEFAULT_USERS: SimUser[] = [{ id: 583231, login: "octocat", name: "The Octocat" }];

export const DEFAULT_QUIRKS: SimQuirks = {
  validateTokensUpfront: true,
  emitLegacySessionId: false,
  prmResourceBug2025: false,
  legacyRedirectMismatch: false,
  longTokens: false,
};

export const appName = (app: SimApp): string => app.name ?? app.clientId;

export const userEmails = (user: SimUser): SimEmail[] =>
  user.emails ?? [
    {
      email: user.publicEmail ?? `${user.login}@users.noreply.github.com`,
      primary: true,
      verified: true,
      visibility: user.publicEmail ? "public" : "private",
    },
  ];
