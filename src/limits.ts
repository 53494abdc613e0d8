import type { RequestHandler } from "express";
import { OAuthError } from "./errors.js";

/** Endpoints whose bodies the gateway parses itself (64 KB JSON, 16 KB forms: docs/security.md HI2). */
export const PARSED_BODY_PATHS = ["/register", "/token", "/revoke", "/introspect", "/login"];

/**
 * docs/security.md HI2: parsed bodies arrive uncompressed and in UTF-8. A compressed body would be
 * inflated before its size is known (a decompression bomb costs CPU up to the limit on every
 * request); JSON is UTF-8 only (RFC 8259 §8.1), and so are our forms.
 * RFC 9110 §15.5.16: 415 for a content coding or charset the server does not accept.
 */
export const plainBodiesOnly: RequestHandler = (req, _res, next) => {
  const coding = req.headers["content-encoding"];
  if (coding !== undefined && coding.trim().toLowerCase() !== "identity")
    throw new OAuthError("invalid_request", "Compressed request bodies are not accepted: send the body without Content-Encoding.", 415, {
      "Accept-Encoding": "identity",
    });
  const charset = /;\s*charset\s*=\s*"?([^";\s]*)/i.exec(req.headers["content-type"] ?? "")?.[1]?.toLowerCase();
  if (charset !== undefined && charset !== "utf-8" && charset !== "utf8")
    throw new OAuthError("invalid_request", "The request body's charset is not supported: send UTF-8.", 415);
  next();
};
