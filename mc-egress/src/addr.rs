//! Which resolved addresses a task may connect to at all, whatever its allowlist says.
//!
//! An allowlisted name can resolve anywhere: a DNS record the task's author does not
//! control, a rebinding attack, or a typo can point `api.example.com` at
//! `169.254.169.254` (the cloud metadata service), `127.0.0.1` or the cluster's
//! private network. Like smokescreen, the proxy resolves the name itself, checks every
//! address against this policy, and connects to the address it checked — never
//! resolving twice. The default denies every special-purpose range of the IANA
//! registries (RFC 6890 and successors); an operator can open a range for an internal
//! service it means tasks to reach ([`AddressPolicy::allow_range`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use crate::decision::DenyReason;
use crate::host::canonical_ip;

/// The special-purpose ranges denied by default, with what each is.
const DENIED: &[(&str, &str)] = &[
    ("0.0.0.0/8", "this network"),
    ("10.0.0.0/8", "private network (RFC 1918)"),
    ("100.64.0.0/10", "shared address space (RFC 6598)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local (cloud metadata service)"),
    ("172.16.0.0/12", "private network (RFC 1918)"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.0.2.0/24", "documentation (TEST-NET-1)"),
    ("192.88.99.0/24", "6to4 relay anycast"),
    ("192.168.0.0/16", "private network (RFC 1918)"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation (TEST-NET-2)"),
    ("203.0.113.0/24", "documentation (TEST-NET-3)"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved (and broadcast)"),
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("64:ff9b:1::/48", "local-use IPv4/IPv6 translation"),
    ("100::/64", "discard-only"),
    (
        "2001::/23",
        "IETF protocol assignments (Teredo, ORCHID, ...)",
    ),
    ("2001:db8::/32", "documentation"),
    ("fc00::/7", "unique local (private network)"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local (deprecated)"),
    ("ff00::/8", "multicast"),
];

/// The address policy: special-purpose ranges denied, operator exceptions allowed.
#[derive(Debug, Clone)]
pub struct AddressPolicy {
    denied: Vec<(IpNet, &'static str)>,
    allowed: Vec<IpNet>,
}

impl Default for AddressPolicy {
    fn default() -> Self {
        AddressPolicy {
            denied: DENIED
                .iter()
                .filter_map(|(net, what)| net.parse().ok().map(|n| (n, *what)))
                .collect(),
            allowed: Vec::new(),
        }
    }
}

impl AddressPolicy {
    /// The default policy (every special-purpose range denied).
    pub fn new() -> Self {
        Self::default()
    }

    /// Opens `range` for tasks whose allowlist names a host that resolves into it
    /// (an internal service, or `127.0.0.1/32` in tests). The allowlist still decides
    /// which names and ports a task may reach; this only lifts the address check.
    #[must_use]
    pub fn allow_range(mut self, range: IpNet) -> Self {
        self.allowed.push(range.trunc());
        self
    }

    /// Checks one resolved (or literal) address.
    ///
    /// IPv4-mapped (`::ffff:a.b.c.d`), NAT64 (`64:ff9b::/96`) and 6to4 (`2002::/16`)
    /// addresses are also checked as the IPv4 address they carry, so no IPv6
    /// spelling reaches a denied IPv4 range.
    ///
    /// ```
    /// use mc_egress::AddressPolicy;
    /// let p = AddressPolicy::new();
    /// assert!(p.check("93.184.216.34".parse().unwrap()).is_ok());
    /// assert!(p.check("169.254.169.254".parse().unwrap()).is_err());
    /// assert!(p.check("64:ff9b::a9fe:a9fe".parse().unwrap()).is_err()); // NAT64 of the same
    /// ```
    ///
    /// # Errors
    /// [`DenyReason::AddressDenied`] naming the address and the range.
    pub fn check(&self, ip: IpAddr) -> Result<(), DenyReason> {
        let ip = canonical_ip(ip);
        if self.allowed.iter().any(|n| n.contains(&ip)) {
            return Ok(());
        }
        let embedded = match ip {
            IpAddr::V6(v6) => embedded_ipv4(v6),
            IpAddr::V4(_) => None,
        };
        for candidate in std::iter::once(ip).chain(embedded.map(IpAddr::V4)) {
            if let Some((net, what)) = self.denied.iter().find(|(n, _)| n.contains(&candidate)) {
                if candidate != ip && self.allowed.iter().any(|n| n.contains(&candidate)) {
                    continue;
                }
                return Err(DenyReason::AddressDenied {
                    addr: ip,
                    range: format!("{net} ({what})"),
                });
            }
        }
        Ok(())
    }
}

/// The IPv4 address carried by a NAT64 (`64:ff9b::/96`) or 6to4 (`2002::/16`) address.
fn embedded_ipv4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let o = v6.octets();
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        Some(Ipv4Addr::new(o[12], o[13], o[14], o[15]))
    } else if s[0] == 0x2002 {
        Some(Ipv4Addr::new(o[2], o[3], o[4], o[5]))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denied(p: &AddressPolicy, s: &str) -> bool {
        p.check(s.parse().unwrap()).is_err()
    }

    #[test]
    fn every_default_range_parses() {
        assert_eq!(AddressPolicy::new().denied.len(), DENIED.len());
    }

    #[test]
    fn special_purpose_addresses_are_denied_in_every_spelling() {
        let p = AddressPolicy::new();
        for a in [
            "127.0.0.1",
            "127.255.0.9",
            "10.1.2.3",
            "172.31.255.255",
            "192.168.0.1",
            "169.254.169.254",
            "100.100.100.200",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::7f00:1",
            "2002:a9fe:a9fe::1",
            "fd00::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
        ] {
            assert!(denied(&p, a), "{a}");
        }
        for a in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "172.32.0.1",
        ] {
            assert!(!denied(&p, a), "{a}");
        }
    }

    #[test]
    fn reasons_name_the_range() {
        let e = AddressPolicy::new()
            .check("169.254.169.254".parse().unwrap())
            .unwrap_err();
        assert!(e.to_string().contains("169.254.0.0/16"), "{e}");
    }

    #[test]
    fn operator_exceptions_open_only_their_range() {
        let p = AddressPolicy::new().allow_range("127.0.0.1/32".parse().unwrap());
        assert!(!denied(&p, "127.0.0.1"));
        assert!(!denied(&p, "::ffff:127.0.0.1"));
        assert!(denied(&p, "127.0.0.2"));
        assert!(denied(&p, "169.254.169.254"));
        assert!(denied(&p, "::1"));
    }
}
