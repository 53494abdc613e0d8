import { generateKeyPairSync, type KeyPairKeyObjectResult } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { afterAll, describe, expect, it } from "vitest";
import { configRefusal } from "../../support/config-refusal.js";
import { parseUpstreamsFile, readUpstreamsFile } from "../../../src/config/file.js";

/**
 * How a config-file entry authenticates toward its upstream: `oauth.privateKey` and
 * `oauth.tokenEndpointAuthMethod` (RFC 7523 `private_key_jwt`, RFC 7591 §2 methods), and a fixed
 * `headers.Authorization`. The rest of the file format is in the other file*.test.ts here.
 */

const PUBLIC_URL = "https://gw.example.com";
const URL_X = "https://mcp.example.org/mcp";
const TOKEN = "Bw4Kd9Tm";

const pem = (
  pair: { privateKey: { export(o: { format: "pem"; type: "pkcs8" | "sec1" | "pkcs1" }): string | Buffer } },
  type: "pkcs8" | "sec1" | "pkcs1" = "pkcs8",
) => pair.privateKey.export({ format: "pem", type }) as string;
const KEYS = {
  ec: pem(generateKeyPairSync("ec", { namedCurve: "P-256" })),
  ecSec1: pem(generateKeyPairSync("ec", { namedCurve: "P-384" }), "sec1"),
  rsaPkcs1: pem(generateKeyPairSync("rsa", { modulusLength: 2048 }), "pkcs1"),
  ed25519: pem(generateKeyPairSync("ed25519")),
};
const UNSIGNING = {
  x25519: pem(generateKeyPairSync("x25519")),
  dh: pem(generateDhKeyPair()),
  secp256k1: pem(generateKeyPairSync("ec", { namedCurve: "secp256k1" })),
  ed448: pem(generateKeyPairSync("ed448")),
};
const ENCRYPTED = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({
  format: "pem",
  type: "pkcs8",
  cipher: "aes-256-cbc",
  passphrase: "pw",
}) as string;
const PUBLIC_ONLY = generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ format: "pem", type: "spki" }) as string;
/** The base64 body of a PEM: the key material itself. */
const body = (key: string): string => key.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
/** A DER key as base64 without PEM armour, as a secret store may hand it over. */
const BARE_KEY = body(KEYS.ec);

/** Every 12-character piece of the key material and of the token: none may appear in a message. */
const SECRET_PARTS = [...Object.values(KEYS), ...Object.values(UNSIGNING), ENCRYPTED, PUBLIC_ONLY]
  .map(body)
  .concat([TOKEN])
  .flatMap((s) => Array.from({ length: Math.max(1, s.length - 11) }, (_, i) => s.slice(i, i + 12)));

const dir = mkdtempSync(join(tmpdir(), "config-file-auth-"));
mkdirSync(join(dir, "keys"));
writeFileSync(join(dir, "keys", "gateway.pem"), KEYS.ec);
writeFileSync(join(dir, "keys", "x25519.pem"), UNSIGNING.x25519);
writeFileSync(join(dir, "not-a-key.txt"), "just some text\n");
afterAll(() => rmSync(dir, { recursive: true, force: true }));
/** The config file these entries are read from: relative key paths are relative to it, whatever the working directory. */
const SOURCE = join(dir, "gateway.json");

type Json = Record<string, unknown>;
const ENV = { INTERNAL_TOKEN: TOKEN, KEY_PEM: KEYS.ed25519, BARE_KEY };
const one = (entry: Json, env: Record<string, string> = ENV) => parseUpstreamsFile(JSON.stringify({ mcpServers: { x: entry } }), SOURCE, env, PUBLIC_URL)[0]!;

/** The message of the ConfigError the entry is refused with, one line and without a secret. */
const refused = (entry: Json, env: Record<string, string> = ENV): string => configRefusal(() => one(entry, env), SECRET_PARTS);
const at = (key: string) => `${SOURCE}: mcpServers.x.oauth.${key}`;

