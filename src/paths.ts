/** Every path the gateway answers at, and the builders of the per-upstream ones. */
export const PATHS = {
  authorize: "/authorize",
  token: "/token",
  register: "/register",
  /** RFC 7592 §2: the client configuration endpoint, `registration_client_uri`. */
  registeredClient: "/register/:client_id",
  revoke: "/revoke",
  introspect: "/introspect",
  /** RFC 8628 §3.1: the device authorization endpoint. */
  deviceAuthorization: "/device_authorization",
  /** RFC 8628 §3.3: where the user enters the code a device shows (`verification_uri`). */
  device: "/device",
  login: "/login",
  upstreamCallback: "/upstream/callback",
  upstreamCallbackNamed: "/upstream/callback/:name",
  clientMetadata: "/upstream/client-metadata.json",
  clientMetadataNamed: "/upstream/client-metadata/:name.json",
  /** RFC 9728 §3.1 */
  protectedResourceMetadata: "/.well-known/oauth-protected-resource",
  /** RFC 8414 §3.1 */
  authorizationServerMetadata: "/.well-known/oauth-authorization-server",
  /** OpenID Connect Discovery §4 */
  openidConfiguration: "/.well-known/openid-configuration",
  mcp: "/mcp",
  healthz: "/healthz",
  readyz: "/readyz",
} as const;

/**
 * RFC 9700 §4.4.2: a client of several authorization servers needs a distinct redirect URI for each, and
 * must check that an answer arrived at the one its request named (mix-up defence). The flags' single
 * upstream keeps the plain path. GitHub OAuth Apps take any subdirectory of the registered callback.
 */
export const callbackPath = (name: string): string => (name ? `${PATHS.upstreamCallback}/${name}` : PATHS.upstreamCallback);

/** The gateway's Client ID Metadata Document toward one upstream: it lists that upstream's callback only. */
export const clientMetadataPath = (name: string): string => (name ? `/upstream/client-metadata/${name}.json` : PATHS.clientMetadata);

/** The authorization endpoint of one upstream's issuer; the flags' single upstream keeps the gateway's own. */
export const authorizePath = (name: string): string => (name ? `${PATHS.authorize}/${name}` : PATHS.authorize);

/** The device authorization endpoint of one upstream's issuer (RFC 8628 §3.1); the flags' single upstream keeps the gateway's own. */
export const deviceAuthorizationPath = (name: string): string => (name ? `${PATHS.deviceAuthorization}/${name}` : PATHS.deviceAuthorization);

/** Where one upstream's MCP endpoint is mounted: `/mcp`, or `/mcp/<name>` for an upstream of a config file. */
export const mcpPath = (name: string): string => (name ? `${PATHS.mcp}/${name}` : PATHS.mcp);

/** RFC 9728 §3.1: the metadata of the resource at `path`, path-inserted. */
export const protectedResourceMetadataPath = (path: string): string => `${PATHS.protectedResourceMetadata}${path}`;

/** RFC 8414 §3.1 path insertion and OpenID Connect Discovery §4 path appending, for an issuer at `path`. */
export const issuerMetadataPaths = (path: string): string[] => [
  `${PATHS.authorizationServerMetadata}${path}`,
  `${PATHS.openidConfiguration}${path}`,
  `${path}${PATHS.openidConfiguration}`,
];
