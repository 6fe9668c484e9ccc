//! Host names and IP literals, checked strictly.
//!
//! Both sides of an egress decision go through here: the host patterns of an
//! allowlist (written by a workflow author) and the destination a task asks for
//! (untrusted). One strict grammar for both means a name cannot match in one
//! spelling and connect in another: names are lowercase ASCII DNS names (IDNs in their
//! `xn--` A-label form), one trailing dot is dropped, and anything that a resolver or
//! an HTTP client might read as a number in another notation (`2130706433`,
//! `0177.0.0.1`, `0x7f.1`) is refused instead of guessed.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why a host name or IP literal was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// Empty, or only a dot.
    #[error("host is empty")]
    Empty,
    /// Longer than the 253 bytes a DNS name may have.
    #[error("host is {len} bytes; a DNS name has at most 253")]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// A non-ASCII character: IDNs must be written as their A-label (`xn--…`).
    #[error("host contains the non-ASCII character {ch:?}; write an IDN as its xn-- A-label")]
    NotAscii {
        /// The first such character.
        ch: char,
    },
    /// A character DNS host names do not have (`_`, `%`, `@`, `/`, a space, …).
    #[error("host contains {ch:?} at byte {at}; a host name has only a-z, 0-9, '-' and '.'")]
    BadChar {
        /// The character.
        ch: char,
        /// Its byte offset.
        at: usize,
    },
    /// An empty label (`a..b`, a leading dot) or one longer than 63 bytes.
    #[error("host has an empty label or one longer than 63 bytes")]
    BadLabel,
    /// A label starting or ending with `-`.
    #[error("host label {label:?} starts or ends with '-'")]
    Hyphen {
        /// The label.
        label: String,
    },
    /// The last label is numeric: not a DNS name, and not a dotted-quad IPv4 address
    /// either (`2130706433`, `0177.0.0.1`, `0x7f.1`, `1.2.3`). Such hosts are read as
    /// IPv4 addresses by some clients and resolvers, so they are refused outright.
    #[error(
        "host {host:?} is numeric but not a dotted-quad IPv4 address; write the address as a.b.c.d"
    )]
    AmbiguousNumeric {
        /// The host as given.
        host: String,
    },
    /// A wildcard anywhere but as the whole first label (`*.example.com`), or on a
    /// suffix of fewer than two labels (`*.com`).
    #[error("wildcard {pattern:?} must be '*.' followed by a name of at least two labels")]
    BadWildcard {
        /// The pattern as given.
        pattern: String,
    },
    /// A bracketed IPv6 literal that does not parse.
    #[error("host {host:?} is not a valid IPv6 literal")]
    BadIpv6 {
        /// The host as given.
        host: String,
    },
}

/// A checked host: a lowercase DNS name or an IP address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Host {
    /// A DNS name, lowercase, without a trailing dot.
    Name(String),
    /// An IP address (IPv4-mapped IPv6 addresses are kept as their IPv4 address).
    Ip(IpAddr),
}

impl Host {
    /// Parses a host as it appears in a URL or a `CONNECT` target: a DNS name, a
    /// dotted-quad IPv4 address, or an IPv6 address in brackets (`[::1]`).
    ///
    /// ```
    /// use mc_egress::Host;
    /// assert_eq!(Host::parse("API.Example.com.").unwrap(), Host::Name("api.example.com".into()));
    /// assert!(Host::parse("2130706433").is_err()); // 127.0.0.1 to some resolvers
    /// assert!(matches!(Host::parse("[::1]").unwrap(), Host::Ip(_)));
    /// ```
    ///
    /// # Errors
    /// [`HostError`] naming what is wrong.
    pub fn parse(s: &str) -> Result<Self, HostError> {
        if let Some(inner) = s.strip_prefix('[') {
            let inner = inner.strip_suffix(']').ok_or_else(|| HostError::BadIpv6 {
                host: s.to_string(),
            })?;
            let ip: Ipv6Addr = inner.parse().map_err(|_| HostError::BadIpv6 {
                host: s.to_string(),
            })?;
            return Ok(Host::Ip(canonical_ip(IpAddr::V6(ip))));
        }
        if let Ok(ip) = s.parse::<Ipv4Addr>() {
            return Ok(Host::Ip(IpAddr::V4(ip)));
        }
        normalize_name(s).map(Host::Name)
    }

