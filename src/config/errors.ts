/** A configuration the gateway refuses at start; the message names the flag, variable or file path and the fix, never a secret. */
export class ConfigError extends Error {
  override name = "ConfigError";
}
