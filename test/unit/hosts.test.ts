import { describe, expect, it } from "vitest";
import { isFirstPartyHost, isSiteLocalHost } from "../../src/hosts.js";
import { PUBLIC_URL } from "../support/config-file.js";

describe("isSiteLocalHost (where upstream ASes cannot fetch the gateway's metadata document)", () => {
  it.each(["localhost", "127.0.0.1", "[::1]", "10.1.2.3", "192.168.0.9", "[fd00::1]", "gateway", "gw.corp.internal", "gw.local"])(
    "%s is site-local",
    (host) => {
      expect(isSiteLocalHost(host)).toBe(true);
    },
  );
  it.each(["gw.example.com", "8.8.8.8", "[2001:db8::1]", "internal.example.net"])("%s is not", (host) => {
    expect(isSiteLocalHost(host)).toBe(false);
  });
});

describe("isFirstPartyHost", () => {
  it.each([
    ["localhost", "loopback"],
    ["127.0.0.1", "loopback"],
    ["127.8.9.10", "loopback"],
    ["[::1]", "loopback"],
    ["10.0.0.5", "10/8"],
    ["172.16.0.1", "172.16/12"],
    ["172.31.255.254", "172.16/12"],
    ["192.168.1.20", "192.168/16"],
    ["169.254.169.254", "link-local"],
    ["[fd12:3456::1]", "unique local"],
    ["[fe80::1]", "link-local"],
    ["[::ffff:a00:5]", "IPv4-mapped 10/8"],
    ["mcp-internal", "single label"],
    ["mcp.internal", ".internal"],
    ["printer.local", ".local"],
    ["app.localhost", ".localhost"],
    ["nas.lan", ".lan"],
    ["box.home.arpa", ".home.arpa"],
    ["gw.example.com", "the public host"],
    ["GW.Example.com.", "the public host, any case, rooted"],
    ["example.com", "the public parent domain"],
    ["tools.example.com", "under the public parent domain"],
    ["a.b.example.com", "deep under the public parent domain"],
  ])("counts %s as first-party (%s)", (host) => {
    expect(isFirstPartyHost(host, PUBLIC_URL)).toBe(true);
  });

  it.each([
    ["8.8.8.8", PUBLIC_URL],
    ["172.32.0.1", PUBLIC_URL],
    ["[2001:db8::1]", PUBLIC_URL],
    ["mcp.notion.com", PUBLIC_URL],
    ["example.net", PUBLIC_URL],
    ["notexample.com", PUBLIC_URL],
    ["example.com.evil.net", PUBLIC_URL],
    ["internal.example.net", PUBLIC_URL],
    ["local.example.net", PUBLIC_URL],
    ["other.com", "https://example.com"],
    ["tools.example.com", "http://localhost:8002"],
    ["203.0.113.9", "https://203.0.113.5"],
  ])("counts %s as third-party for the gateway at %s", (host, publicUrl) => {
    expect(isFirstPartyHost(host, publicUrl)).toBe(false);
  });

  it("counts the public host itself when it is an address or has no parent of two labels", () => {
    expect(isFirstPartyHost("203.0.113.5", "https://203.0.113.5")).toBe(true);
    expect(isFirstPartyHost("example.com", "https://example.com")).toBe(true);
    expect(isFirstPartyHost("tools.example.com", "https://example.com")).toBe(false);
  });
});