    /// The host as written in a `host:port` authority (IPv6 in brackets).
    pub fn authority_form(&self) -> String {
        match self {
            Host::Name(n) => n.clone(),
            Host::Ip(IpAddr::V4(ip)) => ip.to_string(),
            Host::Ip(IpAddr::V6(ip)) => format!("[{ip}]"),
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.authority_form())
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) as the IPv4 address they carry, so a
/// rule or a range for the IPv4 address covers both spellings.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// Checks and normalises a DNS name: ASCII, lowercased, one trailing dot dropped,
/// labels of 1–63 bytes of `a-z 0-9 -` not starting or ending with `-`, at most 253
/// bytes, and a last label that is not numeric.
///
/// # Errors
/// [`HostError`] naming what is wrong.
pub fn normalize_name(s: &str) -> Result<String, HostError> {
    if let Some(ch) = s.chars().find(|c| !c.is_ascii()) {
        return Err(HostError::NotAscii { ch });
    }
    let trimmed = s.strip_suffix('.').unwrap_or(s);
    if trimmed.is_empty() {
        return Err(HostError::Empty);
    }
    if trimmed.len() > 253 {
        return Err(HostError::TooLong { len: trimmed.len() });
    }
    if let Some((at, ch)) = trimmed
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '-' || c == '.'))
    {
        return Err(HostError::BadChar { ch, at });
    }
    let name = trimmed.to_ascii_lowercase();
    let mut last = "";
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(HostError::BadLabel);
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(HostError::Hyphen {
                label: label.to_string(),
            });
        }
        last = label;
    }
    // A numeric last label is no DNS name (no top-level domain is numeric); it is an
    // IPv4 address in some notation, which we do not guess at.
    let numeric = last.bytes().all(|b| b.is_ascii_digit())
        || (last.len() > 2
            && last.starts_with("0x")
            && last[2..].bytes().all(|b| b.is_ascii_hexdigit()));
    if numeric {
        return Err(HostError::AmbiguousNumeric {
            host: s.to_string(),
        });
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_are_normalised() {
        assert_eq!(
            Host::parse("API.Example.COM.").unwrap(),
            Host::Name("api.example.com".into())
        );
        assert_eq!(
            Host::parse("xn--bcher-kva.example").unwrap(),
            Host::Name("xn--bcher-kva.example".into())
        );
    }

    #[test]
    fn other_notations_of_an_address_are_refused() {
        for h in [
            "2130706433",
            "0177.0.0.1",
            "0x7f.0.0.1",
            "127.1",
            "1.2.3",
            "0x7f000001",
            "127.0.0.01",
            "1.2.3.4.5",
        ] {
            assert!(
                matches!(Host::parse(h), Err(HostError::AmbiguousNumeric { .. })),
                "{h}"
            );
        }
        assert_eq!(
            Host::parse("127.0.0.1").unwrap(),
            Host::Ip("127.0.0.1".parse().unwrap())
        );
    }

    #[test]
    fn bad_names_say_why() {
        assert!(matches!(
            Host::parse("bücher.example"),
            Err(HostError::NotAscii { ch: 'ü' })
        ));
        assert!(matches!(
            Host::parse("a_b.example"),
            Err(HostError::BadChar { ch: '_', at: 1 })
        ));
        assert!(matches!(
            Host::parse("user@evil.example"),
            Err(HostError::BadChar { ch: '@', .. })
        ));
        assert!(matches!(
            Host::parse("evil%2eexample.com"),
            Err(HostError::BadChar { ch: '%', .. })
        ));
        assert_eq!(Host::parse("a..b"), Err(HostError::BadLabel));
        assert_eq!(Host::parse("."), Err(HostError::Empty));
        assert!(matches!(
            Host::parse("-a.example"),
            Err(HostError::Hyphen { .. })
        ));
        assert!(matches!(
            Host::parse(&"a".repeat(254)),
            Err(HostError::TooLong { len: 254 })
        ));
        assert!(matches!(
            Host::parse("[::1"),
            Err(HostError::BadIpv6 { .. })
        ));
    }

    #[test]
    fn mapped_ipv6_is_its_ipv4_address() {
        assert_eq!(
            Host::parse("[::ffff:169.254.169.254]").unwrap(),
            Host::Ip("169.254.169.254".parse().unwrap())
        );
        assert_eq!(
            Host::parse("[::1]").unwrap().authority_form(),
            "[::1]".to_string()
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_names_are_clean(s in "\\PC{0,80}") {
            if let Ok(Host::Name(n)) = Host::parse(&s) {
                prop_assert!(n.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'));
                prop_assert!(!n.ends_with('.') && !n.starts_with('.') && !n.contains(".."));
                // Normalising is idempotent.
                prop_assert_eq!(Host::parse(&n).unwrap(), Host::Name(n.clone()));
            }
        }

        #[test]
        fn hosts_from_the_name_alphabet(s in "[a-zA-Z0-9.\\-]{1,40}") {
            let _ = Host::parse(&s);
        }
    }
}
