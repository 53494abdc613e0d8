import { createPrivateKey, createPublicKey, webcrypto, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import * as oauth from "oauth4webapi";
import { calculateJwkThumbprint, type JWK } from "jose";

/** RFC 7591 §2 / RFC 8414 §2: how a client authenticates at the token endpoint. */
export const TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"] as const;
export type TokenEndpointAuthMethod = (typeof TOKEN_ENDPOINT_AUTH_METHODS)[number];

/** What the gateway holds to authenticate with toward one upstream. */
export interface ClientCredentials {
  secret?: string | undefined;
  key?: SigningKey | undefined;
  /** The operator's choice (`oauth.tokenEndpointAuthMethod`), else the registration's. */
  method?: TokenEndpointAuthMethod | undefined;
}

/** The operator's private key for `private_key_jwt` (RFC 7523), with its public half for registration. */
export interface SigningKey {
  key: webcrypto.CryptoKey;
  kid: string;
  alg: string;
  publicJwk: JWK;
}

/**
 * The method to use: the pinned or registered one; `private_key_jwt` when a key is given; `none`
 * without a secret; else by the upstream's metadata: `client_secret_basic` when offered or when the
 * metadata says nothing (RFC 8414 §2's default), `client_secret_post` when only it is offered.
 * `fallback` is what to assume when the metadata says nothing (GitHub documents its secret as a form field).
 */
export function chooseAuthMethod(
  as: Pick<oauth.AuthorizationServer, "token_endpoint_auth_methods_supported">,
  credentials: ClientCredentials,
  fallback: TokenEndpointAuthMethod = "client_secret_basic",
): TokenEndpointAuthMethod {
  if (credentials.method) return credentials.method;
  if (credentials.key) return "private_key_jwt";
  if (credentials.secret === undefined) return "none";
  const offered = as.token_endpoint_auth_methods_supported;
  if (!offered) return fallback;
  if (offered.includes("client_secret_basic")) return "client_secret_basic";
  if (offered.includes("client_secret_post")) return "client_secret_post";
  return "client_secret_basic";
}

/**
 * What the gateway asks for when it registers (RFC 7591 §2): the operator's pin, `private_key_jwt`
 * with a key, `none` where the server takes public clients only, else a secret sent as the server prefers.
 */
export function registrationAuthMethod(
  as: Pick<oauth.AuthorizationServer, "token_endpoint_auth_methods_supported">,
  pinned: TokenEndpointAuthMethod | undefined,
  key: SigningKey | undefined,
): TokenEndpointAuthMethod {
  const offered = as.token_endpoint_auth_methods_supported;
  const secretMethods = offered?.filter((m) => m === "client_secret_basic" || m === "client_secret_post") ?? [];
  if (!pinned && !key && offered?.includes("none") && secretMethods.length === 0) return "none";
  return chooseAuthMethod(as, { secret: "", key, method: pinned });
}

/** oauth4webapi's ClientAuth for a method, or why the gateway cannot use it. */
export function clientAuth(method: TokenEndpointAuthMethod, credentials: ClientCredentials): oauth.ClientAuth {
  switch (method) {
    case "none":
      return oauth.None();
    case "private_key_jwt":
      if (!credentials.key) throw new Error("the upstream client authenticates with private_key_jwt: give its key as oauth.privateKey");
      // the header names the algorithm as the registered key does (oauth4webapi would write "Ed25519" for "EdDSA")
      return oauth.PrivateKeyJwt(
        { key: credentials.key.key, kid: credentials.key.kid },
        { [oauth.modifyAssertion]: (header) => void (header.alg = credentials.key!.alg) },
      );
    default:
      if (credentials.secret === undefined) throw new Error(`the upstream client authenticates with ${method}: give its secret`);
      return method === "client_secret_basic" ? clientSecretBasic(credentials.secret) : oauth.ClientSecretPost(credentials.secret);
  }
}

/**
 * RFC 6749 §2.3.1: id and secret form-encoded, then HTTP Basic. Encoded as the WHATWG form serializer
 * does, which leaves `*-._` as they are: oauth4webapi escapes those too, which is lawful, but servers that
 * compare the id without decoding it (many do) then refuse an id such as `my-client`.
 */
function clientSecretBasic(secret: string): oauth.ClientAuth {
  const encode = (value: string) => new URLSearchParams({ v: value }).toString().slice(2);
  return (_as, client, _body, headers) => {
    headers.set("authorization", `Basic ${Buffer.from(`${encode(client.client_id)}:${encode(secret)}`).toString("base64")}`);
  };
}

/** The JWS algorithm a key signs with: RS256 for RSA (PS256 is not guessed), ES256/384/512 by curve, EdDSA. */
function algorithmOf(key: KeyObject): { alg: string; params: webcrypto.RsaHashedImportParams | webcrypto.EcKeyImportParams | webcrypto.Algorithm } {
  const type = key.asymmetricKeyType;
  if (type === "rsa") return { alg: "RS256", params: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" } };
  if (type === "ed25519") return { alg: "EdDSA", params: { name: "Ed25519" } };
  const curve = key.asymmetricKeyDetails?.namedCurve;
  const bits = type === "ec" ? { prime256v1: 256, secp384r1: 384, secp521r1: 521 }[curve ?? ""] : undefined;
  if (bits) return { alg: `ES${bits === 521 ? 512 : bits}`, params: { name: "ECDSA", namedCurve: `P-${bits}` } };
  const kind = type === "ec" ? `EC keys on ${curve}` : `${(type ?? "symmetric").toUpperCase()} keys`;
  throw new Error(`${kind} cannot sign client assertions: give an RSA, P-256/384/521 or Ed25519 private key`);
}

/**
 * Why a pinned method cannot work with what else is configured, or undefined. `names` are how the
 * configuration spells the key, the secret and the method (flags or config-file keys).
 */
export function pinnedMethodProblem(
  given: { method: TokenEndpointAuthMethod | undefined; privateKey: string | undefined; clientId: string | undefined; clientSecret: string | undefined },
  names: { method: string; privateKey: string; clientSecret: string },
): string | undefined {
  if (given.method === "private_key_jwt" && given.privateKey === undefined)
    return `${names.method} "private_key_jwt" needs ${names.privateKey}: the PEM private key the gateway signs with`;
  if ((given.method === "client_secret_basic" || given.method === "client_secret_post") && given.clientId !== undefined && given.clientSecret === undefined)
    return `${names.method} "${given.method}" needs ${names.clientSecret}`;
  return undefined;
}

/** The method named, or undefined when it is none of the four. */
export const authMethodNamed = (value: unknown): TokenEndpointAuthMethod | undefined => TOKEN_ENDPOINT_AUTH_METHODS.find((m) => m === value);

/** Why a PEM text cannot serve as the `private_key_jwt` key, or undefined when it can. Never quotes the text. */
export function signingKeyProblem(pem: string): string | undefined {
  if (!pem.includes("-----BEGIN")) return "it holds no PEM private key (-----BEGIN PRIVATE KEY-----)";
  if (!pem.includes("\n") && pem.includes("\\n")) return 'its line breaks are written as "\\n": give the key with real line breaks, or in a file';
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch {
    return "it is not a private key the gateway can read: PEM, PKCS#8, PKCS#1 or SEC1, without a passphrase";
  }
  try {
    algorithmOf(key);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

/**
 * The PEM text of a key given as the text itself (`-----BEGIN` …) or as the path of a file holding it,
 * relative to `baseDir`; or why neither. Messages never show the value: it may be the key.
 */
export function loadSigningKey(value: string, baseDir: string): { pem: string } | { problem: string } {
  let pem = value;
  if (!value.includes("-----BEGIN")) {
    try {
      pem = readFileSync(resolve(baseDir, value), "utf8");
    } catch (error) {
      return {
        problem: `the file it names cannot be read (${(error as NodeJS.ErrnoException).code ?? "error"}): give a PEM private key, or the path of a file holding one`,
      };
    }
  }
  const problem = signingKeyProblem(pem);
  return problem ? { problem: `it is not a usable private key: ${problem}` } : { pem };
}

/** Import a PEM private key (PKCS#8, or PKCS#1/SEC1) for `private_key_jwt`; its `kid` is the RFC 7638 thumbprint. */
export async function importSigningKey(pem: string): Promise<SigningKey> {
  const keyObject = createPrivateKey(pem);
  const { alg, params } = algorithmOf(keyObject);
  const pkcs8 = keyObject.export({ format: "der", type: "pkcs8" });
  const key = await webcrypto.subtle.importKey("pkcs8", pkcs8, params, false, ["sign"]);
  const publicJwk = createPublicKey(keyObject).export({ format: "jwk" }) as JWK;
  const kid = await calculateJwkThumbprint(publicJwk);
  return { key, kid, alg, publicJwk: { ...publicJwk, kid, alg, use: "sig" } };
}
