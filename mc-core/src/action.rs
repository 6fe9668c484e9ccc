//! The console write actions (spec §3.1, MC-UI-1101).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A console write action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// Stop a pending or running execution.
    Cancel,
    /// Run a failed execution again (same id, next attempt).
    Retry,
    /// Start a new execution with the same manifest and inputs as a terminal one.
    Replay,
}

impl ActionKind {
    /// All actions.
    pub const ALL: [ActionKind; 3] = [ActionKind::Cancel, ActionKind::Retry, ActionKind::Replay];

    /// The name used in routes (`:cancel`), audit events and policy input.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Cancel => "cancel",
            ActionKind::Retry => "retry",
            ActionKind::Replay => "replay",
        }
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown action name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown action {0:?}; expected cancel, retry or replay")]
pub struct UnknownAction(pub String);

impl FromStr for ActionKind {
    type Err = UnknownAction;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ActionKind::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| UnknownAction(s.to_string()))
    }
}
