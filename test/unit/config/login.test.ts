import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { helpText } from "../../../src/config/options.js";
import { hashPasswordSync, parsePasswordHash, verifyPassword } from "../../../src/login/passwords.js";
import { RS, load, refused, scratch } from "../../support/config-load.js";

const { dir } = scratch();

describe("loadConfig: secrets", () => {
  it.each([
    ["--password", "hunter2", "MCP_GATEWAY_PASSWORD"],
    ["--password=hunter2", undefined, "MCP_GATEWAY_PASSWORD"],
    ["--secret", "0123456789abcdef0123456789abcdef", "MCP_GATEWAY_SECRET"],
    ["--previous-secrets", "hunter2".repeat(5), "MCP_GATEWAY_PREVIOUS_SECRETS"],
    [`--previous-secrets=${"hunter2".repeat(5)}`, undefined, "MCP_GATEWAY_PREVIOUS_SECRETS"],
  ])("refuses %s on the command line and names %s", (flag, value, variable) => {
    const message = refused([...RS, flag, ...(value === undefined ? [] : [value])], { MCP_GATEWAY_PASSWORD: "from-env-password" });
    expect(message).toContain(variable);
    expect(message).not.toContain("hunter2");
  });

  it("refuses a short MCP_GATEWAY_SECRET", () => {
    expect(refused(RS, { MCP_GATEWAY_SECRET: "x".repeat(31) })).toContain("MCP_GATEWAY_SECRET");
    expect(load(RS, { MCP_GATEWAY_SECRET: "x".repeat(32) }).secret).toBe("x".repeat(32));
  });

  it("reads MCP_GATEWAY_PREVIOUS_SECRETS as a comma-separated list, trimmed", () => {
    const [a, b] = ["a".repeat(32), "b".repeat(40)];
    expect(load(RS, { MCP_GATEWAY_PREVIOUS_SECRETS: ` ${a} ,, ${b},` }).previousSecrets).toEqual([a, b]);
    expect(load(RS, { MCP_GATEWAY_PREVIOUS_SECRETS: a }).previousSecrets).toEqual([a]);
  });

  it("refuses a short value in MCP_GATEWAY_PREVIOUS_SECRETS without repeating it", () => {
    const message = refused(RS, { MCP_GATEWAY_PREVIOUS_SECRETS: `${"a".repeat(32)},short-hunter2` });
    expect(message).toContain("MCP_GATEWAY_PREVIOUS_SECRETS");
    expect(message).not.toContain("hunter2");
  });

  it("hashes MCP_GATEWAY_PASSWORD at start and keeps no plain copy", async () => {
    const config = load(RS, { MCP_GATEWAY_USERNAME: "alice", MCP_GATEWAY_PASSWORD: "pw from env" });
    expect(config.login).toEqual({
      users: [{ username: "alice", passwordHash: expect.stringMatching(/^scrypt\$ln=14,r=8,p=1\$/) }],
      passwordSource: "environment",
    });
    expect(JSON.stringify(config)).not.toContain("pw from env");
    expect(await verifyPassword("pw from env", parsePasswordHash(config.login.users[0]!.passwordHash)!)).toBe(true);
  });

  it("generates a strong password, a different one each time, when none is set, and keeps it only to print once", async () => {
    const a = load(RS).login;
    const b = load(RS).login;
    expect(a.passwordSource).toBe("generated");
    expect(a.generatedPassword!.length).toBeGreaterThanOrEqual(20);
    expect(a.generatedPassword).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(a.generatedPassword).not.toBe(b.generatedPassword);
    expect(await verifyPassword(a.generatedPassword!, parsePasswordHash(a.users[0]!.passwordHash)!)).toBe(true);
  });

  it("treats an empty MCP_GATEWAY_PASSWORD as unset", () => {
    expect(load(RS, { MCP_GATEWAY_PASSWORD: "" }).login.passwordSource).toBe("generated");
  });
});

describe("loadConfig: gateway users", () => {
  const HASH = hashPasswordSync("s3cret", { ln: 10, r: 8, p: 1 });
  const usersFile = (text: string) => {
    const path = join(dir, `${Math.random().toString(36).slice(2)}.users`);
    writeFileSync(path, text);
    return path;
  };

  it("takes MCP_GATEWAY_PASSWORD_HASH for MCP_GATEWAY_USERNAME", () => {
    expect(load(RS, { MCP_GATEWAY_USERNAME: "alice", MCP_GATEWAY_PASSWORD_HASH: HASH }).login).toEqual({
      users: [{ username: "alice", passwordHash: HASH }],
      passwordSource: "hash",
    });
  });

  it("refuses a malformed MCP_GATEWAY_PASSWORD_HASH without repeating it, and --password-hash on the command line", () => {
    const message = refused(RS, { MCP_GATEWAY_PASSWORD_HASH: "hunter2hunter2" });
    expect(message).toContain("MCP_GATEWAY_PASSWORD_HASH");
    expect(message).toContain("hash-password");
    expect(message).not.toContain("hunter2");
    expect(refused([...RS, "--password-hash", HASH])).toContain("is not a flag");
    expect(refused(RS, { MCP_GATEWAY_PASSWORD_HASH: HASH.replace("ln=10", "ln=30") })).toContain("MCP_GATEWAY_PASSWORD_HASH");
  });

  it("reads a users file, skipping comments and blank lines", () => {
    const path = usersFile(`# team\n\nalice:${HASH}\r\n  bob:${HASH}  \n# carol:disabled\n`);
    const login = load([...RS, "--users-file", path]).login;
    expect(login).toEqual({
      users: [
        { username: "alice", passwordHash: HASH },
        { username: "bob", passwordHash: HASH },
      ],
      passwordSource: "users-file",
      usersFile: path,
    });
    expect(load(RS, { MCP_GATEWAY_USERS_FILE: path }).login.users).toHaveLength(2);
  });

  it.each([
    ["a line without a colon", `alice:${HASH}\nbob ${HASH}\n`, 2],
    ["a plain password instead of a hash", `alice:${HASH}\n\nbob:hunter2hunter2\n`, 3],
    ["an empty user name", `:${HASH}\n`, 1],
    ["the same user twice", `alice:${HASH}\nalice:${HASH}\n`, 2],
  ])("refuses a users file with %s, naming the file and line and never the hash", (_what, text, line) => {
    const path = usersFile(text);
    const message = refused([...RS, "--users-file", path]);
    expect(message).toContain(`--users-file ${path} line ${line}`);
    expect(message).not.toContain("hunter2");
    expect(message).not.toContain(HASH.split("$")[3]);
  });

  it("refuses an empty or unreadable users file", () => {
    expect(refused([...RS, "--users-file", usersFile("# nobody\n")])).toContain("lists no users");
    expect(refused([...RS, "--users-file", join(dir, "missing.users")])).toContain("cannot be read");
  });

  it("refuses two password sources at once, and a user name beside a users file", () => {
    const path = usersFile(`alice:${HASH}\n`);
    expect(refused(RS, { MCP_GATEWAY_PASSWORD: "pw", MCP_GATEWAY_PASSWORD_HASH: HASH })).toContain("only one of");
    expect(refused([...RS, "--users-file", path], { MCP_GATEWAY_PASSWORD: "pw" })).toContain("only one of");
    expect(refused([...RS, "--users-file", path, "--username", "bob"])).toContain("--username");
  });

  it("parses hash-password as a command that needs no other configuration", () => {
    expect(load(["hash-password"]).command).toBe("hash-password");
    expect(helpText()).toMatch(/^\s+hash-password\s/m);
  });
});
