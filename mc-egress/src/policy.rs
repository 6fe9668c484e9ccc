//! The per-task `egress:` section of a workflow manifest (spec §5.3) and the checks
//! of a destination against it.
//!
//! ```yaml
//! tasks:
//!   - id: fetch
//!     uses: pkg:http/get@1.0.0
//!     egress:
//!       allow:
//!         - host: api.example.com
//!           ports: [443]
//!         - host: "*.storage.example.net"   # any name strictly below it
//!           ports: [443, 8443]
//! ```
//!
//! A task without an `egress:` section, or with an empty `allow:` list, may reach
//! nothing: **deny by default**.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use mc_core::TaskId;
use serde::Deserialize;

use crate::decision::DenyReason;
use crate::host::{Host, HostError, canonical_ip, normalize_name};
use crate::{Destination, EgressError};

/// Which hosts a rule covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HostPattern {
    /// Exactly this DNS name (`api.example.com`).
    Name(String),
    /// Any name strictly below this suffix: `*.example.com` covers `a.example.com` and
    /// `a.b.example.com`, not `example.com` and not `badexample.com`.
    Subdomains(String),
    /// Exactly this IP address, when the rule names a literal (`10.0.0.5`, `[fd00::1]`).
    Ip(IpAddr),
}

impl HostPattern {
    /// Parses a rule's `host:` value.
    ///
    /// # Errors
    /// [`HostError`] for a malformed name or wildcard.
    pub fn parse(s: &str) -> Result<Self, HostError> {
        if let Some(suffix) = s.strip_prefix("*.") {
            let name = normalize_name(suffix).map_err(|e| match e {
                HostError::BadChar { ch: '*', .. } => HostError::BadWildcard {
                    pattern: s.to_string(),
                },
                e => e,
            })?;
            if !name.contains('.') {
                return Err(HostError::BadWildcard {
                    pattern: s.to_string(),
                });
            }
            return Ok(HostPattern::Subdomains(name));
        }
        if s.contains('*') {
            return Err(HostError::BadWildcard {
                pattern: s.to_string(),
            });
        }
        Ok(match Host::parse(s)? {
            Host::Name(n) => HostPattern::Name(n),
            Host::Ip(ip) => HostPattern::Ip(ip),
        })
    }

    /// Whether the pattern covers `host`.
    pub fn matches(&self, host: &Host) -> bool {
        match (self, host) {
            (HostPattern::Name(p), Host::Name(h)) => p == h,
            (HostPattern::Subdomains(suffix), Host::Name(h)) => {
                h.len() > suffix.len() + 1
                    && h.ends_with(suffix.as_str())
                    && h.as_bytes()[h.len() - suffix.len() - 1] == b'.'
            }
            (HostPattern::Ip(p), Host::Ip(ip)) => canonical_ip(*p) == canonical_ip(*ip),
            _ => false,
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::Name(n) => f.write_str(n),
            HostPattern::Subdomains(s) => write!(f, "*.{s}"),
            HostPattern::Ip(ip) => f.write_str(&Host::Ip(*ip).authority_form()),
        }
    }
}

/// One `allow:` entry: hosts and the ports they may be reached on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowRule {
    /// The hosts.
    pub host: HostPattern,
    /// The ports (1–65535), sorted, without duplicates; never empty.
    pub ports: Vec<u16>,
}

/// One task's egress allowlist. The default (no rules) allows nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskEgress {
    /// The rules; a destination is allowed when one rule covers its host and port.
    pub allow: Vec<AllowRule>,
}

impl TaskEgress {
    /// Checks a destination against the allowlist.
    ///
    /// ```
    /// use mc_egress::{Destination, TaskEgress, DenyReason};
    /// let p = TaskEgress::from_rules([("api.example.com", vec![443])]).unwrap();
    /// assert!(p.check(&Destination::from_authority("api.example.com:443").unwrap()).is_ok());
    /// assert!(matches!(
    ///     p.check(&Destination::from_authority("mail.example.com:25").unwrap()),
    ///     Err(DenyReason::HostNotAllowed)
    /// ));
    /// ```
    ///
    /// # Errors
    /// [`DenyReason::HostNotAllowed`] when no rule covers the host,
    /// [`DenyReason::PortNotAllowed`] when rules cover the host but not the port.
    pub fn check(&self, dest: &Destination) -> Result<&AllowRule, DenyReason> {
        let mut host_ports: Vec<u16> = Vec::new();
        for rule in self.allow.iter().filter(|r| r.host.matches(&dest.host)) {
            if rule.ports.binary_search(&dest.port).is_ok() {
                return Ok(rule);
            }
            host_ports.extend(&rule.ports);
        }
        if host_ports.is_empty() {
            Err(DenyReason::HostNotAllowed)
        } else {
            host_ports.sort_unstable();
            host_ports.dedup();
            Err(DenyReason::PortNotAllowed {
                allowed: host_ports,
            })
        }
    }

