import { describe, expect, it } from "vitest";
import { addressSubject } from "../../src/ratelimit.js";

/** docs/security.md HI5: what the per-address limits count. */
describe("addressSubject", () => {
  it("HI5 counts an IPv6 client by its /64, so fresh addresses of one subscriber share one limit", () => {
    const subjects = ["2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:DB8:1:2:0:0:0:9", "2001:0db8:0001:0002::a%eth0"].map(addressSubject);
    expect(new Set(subjects)).toEqual(new Set(["2001:db8:1:2::/64"]));
    expect(addressSubject("2001:db8:1:3::1")).toBe("2001:db8:1:3::/64");
    expect(addressSubject("::1")).toBe("0:0:0:0::/64");
    expect(addressSubject("fe80::1:2")).toBe("fe80:0:0:0::/64");
  });

  it("HI5 counts an IPv4 client by its address, also when written IPv4-mapped", () => {
    expect(addressSubject("198.51.100.7")).toBe("198.51.100.7");
    expect(addressSubject("::ffff:198.51.100.7")).toBe("198.51.100.7");
    expect(addressSubject(undefined)).toBe("unknown");
  });
});
