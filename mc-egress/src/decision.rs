//! Decisions, the shadow/enforce mode, and what is recorded of a blocked call.

use std::fmt;
use std::net::IpAddr;

use mc_core::audit::{AuditActor, AuditSubject, NewAuditEvent};
use mc_core::{ActorId, ExecutionId, TaskId, TenantId};
use serde::Serialize;
use time::OffsetDateTime;

use crate::Destination;

/// The audit event type of a call the egress policy blocked (or, in shadow mode,
/// would have blocked).
pub const EGRESS_BLOCKED: &str = "mc.egress.blocked";

/// The metric counting blocked calls (spec §6), labelled `mode` (`enforce` |
/// `shadow`) and `reason` ([`DenyReason::code`]).
pub const BLOCK_METRIC: &str = mc_core::telemetry::EGRESS_BLOCKS.name;

/// Whether allowlist violations are refused or only recorded: the per-tenant flag
/// `egress_policy_enforce` (spec §9; off = shadow, the audit-only phase of the
/// rollout in spec §12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Violations are refused.
    Enforce,
    /// Allowlist violations are recorded and let through. The address policy
    /// (metadata service, loopback, private ranges) is enforced in both modes.
    Shadow,
}

impl Mode {
    /// The mode for the flag's value.
    pub fn from_flag(egress_policy_enforce: bool) -> Self {
        if egress_policy_enforce {
            Mode::Enforce
        } else {
            Mode::Shadow
        }
    }

    /// `enforce` or `shadow`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Shadow => "shadow",
        }
    }
}

/// Why a call is (or would be) blocked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DenyReason {
    /// The proxy does not know the task (no or wrong credentials, or not registered).
    #[error("unknown task credentials")]
    UnknownTask,
    /// No rule of the task's allowlist covers the host.
    #[error("host is not on the task's egress allowlist")]
    HostNotAllowed,
    /// Rules cover the host, on other ports.
    #[error("port is not allowed for this host (allowed: {allowed:?})")]
    PortNotAllowed {
        /// The ports the rules allow for this host.
        allowed: Vec<u16>,
    },
    /// The request target is malformed or ambiguous.
    #[error("bad request target: {0}")]
    BadTarget(String),
    /// An address the host resolved to (or the literal) lies in a denied range.
    #[error("address {addr} is in a denied range: {range}")]
    AddressDenied {
        /// The address.
        addr: IpAddr,
        /// The range and what it is.
        range: String,
    },
    /// The host did not resolve (or only to denied addresses, reported as those).
    #[error("host did not resolve: {0}")]
    Unresolvable(String),
}

impl DenyReason {
    /// A short stable code for metrics labels, audit data and response headers.
    pub fn code(&self) -> &'static str {
        match self {
            DenyReason::UnknownTask => "unknown_task",
            DenyReason::HostNotAllowed => "host_not_allowed",
            DenyReason::PortNotAllowed { .. } => "port_not_allowed",
            DenyReason::BadTarget(_) => "bad_target",
            DenyReason::AddressDenied { .. } => "address_denied",
            DenyReason::Unresolvable(_) => "unresolvable",
        }
    }

    /// Whether shadow mode lets this through (allowlist violations) or not (the
    /// address policy, malformed targets and unknown tasks are always refused).
    pub fn shadowable(&self) -> bool {
        matches!(
            self,
            DenyReason::HostNotAllowed | DenyReason::PortNotAllowed { .. }
        )
    }
}

/// The outcome for one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Allowed by the allowlist and the address policy.
    Allow,
    /// Refused.
    Deny(DenyReason),
    /// Shadow mode: the allowlist would refuse it; it goes through and is recorded.
    WouldDeny(DenyReason),
}

impl Verdict {
    /// The verdict for `reason` in `mode`.
    pub fn for_denial(reason: DenyReason, mode: Mode) -> Self {
        if mode == Mode::Shadow && reason.shadowable() {
            Verdict::WouldDeny(reason)
        } else {
            Verdict::Deny(reason)
        }
    }

    /// Whether the connection may proceed.
    pub fn proceeds(&self) -> bool {
        !matches!(self, Verdict::Deny(_))
    }

    /// The reason, unless allowed.
    pub fn reason(&self) -> Option<&DenyReason> {
        match self {
            Verdict::Allow => None,
            Verdict::Deny(r) | Verdict::WouldDeny(r) => Some(r),
        }
    }
}

/// Who made a call: the task, its execution and tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRef {
    /// The tenant.
    pub tenant: TenantId,
    /// The execution the task belongs to.
    pub execution: ExecutionId,
    /// The task within the workflow.
    pub task: TaskId,
}

/// A blocked (or, in shadow mode, would-be-blocked) call, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    /// Who.
    pub who: TaskRef,
    /// The destination as the task asked for it (`host:port`), or the raw target
    /// when it did not parse (truncated to 256 bytes).
    pub target: String,
    /// Why.
    pub reason: DenyReason,
    /// Whether it was refused (`enforce`) or let through (`shadow`).
    pub mode: Mode,
    /// When.
    pub ts: OffsetDateTime,
}

