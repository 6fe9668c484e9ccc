//! Where a task asks to connect: parsed from a proxy request's target, which is
//! untrusted input.

use std::fmt;

use crate::host::{Host, HostError};

/// Why a request target was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DestinationError {
    /// The host part is malformed.
    #[error("bad host: {0}")]
    Host(#[from] HostError),
    /// No `:port`, or not a number in 1–65535.
    #[error("bad or missing port in {target:?} (a port is 1-65535)")]
    Port {
        /// The target as given.
        target: String,
    },
    /// `user@` before the host: the classic way to make one host look like another
    /// (`http://api.example.com@evil.net/`). Never accepted.
    #[error("{target:?} carries user information ('@'); it is refused")]
    UserInfo {
        /// The target as given.
        target: String,
    },
    /// An absolute URI with a scheme other than `http` (use `CONNECT` for TLS).
    #[error("scheme {scheme:?} is not proxied; only http:// (TLS goes through CONNECT)")]
    Scheme {
        /// The scheme.
        scheme: String,
    },
    /// Not an absolute URI at all.
    #[error("{target:?} is not an absolute http:// URI")]
    NotAbsolute {
        /// The target as given.
        target: String,
    },
}

/// A host and port a task asks to reach.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Destination {
    /// The host.
    pub host: Host,
    /// The port.
    pub port: u16,
}

impl Destination {
    /// Parses the authority form of a `CONNECT` target: `host:port` or `[v6]:port`.
    /// The port is required (RFC 9110 §9.3.6).
    ///
    /// # Errors
    /// [`DestinationError`] naming what is wrong.
    pub fn from_authority(target: &str) -> Result<Self, DestinationError> {
        if target.contains('@') {
            return Err(DestinationError::UserInfo {
                target: target.to_string(),
            });
        }
        let port_err = || DestinationError::Port {
            target: target.to_string(),
        };
        let (host, port) = target.rsplit_once(':').ok_or_else(port_err)?;
        if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
            // An unbracketed IPv6 address: ambiguous with the port.
            return Err(DestinationError::Host(HostError::BadIpv6 {
                host: host.to_string(),
            }));
        }
        Ok(Destination {
            host: Host::parse(host)?,
            port: parse_port(port).ok_or_else(port_err)?,
        })
    }

    /// Parses an absolute-form `http://` request target (a plain-HTTP proxy request)
    /// into the destination (port 80 when none is given) and the origin-form target
    /// to send upstream (`/path?query`, `/` when empty).
    ///
    /// ```
    /// use mc_egress::Destination;
    /// let (d, path) = Destination::from_absolute_uri("http://api.example.com/v1?x=1").unwrap();
    /// assert_eq!(d.to_string(), "api.example.com:80");
    /// assert_eq!(path, "/v1?x=1");
    /// assert!(Destination::from_absolute_uri("http://api.example.com@evil.net/").is_err());
    /// ```
    ///
    /// # Errors
    /// [`DestinationError`] naming what is wrong.
    pub fn from_absolute_uri(target: &str) -> Result<(Self, String), DestinationError> {
        let (scheme, rest) =
            target
                .split_once("://")
                .ok_or_else(|| DestinationError::NotAbsolute {
                    target: target.to_string(),
                })?;
        if !scheme.eq_ignore_ascii_case("http") {
            return Err(DestinationError::Scheme {
                scheme: scheme.to_string(),
            });
        }
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        if authority.contains('@') {
            return Err(DestinationError::UserInfo {
                target: target.to_string(),
            });
        }
        let dest = match authority.rsplit_once(':') {
            Some((h, p)) if !p.contains(']') => Destination {
                host: Host::parse(h)?,
                port: parse_port(p).ok_or_else(|| DestinationError::Port {
                    target: target.to_string(),
                })?,
            },
            _ => Destination {
                host: Host::parse(authority)?,
                port: 80,
            },
        };
        let path = path.split('#').next().unwrap_or("");
        let path = if path.is_empty() {
            "/".to_string()
        } else if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_string()
        };
        Ok((dest, path))
    }
}

fn parse_port(s: &str) -> Option<u16> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u16>().ok().filter(|&p| p != 0)
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host.authority_form(), self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn authorities() {
        let d = Destination::from_authority("Api.Example.com:443").unwrap();
        assert_eq!(d.to_string(), "api.example.com:443");
        let d = Destination::from_authority("[::1]:8080").unwrap();
        assert_eq!(d.to_string(), "[::1]:8080");
        for bad in [
            "api.example.com",
            "api.example.com:",
            "api.example.com:0",
            "api.example.com:65536",
            "api.example.com:+443",
            "api.example.com:44 3",
            "::1:443",
            "a@api.example.com:443",
            "2130706433:80",
            ":443",
        ] {
            assert!(Destination::from_authority(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn absolute_uris() {
        let (d, p) = Destination::from_absolute_uri("http://api.example.com:8080").unwrap();
        assert_eq!(
            (d.to_string(), p.as_str()),
            ("api.example.com:8080".into(), "/")
        );
        let (d, p) = Destination::from_absolute_uri("HTTP://[fd00::1]/x#frag").unwrap();
        assert_eq!((d.to_string(), p.as_str()), ("[fd00::1]:80".into(), "/x"));
        let (_, p) = Destination::from_absolute_uri("http://a.example?q=1").unwrap();
        assert_eq!(p, "/?q=1");
        assert!(matches!(
            Destination::from_absolute_uri("https://a.example/"),
            Err(DestinationError::Scheme { .. })
        ));
        assert!(matches!(
            Destination::from_absolute_uri("/relative"),
            Err(DestinationError::NotAbsolute { .. })
        ));
        assert!(matches!(
            Destination::from_absolute_uri("http://a.example:99999/"),
            Err(DestinationError::Port { .. })
        ));
        assert!(matches!(
            Destination::from_absolute_uri("http://0x7f.1/"),
            Err(DestinationError::Host(HostError::AmbiguousNumeric { .. }))
        ));
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in "\\PC{0,100}") {
            let _ = Destination::from_authority(&s);
            let _ = Destination::from_absolute_uri(&s);
            let _ = Destination::from_absolute_uri(&format!("http://{s}"));
        }

        #[test]
        fn display_round_trips(host in "[a-z][a-z0-9]{0,10}(\\.[a-z][a-z0-9]{0,10}){0,3}", port in 1u16..) {
            let d = Destination::from_authority(&format!("{host}:{port}")).unwrap();
            prop_assert_eq!(Destination::from_authority(&d.to_string()).unwrap(), d);
        }
    }
}
