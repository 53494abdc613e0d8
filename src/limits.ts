import express, { type RequestHandler } from "express";
import { OAuthError } from "./errors.js";
import { addressSubject, consume, type RateRule } from "./ratelimit.js";
import type { Store } from "./store/store.js";

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

const json = express.json({ limit: "64kb" });

/** docs/security.md HI2: a JSON body of up to 64 KB. */
export const jsonBody: RequestHandler = (req, res, next) =>
  json(req, res, (error?: unknown) =>
    // only a body that is not JSON is bad metadata (RFC 7591 §3.2.2); too large or wrongly encoded keeps its 413/415
    next(
      (error as { type?: string } | undefined)?.type === "entity.parse.failed"
        ? new OAuthError("invalid_client_metadata", "The registration request is not valid JSON.")
        : error,
    ),
  );

/** docs/security.md HI2: a form of up to 16 KB and `parameterLimit` fields. */
export const formBody = (parameterLimit: number): RequestHandler => express.urlencoded({ extended: false, limit: "16kb", parameterLimit });

/** docs/security.md HI5: one more request of `rule` from the client's address, refused once over the limit. */
export const rateLimited =
  (store: Store, rule: RateRule): RequestHandler =>
  async (req, _res, next) => {
    await consume(store, rule, addressSubject(req.ip));
    next();
  };
