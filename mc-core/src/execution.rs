//! Executions and their state machine.
//!
//! The legal transitions are written once, as data, in [`TRANSITIONS`]; every store
//! and service asks [`ExecutionState::can_transition_to`] rather than re-deciding.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::id::{ExecutionId, TenantId};

/// The lifecycle state of an execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionState {
    /// Accepted, not yet started.
    Pending,
    /// Running on a runner.
    Running,
    /// Finished successfully (terminal).
    Succeeded,
    /// Finished with an error (terminal; may be retried).
    Failed,
    /// Cancelled by an operator or the host (terminal).
    Cancelled,
}

/// Every legal `(from, to)` transition. Anything not listed is illegal.
///
/// `Failed -> Pending` is a retry (the attempt counter goes up); terminal states are
/// otherwise final — a replay creates a *new* execution instead of reviving one.
pub const TRANSITIONS: &[(ExecutionState, ExecutionState)] = {
    use ExecutionState::*;
    &[
        (Pending, Running),
        (Pending, Cancelled),
        (Pending, Failed),
        (Running, Succeeded),
        (Running, Failed),
        (Running, Cancelled),
        (Failed, Pending),
    ]
};

impl ExecutionState {
    /// All states, in lifecycle order.
    pub const ALL: [ExecutionState; 5] = [
        ExecutionState::Pending,
        ExecutionState::Running,
        ExecutionState::Succeeded,
        ExecutionState::Failed,
        ExecutionState::Cancelled,
    ];

    /// Whether `self -> to` is in [`TRANSITIONS`].
    pub fn can_transition_to(self, to: ExecutionState) -> bool {
        TRANSITIONS.iter().any(|&(f, t)| f == self && t == to)
    }

    /// Whether the state is final (no transition leaves it except a retry from `Failed`).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            ExecutionState::Succeeded | ExecutionState::Failed | ExecutionState::Cancelled
        )
    }

    /// The snake_case name used in JSON, SQL and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionState::Pending => "pending",
            ExecutionState::Running => "running",
            ExecutionState::Succeeded => "succeeded",
            ExecutionState::Failed => "failed",
            ExecutionState::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for ExecutionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown execution state name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown execution state {0:?}; expected one of pending, running, succeeded, failed, cancelled"
)]
pub struct UnknownState(pub String);

impl FromStr for ExecutionState {
    type Err = UnknownState;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ExecutionState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownState(s.to_string()))
    }
}

/// A SHA-256 digest, stored as 64 lowercase hex characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Digest(String);

/// A string that is not a SHA-256 hex digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} must be 64 lowercase hex characters (a SHA-256 digest)")]
pub struct BadDigest {
    /// The field being parsed.
    pub field: &'static str,
}

impl Digest {
    /// Digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        use sha2::Digest as _;
        Digest(hex::encode(sha2::Sha256::digest(bytes)))
    }

    /// Parses a 64-character lowercase hex string.
    ///
    /// # Errors
    /// [`BadDigest`] when the string is not 64 lowercase hex characters.
    pub fn parse_hex(field: &'static str, s: &str) -> Result<Self, BadDigest> {
        if s.len() == 64
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(Digest(s.to_string()))
        } else {
            Err(BadDigest { field })
        }
    }

    /// The hex string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse_hex("digest", &s).map_err(serde::de::Error::custom)
    }
}

/// One execution of a workflow manifest, as the control plane sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Execution {
    /// Owning tenant.
    pub tenant: TenantId,
    /// Execution id, unique within the tenant.
    pub id: ExecutionId,
    /// Current state.
    pub state: ExecutionState,
    /// Attempt number, starting at 1; a retry increments it.
    pub attempt: u32,
    /// SHA-256 of the workflow manifest the execution runs.
    pub manifest_digest: Digest,
    /// SHA-256 of the execution inputs.
    pub inputs_digest: Digest,
    /// The execution this one replays, if any.
    pub parent: Option<ExecutionId>,
    /// The first execution of the replay lineage (itself when it has no parent).
    pub root: ExecutionId,
    /// Free-form labels for search (`team=payments`).
    pub labels: BTreeMap<String, String>,
    /// Optimistic concurrency version; every committed change increments it.
    pub version: u64,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Time of the last committed change.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl Execution {
    /// A new `Pending` execution, attempt 1, version 1, its own lineage root.
    pub fn new(
        tenant: TenantId,
        id: ExecutionId,
        manifest_digest: Digest,
        inputs_digest: Digest,
        now: OffsetDateTime,
    ) -> Self {
        Execution {
            tenant,
            root: id.clone(),
            id,
            state: ExecutionState::Pending,
            attempt: 1,
            manifest_digest,
            inputs_digest,
            parent: None,
            labels: BTreeMap::new(),
            version: 1,
            created_at: now,
            updated_at: now,
        }
    }

    /// Adds a label (builder style).
    pub fn with_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_are_data() {
        use ExecutionState::*;
        assert!(Pending.can_transition_to(Running));
        assert!(Failed.can_transition_to(Pending));
        assert!(!Succeeded.can_transition_to(Pending));
        assert!(!Cancelled.can_transition_to(Running));
        for s in ExecutionState::ALL {
            assert!(!s.can_transition_to(s), "{s} -> {s} must be illegal");
            assert_eq!(s.as_str().parse::<ExecutionState>().unwrap(), s);
        }
        assert!("done".parse::<ExecutionState>().is_err());
    }

    #[test]
    fn digest_validation() {
        assert!(Digest::parse_hex("manifest_digest", "abc").is_err());
        let d = Digest::of(b"hello");
        assert_eq!(Digest::parse_hex("x", d.as_str()).unwrap(), d);
        assert!(Digest::parse_hex("x", &d.as_str().to_uppercase()).is_err());
    }
}