    /// Builds an allowlist from `(host pattern, ports)` pairs, checked like a manifest.
    ///
    /// # Errors
    /// [`EgressError::Invalid`] naming the rule.
    pub fn from_rules<'a>(
        rules: impl IntoIterator<Item = (&'a str, Vec<u16>)>,
    ) -> Result<Self, EgressError> {
        let mut allow = Vec::new();
        for (i, (host, ports)) in rules.into_iter().enumerate() {
            let doc = AllowDoc {
                host: host.to_string(),
                ports: ports.into_iter().map(i64::from).collect(),
            };
            allow.push(doc.check(&format!("allow[{i}]"))?);
        }
        Ok(TaskEgress { allow })
    }
}

/// The egress sections of one workflow manifest, by task.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkflowEgress {
    tasks: BTreeMap<TaskId, TaskEgress>,
}

impl WorkflowEgress {
    /// Reads the `egress:` sections of a workflow manifest (YAML). Other keys of the
    /// manifest and of its tasks are left to their own readers; inside `egress:` every
    /// key must be known (a misspelt `alow:` is an error, not a silent deny-all).
    ///
    /// ```
    /// let m = mc_egress::WorkflowEgress::from_yaml(r#"
    /// tasks:
    ///   - id: fetch
    ///     uses: pkg:http/get@1.0.0
    ///     egress:
    ///       allow:
    ///         - host: api.example.com
    ///           ports: [443]
    ///   - id: build
    /// "#).unwrap();
    /// assert_eq!(m.task("fetch").unwrap().allow.len(), 1);
    /// assert!(m.task("build").unwrap().allow.is_empty()); // no egress: section, no egress
    /// ```
    ///
    /// # Errors
    /// [`EgressError::Yaml`] when the document does not have the manifest's shape,
    /// [`EgressError::Invalid`] naming the path (`tasks[0].egress.allow[1].ports[0]`)
    /// and the reason, [`EgressError::DuplicateTask`].
    pub fn from_yaml(yaml: &str) -> Result<Self, EgressError> {
        let doc: ManifestDoc =
            yaml_serde::from_str(yaml).map_err(|e| EgressError::Yaml(e.to_string()))?;
        let mut tasks = BTreeMap::new();
        for (ti, task) in doc.tasks.into_iter().enumerate() {
            let id = TaskId::new(task.id).map_err(|e| EgressError::Invalid {
                path: format!("tasks[{ti}].id"),
                reason: e.to_string(),
            })?;
            let mut egress = TaskEgress::default();
            if let Some(section) = task.egress {
                for (ri, rule) in section.allow.into_iter().enumerate() {
                    egress
                        .allow
                        .push(rule.check(&format!("tasks[{ti}].egress.allow[{ri}]"))?);
                }
            }
            if tasks.insert(id.clone(), egress).is_some() {
                return Err(EgressError::DuplicateTask { id: id.to_string() });
            }
        }
        Ok(WorkflowEgress { tasks })
    }

    /// The allowlist of task `id`, or `None` when the manifest has no such task.
    pub fn task(&self, id: &str) -> Option<&TaskEgress> {
        self.tasks
            .iter()
            .find(|(k, _)| k.as_str() == id)
            .map(|(_, v)| v)
    }

    /// Every task and its allowlist, by task id.
    pub fn tasks(&self) -> impl Iterator<Item = (&TaskId, &TaskEgress)> {
        self.tasks.iter()
    }
}

#[derive(Deserialize)]
struct ManifestDoc {
    #[serde(default)]
    tasks: Vec<TaskDoc>,
}