describe("oauth.privateKey", () => {
  it.each([
    ["a PKCS#8 P-256 key", KEYS.ec],
    ["a SEC1 P-384 key", KEYS.ecSec1],
    ["a PKCS#1 RSA key", KEYS.rsaPkcs1],
    ["a PKCS#8 Ed25519 key", KEYS.ed25519],
  ])("takes %s written in the file, as it is", (_what, key) => {
    expect(one({ url: URL_X, oauth: { clientId: "gw", privateKey: key } })).toMatchObject({ auth: "oauth", clientId: "gw", privateKey: key });
  });

  it("takes a key from a variable", () => {
    expect(one({ url: URL_X, oauth: { clientId: "gw", privateKey: "${KEY_PEM}" } }).privateKey).toBe(KEYS.ed25519);
  });

  it("reads a path relative to the config file, not to the working directory, and an absolute path", () => {
    expect(process.cwd()).not.toBe(dir);
    expect(one({ url: URL_X, oauth: { clientId: "gw", privateKey: "keys/gateway.pem" } }).privateKey).toBe(KEYS.ec);
    expect(one({ url: URL_X, oauth: { clientId: "gw", privateKey: "./keys/../keys/gateway.pem" } }).privateKey).toBe(KEYS.ec);
    expect(one({ url: URL_X, oauth: { clientId: "gw", privateKey: join(dir, "keys", "gateway.pem") } }).privateKey).toBe(KEYS.ec);
  });

  it("reads it relative to the file named by --config (readUpstreamsFile)", () => {
    const file = join(dir, "from-disk.json");
    writeFileSync(file, JSON.stringify({ mcpServers: { x: { url: URL_X, oauth: { privateKey: "keys/gateway.pem" } } } }));
    expect(readUpstreamsFile(file, {}, PUBLIC_URL)[0]!.privateKey).toBe(KEYS.ec);
  });

  it("says why a path cannot be read, resolved against the config file, without showing the value (it may be a key)", () => {
    expect(refused({ url: URL_X, oauth: { privateKey: "keys/missing.pem" } })).toBe(
      `${at("privateKey")}: the file it names cannot be read (ENOENT): give a PEM private key, or the path of a file holding one`,
    );
    expect(refused({ url: URL_X, oauth: { privateKey: "keys" } })).toBe(
      `${at("privateKey")}: the file it names cannot be read (EISDIR): give a PEM private key, or the path of a file holding one`,
    );
  });

  const UNREADABLE = "it is not a private key the gateway can read: PEM, PKCS#8, PKCS#1 or SEC1, without a passphrase";
  it.each([
    ["PEM armour around no key", "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n", UNREADABLE],
    ["a public key", PUBLIC_ONLY, UNREADABLE],
    ["a passphrase-protected key", ENCRYPTED, UNREADABLE],
    [
      "a PEM whose line breaks were written as \\n",
      KEYS.ec.replace(/\n/g, "\\n"),
      'its line breaks are written as "\\n": give the key with real line breaks, or in a file',
    ],
  ])("refuses %s written in the file, saying why without showing it", (_what, key, why) => {
    expect(refused({ url: URL_X, oauth: { privateKey: key } })).toBe(`${at("privateKey")}: it is not a usable private key: ${why}`);
  });

  it("refuses a file that holds no key", () => {
    expect(refused({ url: URL_X, oauth: { privateKey: "not-a-key.txt" } })).toBe(
      `${at("privateKey")}: it is not a usable private key: it holds no PEM private key (-----BEGIN PRIVATE KEY-----)`,
    );
  });

  it.each([
    ["an X25519 key", UNSIGNING.x25519, "X25519 keys"],
    ["a Diffie-Hellman key", UNSIGNING.dh, "DH keys"],
    ["a secp256k1 key", UNSIGNING.secp256k1, "EC keys on secp256k1"],
    ["an Ed448 key", UNSIGNING.ed448, "ED448 keys"],
  ])("refuses %s, which cannot sign a client assertion, naming the kinds that can", (_what, key, kind) => {
    expect(refused({ url: URL_X, oauth: { privateKey: key } })).toBe(
      `${at("privateKey")}: it is not a usable private key: ${kind} cannot sign client assertions: give an RSA, P-256/384/521 or Ed25519 private key`,
    );
  });

  it("refuses a key file of a kind that cannot sign, the same way", () => {
    expect(refused({ url: URL_X, oauth: { privateKey: "keys/x25519.pem" } })).toBe(
      `${at("privateKey")}: it is not a usable private key: X25519 keys cannot sign client assertions: give an RSA, P-256/384/521 or Ed25519 private key`,
    );
  });

  it("does not show a key without PEM armour that came from a variable, though it reads it as a path", () => {
    expect(refused({ url: URL_X, oauth: { privateKey: "${BARE_KEY}" } })).toMatch(new RegExp(`^${escape(at("privateKey"))}`));
  });

  it.each([[""], [42], [["-----BEGIN PRIVATE KEY-----"]]])("refuses privateKey %j", (privateKey) => {
    expect(refused({ url: URL_X, oauth: { privateKey } })).toBe(`${at("privateKey")} must be a non-empty string`);
  });
});

