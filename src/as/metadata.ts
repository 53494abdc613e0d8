import { PATHS } from "../paths.js";
import { ASSERTION_ALGORITHMS } from "./client-assertion.js";
import { DEVICE_CODE_GRANT } from "./grant-types.js";

/**
 * Discovery documents: pure functions of the gateway's URLs and the scopes it advertises.
 * An endpoint appears here only when the app mounts it.
 */
export interface GatewayUrls {
  /** Issuer: the public URL, byte-identical wherever it appears (RFC 8414 §3.3, RFC 9207). */
  issuer: string;
}

export const gatewayUrls = (publicUrl: string): GatewayUrls => ({ issuer: publicUrl });

/** One issuer's own parts: the gateway's, or (config file) one upstream's, which share every other endpoint. */
export interface IssuerUrls {
  issuer: string;
  authorizationEndpoint: string;
  deviceAuthorizationEndpoint: string;
}

/** RFC 8414 §2 */
export function authorizationServerMetadata(urls: GatewayUrls, scopes: readonly string[] | undefined, issuerUrls: IssuerUrls = ownIssuer(urls)) {
  return {
    issuer: issuerUrls.issuer,
    authorization_endpoint: issuerUrls.authorizationEndpoint,
    device_authorization_endpoint: issuerUrls.deviceAuthorizationEndpoint, // RFC 8628 §4
    token_endpoint: `${urls.issuer}${PATHS.token}`,
    registration_endpoint: `${urls.issuer}${PATHS.register}`,
    ...(scopes?.length ? { scopes_supported: scopes } : {}),
    response_types_supported: ["code"],
    response_modes_supported: ["query"],
    grant_types_supported: ["authorization_code", "refresh_token", DEVICE_CODE_GRANT],
    // `none` stays listed: Claude uses Client ID Metadata Documents only beside it
    token_endpoint_auth_methods_supported: ["none", "client_secret_post", "client_secret_basic", "private_key_jwt"],
    token_endpoint_auth_signing_alg_values_supported: ASSERTION_ALGORITHMS, // RFC 7523 §2.2, for private_key_jwt
    revocation_endpoint: `${urls.issuer}${PATHS.revoke}`, // RFC 7009
    revocation_endpoint_auth_methods_supported: ["none", "client_secret_post", "client_secret_basic", "private_key_jwt"],
    revocation_endpoint_auth_signing_alg_values_supported: ASSERTION_ALGORITHMS,
    introspection_endpoint: `${urls.issuer}${PATHS.introspect}`, // RFC 7662: confidential clients only
    introspection_endpoint_auth_methods_supported: ["client_secret_post", "client_secret_basic", "private_key_jwt"],
    introspection_endpoint_auth_signing_alg_values_supported: ASSERTION_ALGORITHMS,
    code_challenge_methods_supported: ["S256"],
    client_id_metadata_document_supported: true, // MCP 2025-11-25 §Client ID Metadata Documents
    authorization_response_iss_parameter_supported: true, // RFC 9207 §3
    service_documentation: "https://www.npmjs.com/package/mcp-oauth-gateway",
  };
}

const ownIssuer = (urls: GatewayUrls): IssuerUrls => ({
  issuer: urls.issuer,
  authorizationEndpoint: `${urls.issuer}${PATHS.authorize}`,
  deviceAuthorizationEndpoint: `${urls.issuer}${PATHS.deviceAuthorization}`,
});

/** RFC 9728 §2, for one mounted upstream: its own resource and the issuer that grants access to it. */
export function protectedResourceMetadata(resource: { resource: string; title: string; issuer: string }, scopes: readonly string[] | undefined) {
  return {
    resource: resource.resource,
    authorization_servers: [resource.issuer],
    ...(scopes?.length ? { scopes_supported: scopes } : {}),
    bearer_methods_supported: ["header"],
    resource_name: resource.title ? `${resource.title} (through MCP OAuth Gateway)` : "MCP OAuth Gateway",
  };
}