#[derive(Deserialize)]
struct TaskDoc {
    id: String,
    #[serde(default)]
    egress: Option<EgressDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EgressDoc {
    #[serde(default)]
    allow: Vec<AllowDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AllowDoc {
    host: String,
    ports: Vec<i64>,
}

impl AllowDoc {
    fn check(self, path: &str) -> Result<AllowRule, EgressError> {
        let host = HostPattern::parse(&self.host).map_err(|e| EgressError::Invalid {
            path: format!("{path}.host"),
            reason: e.to_string(),
        })?;
        if self.ports.is_empty() {
            return Err(EgressError::Invalid {
                path: format!("{path}.ports"),
                reason: "at least one port is required (there is no 'any port')".into(),
            });
        }
        let mut ports = Vec::with_capacity(self.ports.len());
        for (pi, p) in self.ports.into_iter().enumerate() {
            match u16::try_from(p) {
                Ok(p) if p != 0 => ports.push(p),
                _ => {
                    return Err(EgressError::Invalid {
                        path: format!("{path}.ports[{pi}]"),
                        reason: format!("{p} is not a port (1-65535)"),
                    });
                }
            }
        }
        ports.sort_unstable();
        ports.dedup();
        Ok(AllowRule { host, ports })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn dest(s: &str) -> Destination {
        Destination::from_authority(s).unwrap()
    }

    #[test]
    fn spec_example_reads_and_checks() {
        let m = WorkflowEgress::from_yaml(
            "tasks:\n  - id: fetch\n    uses: pkg:http/get@1.0.0\n    egress:\n      allow:\n        - host: api.example.com\n          ports: [443]\n",
        )
        .unwrap();
        let p = m.task("fetch").unwrap();
        assert!(p.check(&dest("api.example.com:443")).is_ok());
        assert!(p.check(&dest("API.EXAMPLE.COM.:443")).is_ok());
        assert_eq!(
            p.check(&dest("api.example.com:80")),
            Err(DenyReason::PortNotAllowed { allowed: vec![443] })
        );
        assert_eq!(
            p.check(&dest("api.example.com.evil.net:443")),
            Err(DenyReason::HostNotAllowed)
        );
        assert!(m.task("other").is_none());
    }

    #[test]
    fn wildcards_cover_only_names_strictly_below() {
        let p = TaskEgress::from_rules([("*.example.com", vec![443])]).unwrap();
        assert!(p.check(&dest("a.example.com:443")).is_ok());
        assert!(p.check(&dest("a.b.example.com:443")).is_ok());
        for d in [
            "example.com:443",
            "badexample.com:443",
            "a.example.com.evil.net:443",
            "a-example.com:443",
        ] {
            assert_eq!(p.check(&dest(d)), Err(DenyReason::HostNotAllowed), "{d}");
        }
        for bad in [
            "*.com",
            "*example.com",
            "a.*.example.com",
            "*",
            "*.",
            "**.a.b",
        ] {
            assert!(
                matches!(
                    HostPattern::parse(bad),
                    Err(HostError::BadWildcard { .. }) | Err(HostError::Empty)
                ),
                "{bad}: {:?}",
                HostPattern::parse(bad)
            );
        }
    }

    #[test]
    fn ip_rules_match_only_that_address() {
        let p = TaskEgress::from_rules([("10.0.0.5", vec![5432])]).unwrap();
        assert!(p.check(&dest("10.0.0.5:5432")).is_ok());
        assert!(p.check(&dest("[::ffff:10.0.0.5]:5432")).is_ok());
        assert_eq!(
            p.check(&dest("10.0.0.6:5432")),
            Err(DenyReason::HostNotAllowed)
        );
    }

    #[test]
    fn no_section_or_empty_allow_denies_everything() {
        let m = WorkflowEgress::from_yaml(
            "tasks:\n  - id: a\n  - id: b\n    egress: {}\n  - id: c\n    egress:\n      allow: []\n",
        )
        .unwrap();
        for t in ["a", "b", "c"] {
            assert_eq!(
                m.task(t).unwrap().check(&dest("api.example.com:443")),
                Err(DenyReason::HostNotAllowed)
            );
        }
    }

    #[test]
    fn bad_manifests_name_the_path() {
        let cases = [
            (
                "tasks:\n  - id: a\n    egress:\n      allow:\n        - host: a.example\n          ports: [70000]\n",
                "tasks[0].egress.allow[0].ports[0]",
            ),
            (
                "tasks:\n  - id: a\n    egress:\n      allow:\n        - host: a.example\n          ports: []\n",
                "tasks[0].egress.allow[0].ports",
            ),
            (
                "tasks:\n  - id: a\n  - id: b\n    egress:\n      allow:\n        - host: 'bücher.example'\n          ports: [443]\n",
                "tasks[1].egress.allow[0].host",
            ),
            ("tasks:\n  - id: 'a b'\n", "tasks[0].id"),
        ];
        for (yaml, path) in cases {
            match WorkflowEgress::from_yaml(yaml) {
                Err(EgressError::Invalid { path: p, .. }) => assert_eq!(p, path),
                other => panic!("{path}: {other:?}"),
            }
        }
        assert!(matches!(
            WorkflowEgress::from_yaml("tasks:\n  - id: a\n    egress:\n      alow: []\n"),
            Err(EgressError::Yaml(_))
        ));
        assert!(matches!(
            WorkflowEgress::from_yaml("tasks:\n  - id: a\n  - id: a\n"),
            Err(EgressError::DuplicateTask { .. })
        ));
        assert!(matches!(
            WorkflowEgress::from_yaml("tasks: 3"),
            Err(EgressError::Yaml(_))
        ));
    }

    proptest! {
        #[test]
        fn manifest_reader_never_panics(s in "\\PC{0,200}") {
            let _ = WorkflowEgress::from_yaml(&s);
        }

        #[test]
        fn wildcard_match_is_a_label_suffix(label in "[a-z0-9]{1,10}", other in "[a-z0-9.\\-]{0,20}") {
            let p = HostPattern::parse("*.example.com").unwrap();
            let host = format!("{label}{other}");
            if let Ok(h) = Host::parse(&host) {
                let expect = matches!(&h, Host::Name(n) if n.ends_with(".example.com"));
                prop_assert_eq!(p.matches(&h), expect);
            }
        }
    }
}
