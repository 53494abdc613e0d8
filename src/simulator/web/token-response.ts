import type { SimResponse } from "../http.js";
import type { TokenErrorCode, TokenOutcome, TokenResponse } from "./token-endpoint.js";

const TOKEN_ERRORS_DOC = "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/";
const AUTHORIZE_ERRORS_DOC = "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/";

const ERRORS: Record<TokenErrorCode, { description: string; uri: string }> = {
  incorrect_client_credentials: {
    description: "The client_id and/or client_secret passed are incorrect.",
    uri: `${TOKEN_ERRORS_DOC}#incorrect-client-credentials`,
  },
  bad_verification_code: {
    description: "The code passed is incorrect or expired.",
    uri: `${TOKEN_ERRORS_DOC}#bad-verification-code`,
  },
  redirect_uri_mismatch: {
    description: "The redirect_uri MUST match the registered callback URL for this application.",
    uri: `${AUTHORIZE_ERRORS_DOC}#redirect-uri-mismatch2`,
  },
  unverified_user_email: {
    description: "The user must have a verified primary email.",
    uri: `${TOKEN_ERRORS_DOC}#unverified_user_email`,
  },
  bad_refresh_token: {
    description: "The refresh token passed is incorrect or expired.",
    uri: `${TOKEN_ERRORS_DOC}#bad-verification-code`,
  },
  unsupported_grant_type: {
    description: "The grant type is not supported.",
    uri: `${TOKEN_ERRORS_DOC}#unsupported-grant-type`,
  },
  device_flow_disabled: {
    description: "Device Flow must be explicitly enabled for this App",
    uri: "https://docs.github.com/apps/building-oauth-apps/authorizing-oauth-apps#device-flow",
  },
};

type Fields = Array<[string, string | number]>;

/** Field order of github.com's JSON bodies. */
function jsonFields(outcome: TokenOutcome): Fields {
  if ("error" in outcome) return errorFields(outcome.error);
  const r = outcome.response;
  if (r.refresh_token === undefined)
    return [
      ["access_token", r.access_token],
      ["token_type", r.token_type],
      ["scope", r.scope],
    ];
  return alphabetical(r);
}

const errorFields = (code: TokenErrorCode): Fields => [
  ["error", code],
  ["error_description", ERRORS[code].description],
  ["error_uri", ERRORS[code].uri],
];

const alphabetical = (r: TokenResponse): Fields =>
  Object.entries(r)
    .filter((entry): entry is [string, string | number] => entry[1] !== undefined)
    .sort(([a], [b]) => a.localeCompare(b));

const xmlEscape = (v: string): string => v.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** QUIRK (docs authorizing-oauth-apps): every OAuth error is HTTP 200; the body format follows Accept. */
export function serializeTokenOutcome(outcome: TokenOutcome, accept: string | undefined): SimResponse {
  const headers = { "cache-control": "no-store" };
  const wants = (accept ?? "").toLowerCase();
  if (wants.includes("application/json")) {
    return {
      status: 200,
      headers: { ...headers, "content-type": "application/json; charset=utf-8" },
      body: JSON.stringify(Object.fromEntries(jsonFields(outcome))),
    };
  }
  if (wants.includes("application/xml")) {
    const fields = "error" in outcome ? errorFields(outcome.error) : [...alphabetical(outcome.response)].reverse();
    const inner = fields.map(([k, v]) => `<${k}>${xmlEscape(String(v))}</${k}>`).join("");
    return { status: 200, headers: { ...headers, "content-type": "application/xml; charset=utf-8" }, body: `<OAuth>${inner}</OAuth>` };
  }
  const fields = "error" in outcome ? errorFields(outcome.error) : alphabetical(outcome.response);
  const body = new URLSearchParams(fields.map(([k, v]): [string, string] => [k, String(v)])).toString();
  return { status: 200, headers: { ...headers, "content-type": "application/x-www-form-urlencoded; charset=utf-8" }, body };
}