impl Blocked {
    /// Builds the record of a call with verdict `verdict`; `None` when it was allowed.
    pub fn from_verdict(
        who: &TaskRef,
        target: &str,
        verdict: &Verdict,
        ts: OffsetDateTime,
    ) -> Option<Self> {
        let (reason, mode) = match verdict {
            Verdict::Allow => return None,
            Verdict::Deny(r) => (r.clone(), Mode::Enforce),
            Verdict::WouldDeny(r) => (r.clone(), Mode::Shadow),
        };
        Some(Blocked {
            who: who.clone(),
            target: truncate(target, 256),
            reason,
            mode,
            ts,
        })
    }

    /// The `mc.egress.blocked` audit event: actor `task:{task}` of the tenant, subject
    /// the execution, data `{task, target, reason, detail, mode}`.
    pub fn to_audit_event(&self) -> NewAuditEvent {
        // A task id (≤ 128 bytes of A-Z a-z 0-9 - _ .) after "task:" is always a
        // valid actor id (≤ 256 bytes, those characters and ':').
        let sub = ActorId::new(format!("task:{}", self.who.task))
            .expect("task:{task id} is a valid actor id");
        NewAuditEvent {
            id: None,
            kind: EGRESS_BLOCKED.to_string(),
            actor: AuditActor {
                sub,
                tenant: self.who.tenant.clone(),
            },
            subject: AuditSubject {
                execution_id: Some(self.who.execution.clone()),
                resource: None,
            },
            data: serde_json::json!({
                "task": self.who.task.as_str(),
                "target": self.target,
                "reason": self.reason.code(),
                "detail": self.reason.to_string(),
                "mode": self.mode.as_str(),
            }),
            ts: self.ts,
        }
    }

    /// Counts the call in [`BLOCK_METRIC`].
    pub fn count(&self) {
        count_block(self.mode, &self.reason);
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

impl fmt::Display for Blocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} task {} of {} -> {}: {} ({})",
            self.who.tenant,
            self.who.task,
            self.who.execution,
            self.target,
            self.reason,
            self.mode.as_str()
        )
    }
}

/// Counts one blocked call in [`BLOCK_METRIC`] (also for calls with no task to
/// record them under, such as unknown credentials).
pub fn count_block(mode: Mode, reason: &DenyReason) {
    metrics::counter!(BLOCK_METRIC, "mode" => mode.as_str(), "reason" => reason.code())
        .increment(1);
}

/// Checks a parsed destination against a task's allowlist in `mode`.
pub fn decide(policy: &crate::TaskEgress, dest: &Destination, mode: Mode) -> Verdict {
    match policy.check(dest) {
        Ok(_) => Verdict::Allow,
        Err(r) => Verdict::for_denial(r, mode),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TaskEgress;

    fn who() -> TaskRef {
        TaskRef {
            tenant: TenantId::new("acme").unwrap(),
            execution: ExecutionId::new("exec_1").unwrap(),
            task: TaskId::new("fetch").unwrap(),
        }
    }

    #[test]
    fn shadow_lets_allowlist_violations_through_only() {
        let p = TaskEgress::from_rules([("api.example.com", vec![443])]).unwrap();
        let d = Destination::from_authority("evil.example:443").unwrap();
        assert_eq!(
            decide(&p, &d, Mode::Enforce),
            Verdict::Deny(DenyReason::HostNotAllowed)
        );
        let v = decide(&p, &d, Mode::Shadow);
        assert_eq!(v, Verdict::WouldDeny(DenyReason::HostNotAllowed));
        assert!(v.proceeds());
        let addr = DenyReason::AddressDenied {
            addr: "127.0.0.1".parse().unwrap(),
            range: "127.0.0.0/8 (loopback)".into(),
        };
        assert!(!Verdict::for_denial(addr, Mode::Shadow).proceeds());
        assert!(!Verdict::for_denial(DenyReason::UnknownTask, Mode::Shadow).proceeds());
    }

    #[test]
    fn blocked_calls_become_audit_events() {
        let v = Verdict::Deny(DenyReason::PortNotAllowed { allowed: vec![443] });
        let b = Blocked::from_verdict(
            &who(),
            "mail.example.com:25",
            &v,
            OffsetDateTime::UNIX_EPOCH,
        )
        .unwrap();
        let e = b.to_audit_event();
        assert_eq!(e.kind, EGRESS_BLOCKED);
        assert_eq!(e.actor.sub.as_str(), "task:fetch");
        assert_eq!(e.subject.execution_id.as_ref().unwrap().as_str(), "exec_1");
        assert_eq!(e.data["reason"], "port_not_allowed");
        assert_eq!(e.data["mode"], "enforce");
        assert_eq!(e.data["target"], "mail.example.com:25");
        assert!(
            Blocked::from_verdict(&who(), "x:1", &Verdict::Allow, OffsetDateTime::UNIX_EPOCH)
                .is_none()
        );
        let long = "a".repeat(300);
        let b = Blocked::from_verdict(
            &who(),
            &long,
            &Verdict::Deny(DenyReason::BadTarget("x".into())),
            OffsetDateTime::UNIX_EPOCH,
        )
        .unwrap();
        assert!(b.target.len() < 300);
    }
}
