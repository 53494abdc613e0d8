import { describe, expect, it } from "vitest";
import { clientMetadata } from "../../src/as/clients.js";
import { formatUserCode, generateUserCode, normalizeUserCode, USER_CODE_ALPHABET, USER_CODE_LENGTH } from "../../src/as/device.js";
import { DEVICE_CODE_GRANT } from "../../src/as/grant-types.js";
import { OAuthError } from "../../src/errors.js";

const policy = { redirectUriAllow: [] };

describe("user codes (RFC 8628 §6.1)", () => {
  it("draws 8 characters from 20 consonants: no vowels, no digits, none of the look-alikes", () => {
    expect(USER_CODE_ALPHABET).toHaveLength(20);
    expect(USER_CODE_ALPHABET).not.toMatch(/[AEIOUY0-9]/);
    const codes = Array.from({ length: 2000 }, generateUserCode);
    for (const code of codes) expect(code).toMatch(new RegExp(`^[${USER_CODE_ALPHABET}]{${USER_CODE_LENGTH}}$`));
    expect(new Set(codes).size).toBe(codes.length);
    // every letter of the alphabet turns up: the draw is over all of it
    expect(new Set(codes.join("")).size).toBe(USER_CODE_ALPHABET.length);
  });

  it("is shown as XXXX-XXXX and read back in any case, with or without dash and spaces", () => {
    expect(formatUserCode("BCDFGHJK")).toBe("BCDF-GHJK");
    for (const typed of ["BCDF-GHJK", "bcdf-ghjk", "bcdfghjk", " bcdf ghjk ", "Bc-Df-Gh-Jk"]) expect(normalizeUserCode(typed)).toBe("BCDFGHJK");
  });

  it("reads nothing from what cannot be a code", () => {
    for (const typed of ["BCDF-GHJ", "BCDF-GHJKL", "ABCD-EFGH", "BCDF-GHJ1", "", "B".repeat(41), 12345678, undefined, ["BCDFGHJK"]])
      expect(normalizeUserCode(typed)).toBeUndefined();
  });
});

describe("client metadata for the device grant", () => {
  it("takes a device-only client without redirect_uris and without response types", () => {
    const metadata = clientMetadata({ grant_types: [DEVICE_CODE_GRANT, "refresh_token"], token_endpoint_auth_method: "none" }, policy, "client_secret_basic");
    expect(metadata).toMatchObject({ redirect_uris: [], grant_types: [DEVICE_CODE_GRANT, "refresh_token"], response_types: [] });
  });

  it("still checks redirect_uris a device client gives", () => {
    expect(() => clientMetadata({ grant_types: [DEVICE_CODE_GRANT], redirect_uris: ["javascript:alert(1)"] }, policy, "none")).toThrow(OAuthError);
  });

  it("MC5 refuses the device grant while the operator allows only listed redirect URIs", () => {
    const narrowed = { redirectUriAllow: ["loopback"] };
    for (const grants of [[DEVICE_CODE_GRANT], ["authorization_code", DEVICE_CODE_GRANT]])
      expect(() => clientMetadata({ grant_types: grants, redirect_uris: ["http://127.0.0.1/cb"] }, narrowed, "none")).toThrow(/--redirect-uri-allow/);
    expect(clientMetadata({ redirect_uris: ["http://127.0.0.1/cb"] }, narrowed, "none").grant_types).toEqual(["authorization_code", "refresh_token"]);
  });

  it("keeps requiring redirect_uris of a client of the code grant, and refuses a client of neither grant", () => {
    expect(() => clientMetadata({ grant_types: ["authorization_code", DEVICE_CODE_GRANT] }, policy, "none")).toThrow(/redirect_uris is required/);
    expect(() => clientMetadata({ grant_types: ["refresh_token"] }, policy, "none")).toThrow(/must include authorization_code or/);
    expect(() => clientMetadata({ grant_types: ["password"] }, policy, "none")).toThrow(/is not supported/);
  });
});