describe("oauth.tokenEndpointAuthMethod", () => {
  it.each([
    ["client_secret_basic", "a pre-registered client and its secret", { clientId: "gw", clientSecret: "s" }],
    ["client_secret_post", "a pre-registered client and its secret", { clientId: "gw", clientSecret: "s" }],
    ["private_key_jwt", "a pre-registered client and a key", { clientId: "gw", privateKey: KEYS.ec }],
    ["none", "a pre-registered public client", { clientId: "gw" }],
    ["client_secret_basic", "no client (the registration brings the secret)", {}],
    ["private_key_jwt", "a key and no client (registered with it)", { privateKey: KEYS.ec }],
  ])("takes %s with %s", (method, _what, fields) => {
    expect(one({ url: URL_X, oauth: { ...fields, tokenEndpointAuthMethod: method } })).toMatchObject({ auth: "oauth", tokenEndpointAuthMethod: method });
  });

  it("is absent unless given: the method is then chosen from the upstream's metadata", () => {
    expect(one({ url: URL_X, oauth: { clientId: "gw", privateKey: KEYS.ec } })).not.toHaveProperty("tokenEndpointAuthMethod");
  });

  it.each([["private_key"], ["CLIENT_SECRET_BASIC"], ["client_secret_jwt"], ["tls_client_auth"], [""], [1], [null], [["none"]]])(
    "refuses %j, listing the four it takes",
    (method) => {
      expect(refused({ url: URL_X, oauth: { tokenEndpointAuthMethod: method } })).toBe(
        `${at("tokenEndpointAuthMethod")} must be one of "client_secret_basic", "client_secret_post", "private_key_jwt", "none"`,
      );
    },
  );

  it("refuses private_key_jwt without privateKey", () => {
    expect(refused({ url: URL_X, oauth: { clientId: "gw", tokenEndpointAuthMethod: "private_key_jwt" } })).toBe(
      `${at("tokenEndpointAuthMethod")} "private_key_jwt" needs mcpServers.x.oauth.privateKey: the PEM private key the gateway signs with`,
    );
    expect(refused({ url: URL_X, oauth: { tokenEndpointAuthMethod: "private_key_jwt" } })).toContain("needs mcpServers.x.oauth.privateKey");
  });

  it.each(["client_secret_basic", "client_secret_post"])("refuses %s for a pre-registered client without clientSecret", (method) => {
    expect(refused({ url: URL_X, oauth: { clientId: "gw", tokenEndpointAuthMethod: method } })).toBe(
      `${at("tokenEndpointAuthMethod")} "${method}" needs mcpServers.x.oauth.clientSecret`,
    );
    expect(refused({ url: URL_X, oauth: { clientId: "gw", privateKey: KEYS.ec, tokenEndpointAuthMethod: method } })).toBe(
      `${at("tokenEndpointAuthMethod")} "${method}" needs mcpServers.x.oauth.clientSecret`,
    );
  });
});

