/** RFC 8628 §3.4: the device authorization grant's `grant_type`. */
export const DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code";

/** The grants a client may register (RFC 7591 §2 `grant_types`). */
export const GRANT_TYPES = ["authorization_code", "refresh_token", DEVICE_CODE_GRANT] as const;
