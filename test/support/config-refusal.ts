import { expect } from "vitest";
import { ConfigError } from "../../src/config/errors.js";

/**
 * The message of the ConfigError `run` throws, checked to be one line that shows none of `secrets`
 * (compared without letter case); fails the test when `run` accepts the configuration or throws anything else.
 */
export function configRefusal(run: () => unknown, secrets: readonly string[]): string {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    const { message } = error as Error;
    expect(secrets.filter((part) => message.toLowerCase().includes(part.toLowerCase()))).toEqual([]);
    expect(message).not.toContain("\n");
    return message;
  }
  throw new Error("the configuration was accepted");
}