describe("headers.Authorization", () => {
  const plainRest = { identityHeaders: false, allowUsers: [], allowOrgs: [] };

  it.each(["Authorization", "authorization", "AUTHORIZATION"])(
    '%s in an entry without oauth or auth is a static credential, taken out of "headers"',
    (name) => {
      const server = one({ url: URL_X, headers: { [name]: "Bearer ${INTERNAL_TOKEN}", "X-MCP-Readonly": "true" } });
      expect(server).toStrictEqual({
        name: "x",
        path: "/mcp/x",
        title: "x",
        resource: URL_X,
        auth: "static",
        credentials: { authorization: `Bearer ${TOKEN}` },
        headers: { "x-mcp-readonly": "true" },
        ...plainRest,
      });
      expect(Object.isFrozen(server.credentials)).toBe(true);
    },
  );

  it("takes any scheme, as auth.header does", () => {
    expect(one({ url: URL_X, headers: { Authorization: "Basic dXNlcjpwdw==" } }).credentials).toStrictEqual({ authorization: "Basic dXNlcjpwdw==" });
  });

  it("refuses it with oauth: the upstream gets one Authorization", () => {
    expect(refused({ url: URL_X, oauth: { clientId: "gw" }, headers: { Authorization: `Bearer ${TOKEN}` } })).toBe(
      `${SOURCE}: mcpServers.x.headers.Authorization and mcpServers.x.oauth do not go together: the upstream gets one Authorization, either the user's token ("oauth") or a fixed credential (this header or "auth")`,
    );
  });

  it.each([["none"], [{ header: "X-API-Key", value: "k" }]])("refuses it with auth %j", (auth) => {
    expect(refused({ url: URL_X, auth, headers: { Authorization: `Bearer ${TOKEN}` } })).toBe(
      `${SOURCE}: mcpServers.x.headers.Authorization and mcpServers.x.auth do not go together: the upstream gets one Authorization, either the user's token ("oauth") or a fixed credential (this header or "auth")`,
    );
  });

  it("refuses it beside auth.bearer, which sends the same header: give it once", () => {
    expect(refused({ url: URL_X, auth: { bearer: "${INTERNAL_TOKEN}" }, headers: { Authorization: `Bearer ${TOKEN}` } })).toBe(
      `${SOURCE}: mcpServers.x.headers.Authorization is the header "auth" sends: give it once, in "auth"`,
    );
    expect(refused({ url: URL_X, auth: { header: "Authorization", value: "${INTERNAL_TOKEN}" }, headers: { authorization: `Bearer ${TOKEN}` } })).toBe(
      `${SOURCE}: mcpServers.x.headers.authorization is the header "auth" sends: give it once, in "auth"`,
    );
  });

  it("refuses one with a line break, without showing it", () => {
    expect(refused({ url: URL_X, headers: { Authorization: `Bearer ${TOKEN}\r\nX-Evil: 1` } })).toBe(
      `${SOURCE}: mcpServers.x.headers: the value of Authorization holds a line break or NUL`,
    );
  });

  it("makes the entry a static one, so allowOrgs (checked with the user's GitHub token) is refused", () => {
    expect(refused({ url: URL_X, headers: { Authorization: `Bearer ${TOKEN}` }, allowOrgs: ["acme"] })).toContain('mcpServers.x.allowOrgs needs "oauth"');
  });

  it("X-API-Key alone stays a header, and the entry keeps detection", () => {
    expect(one({ url: URL_X, headers: { "X-API-Key": "${INTERNAL_TOKEN}" } })).toStrictEqual({
      name: "x",
      path: "/mcp/x",
      title: "x",
      resource: URL_X,
      auth: "detect",
      headers: { "x-api-key": TOKEN },
      ...plainRest,
    });
  });
});

describe("docs/gateway.schema.json agrees with the parser on upstream authentication", () => {
  const schema = JSON.parse(readFileSync(new URL("../../../docs/gateway.schema.json", import.meta.url), "utf8"));
  const ajv = new Ajv2020({ strict: true, strictRequired: false, allErrors: true });
  addFormats.default(ajv);
  const validate = ajv.compile(schema);
  const file = (entry: Json) => ({ mcpServers: { x: { url: URL_X, ...entry } } });

  it.each([
    ["a privateKey path", { oauth: { clientId: "gw", privateKey: "keys/gateway.pem" } }],
    [
      "a privateKey from a variable, pinned to private_key_jwt",
      { oauth: { clientId: "gw", privateKey: "${KEY_PEM}", tokenEndpointAuthMethod: "private_key_jwt" } },
    ],
    ["a pinned client_secret_post", { oauth: { clientId: "gw", clientSecret: "s", tokenEndpointAuthMethod: "client_secret_post" } }],
    ["headers.Authorization alone", { headers: { Authorization: "Bearer ${INTERNAL_TOKEN}" } }],
  ])("both accept %s", (_what, entry) => {
    expect(one({ url: URL_X, ...entry }).name).toBe("x");
    expect(validate(file(entry)), JSON.stringify(validate.errors)).toBe(true);
  });

  it.each([
    ["an unknown method", { oauth: { tokenEndpointAuthMethod: "client_secret_jwt" } }],
    ["an empty privateKey", { oauth: { privateKey: "" } }],
  ])("both refuse %s", (_what, entry) => {
    expect(validate(file(entry))).toBe(false);
    refused({ url: URL_X, ...entry });
  });
});

/** Node makes Diffie-Hellman key pairs from a named group; @types/node does not list "dh" for generateKeyPairSync. */
function generateDhKeyPair(): KeyPairKeyObjectResult {
  return (generateKeyPairSync as unknown as (type: "dh", options: { group: string }) => KeyPairKeyObjectResult)("dh", { group: "modp14" });
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
