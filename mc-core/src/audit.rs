//! Hash-chained, append-only audit events.
//!
//! The JSON of an [`AuditEvent`] is exactly spec §5.7 —
//! `type`, `actor{sub,tenant}`, `subject{executionId}`, `data{action,reason}`, `ts` —
//! plus four chain fields: `id`, `seq`, `prev` and `hash`.
//!
//! Each tenant has its own chain. Event `n` carries `prev` = `hash` of event `n-1`
//! ([`GENESIS_HASH`] for the first) and `hash` = SHA-256 of the event's canonical
//! JSON without the `hash` field. Editing any field, deleting an event or reordering
//! events therefore breaks a link that [`verify_chain`] reports.
//!
//! ```
//! use mc_core::audit::{verify_chain, NewAuditEvent, GENESIS_HASH};
//! use mc_core::{ActionKind, ActorId, ExecutionId, TenantId};
//! use time::macros::datetime;
//!
//! let tenant = TenantId::new("acme").unwrap();
//! let ev = NewAuditEvent::exec_action(
//!     &tenant,
//!     &ActorId::new("alice@company").unwrap(),
//!     &ExecutionId::new("exec_123").unwrap(),
//!     ActionKind::Retry,
//!     "transient_error",
//!     datetime!(2025-12-10 18:04:21 UTC),
//! );
//! let sealed = ev.seal(1, GENESIS_HASH);
//! assert!(verify_chain(std::slice::from_ref(&sealed)).is_ok());
//! let json = serde_json::to_value(&sealed).unwrap();
//! assert_eq!(json["type"], "mc.exec.action");
//! assert_eq!(json["subject"]["executionId"], "exec_123");
//! assert_eq!(json["ts"], "2025-12-10T18:04:21Z");
//! ```

use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use time::OffsetDateTime;

use crate::action::ActionKind;
use crate::id::{ActorId, ExecutionId, TenantId};

/// `prev` of the first event of every chain: 64 zeros.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The event type of a console action (spec §5.7).
pub const EXEC_ACTION: &str = "mc.exec.action";

/// Who did it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditActor {
    /// The actor's subject (`alice@company`).
    pub sub: ActorId,
    /// The actor's tenant.
    pub tenant: TenantId,
}

/// What it was done to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditSubject {
    /// The execution, for execution events.
    #[serde(
        rename = "executionId",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub execution_id: Option<ExecutionId>,
    /// Any other resource (a flag, a retention rule, a blob key), for other events.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub resource: Option<String>,
}

/// An event that has not yet been appended to a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditEvent {
    /// A caller-chosen event id, unique within the tenant (e.g. derived from an
    /// idempotency key, so the id is known before the commit). When `None`, sealing
    /// derives one from the chain position.
    pub id: Option<String>,
    /// Event type, e.g. [`EXEC_ACTION`].
    pub kind: String,
    /// Who.
    pub actor: AuditActor,
    /// What.
    pub subject: AuditSubject,
    /// Event-specific data (for `mc.exec.action`: `{action, reason}`).
    pub data: serde_json::Value,
    /// When (stored with whole-second precision, RFC 3339 UTC).
    pub ts: OffsetDateTime,
}

impl NewAuditEvent {
    /// The `mc.exec.action` event of spec §5.7.
    pub fn exec_action(
        tenant: &TenantId,
        actor: &ActorId,
        execution: &ExecutionId,
        action: ActionKind,
        reason: &str,
        ts: OffsetDateTime,
    ) -> Self {
        NewAuditEvent {
            id: None,
            kind: EXEC_ACTION.to_string(),
            actor: AuditActor {
                sub: actor.clone(),
                tenant: tenant.clone(),
            },
            subject: AuditSubject {
                execution_id: Some(execution.clone()),
                resource: None,
            },
            data: serde_json::json!({ "action": action.as_str(), "reason": reason }),
            ts,
        }
    }

    /// Sets the event id (builder style); see [`NewAuditEvent::id`].
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// The tenant whose chain this event belongs to.
    pub fn tenant(&self) -> &TenantId {
        &self.actor.tenant
    }

    /// Seals the event as number `seq` of its tenant's chain, after the event whose
    /// hash is `prev`.
    pub fn seal(self, seq: u64, prev: &str) -> AuditEvent {
        let ts = truncate_to_seconds(self.ts);
        let mut ev = AuditEvent {
            id: self
                .id
                .unwrap_or_else(|| event_id(&self.actor.tenant, seq, prev)),
            kind: self.kind,
            actor: self.actor,
            subject: self.subject,
            data: self.data,
            ts,
            seq,
            prev: prev.to_string(),
            hash: String::new(),
        };
        ev.hash = ev.compute_hash();
        ev
    }
}

fn truncate_to_seconds(ts: OffsetDateTime) -> OffsetDateTime {
    ts.to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .unwrap_or(ts)
}

fn event_id(tenant: &TenantId, seq: u64, prev: &str) -> String {
    let mut h = sha2::Sha256::new();
    h.update(tenant.as_str().as_bytes());
    h.update(b"\n");
    h.update(seq.to_string().as_bytes());
    h.update(b"\n");
    h.update(prev.as_bytes());
    format!("evt_{}", &hex::encode(h.finalize())[..24])
}

/// A sealed audit event, as stored and as exported (one JSON object per line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Stable event id.
    pub id: String,
    /// Event type (`mc.exec.action`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// Who.
    pub actor: AuditActor,
    /// What.
    pub subject: AuditSubject,
    /// Event data.
    pub data: serde_json::Value,
    /// When, RFC 3339 UTC with whole seconds (`2025-12-10T18:04:21Z`).
    #[serde(with = "time::serde::rfc3339")]
    pub ts: OffsetDateTime,
    /// Position in the tenant's chain, from 1.
    pub seq: u64,
    /// `hash` of the previous event, or [`GENESIS_HASH`].
    pub prev: String,
    /// SHA-256 (hex) of the canonical JSON of this event without `hash`.
    pub hash: String,
}

impl AuditEvent {
    /// The tenant whose chain holds this event.
    pub fn tenant(&self) -> &TenantId {
        &self.actor.tenant
    }

    /// Recomputes the hash from the event's content (ignoring the stored `hash`).
    pub fn compute_hash(&self) -> String {
        let mut v = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        if let serde_json::Value::Object(m) = &mut v {
            m.remove("hash");
        }
        let mut buf = Vec::with_capacity(256);
        write_canonical(&v, &mut buf);
        hex::encode(sha2::Sha256::digest(&buf))
    }
}

/// Writes `v` as canonical JSON: object keys sorted by their UTF-8 bytes, no
/// whitespace. Independent of serde_json's `preserve_order` feature, so a hash
/// computed by one build verifies in another.
pub fn write_canonical(v: &serde_json::Value, out: &mut Vec<u8>) {
    use serde_json::Value;
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                // Serialising a string cannot fail.
                out.extend_from_slice(serde_json::to_string(k).unwrap_or_default().as_bytes());
                out.push(b':');
                write_canonical(&m[k], out);
            }
            out.push(b'}');
        }
        Value::Array(a) => {
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(x, out);
            }
            out.push(b']');
        }
        other => out.extend_from_slice(other.to_string().as_bytes()),
    }
}

/// What is wrong at a broken link.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    /// The stored hash does not match the event's content: the event was edited.
    #[error("hash mismatch: content was modified (stored {stored}, computed {computed})")]
    HashMismatch {
        /// The hash stored in the event.
        stored: String,
        /// The hash recomputed from its content.
        computed: String,
    },
    /// `prev` does not name the previous event's hash: an event was removed,
    /// inserted or moved.
    #[error("prev does not match the previous event's hash")]
    PrevMismatch,
    /// Sequence numbers are not contiguous.
    #[error("expected seq {expected}, found {found}")]
    SeqGap {
        /// The expected number.
        expected: u64,
        /// The number found.
        found: u64,
    },
    /// An event of another tenant appears in this chain.
    #[error("event belongs to tenant {found}, chain is {expected}")]
    ForeignTenant {
        /// The chain's tenant.
        expected: String,
        /// The event's tenant.
        found: String,
    },
}

/// The first broken link of a chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit chain broken at index {index} (seq {seq}, id {id}): {kind}")]
pub struct ChainError {
    /// Index in the slice given to the verifier.
    pub index: usize,
    /// The event's `seq` as stored.
    pub seq: u64,
    /// The event's id as stored.
    pub id: String,
    /// What is wrong.
    pub kind: ChainBreak,
}

/// Verifies a whole tenant chain starting at seq 1 with [`GENESIS_HASH`].
///
/// # Errors
/// [`ChainError`] for the first broken link.
pub fn verify_chain(events: &[AuditEvent]) -> Result<(), ChainError> {
    verify_chain_from(None, events)
}

/// Verifies a segment of a chain that follows `anchor` (`(seq, hash)` of the event
/// just before the segment), or a whole chain when `anchor` is `None`.
///
/// # Errors
/// [`ChainError`] for the first broken link.
pub fn verify_chain_from(
    anchor: Option<(u64, &str)>,
    events: &[AuditEvent],
) -> Result<(), ChainError> {
    let (mut expected_seq, mut prev) = match anchor {
        Some((seq, hash)) => (seq + 1, hash.to_string()),
        None => (1, GENESIS_HASH.to_string()),
    };
    let tenant = events.first().map(|e| e.tenant().clone());
    for (index, ev) in events.iter().enumerate() {
        let fail = |kind| ChainError {
            index,
            seq: ev.seq,
            id: ev.id.clone(),
            kind,
        };
        if let Some(t) = &tenant
            && ev.tenant() != t
        {
            return Err(fail(ChainBreak::ForeignTenant {
                expected: t.to_string(),
                found: ev.tenant().to_string(),
            }));
        }
        let computed = ev.compute_hash();
        if computed != ev.hash {
            return Err(fail(ChainBreak::HashMismatch {
                stored: ev.hash.clone(),
                computed,
            }));
        }
        if ev.seq != expected_seq {
            return Err(fail(ChainBreak::SeqGap {
                expected: expected_seq,
                found: ev.seq,
            }));
        }
        if ev.prev != prev {
            return Err(fail(ChainBreak::PrevMismatch));
        }
        prev = ev.hash.clone();
        expected_seq += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn chain(n: u64) -> Vec<AuditEvent> {
        let t = TenantId::new("acme").unwrap();
        let a = ActorId::new("alice@company").unwrap();
        let mut prev = GENESIS_HASH.to_string();
        (1..=n)
            .map(|i| {
                let e = NewAuditEvent::exec_action(
                    &t,
                    &a,
                    &ExecutionId::new(format!("exec_{i}")).unwrap(),
                    ActionKind::Retry,
                    "transient_error",
                    datetime!(2025-12-10 18:04:21.123 UTC),
                )
                .seal(i, &prev);
                prev = e.hash.clone();
                e
            })
            .collect()
    }

    #[test]
    fn json_shape_is_spec_5_7_plus_chain_fields() {
        let e = &chain(1)[0];
        let v = serde_json::to_value(e).unwrap();
        let mut keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "actor", "data", "hash", "id", "prev", "seq", "subject", "ts", "type"
            ]
        );
        assert_eq!(
            v["actor"],
            serde_json::json!({"sub": "alice@company", "tenant": "acme"})
        );
        assert_eq!(v["subject"], serde_json::json!({"executionId": "exec_1"}));
        assert_eq!(
            v["data"],
            serde_json::json!({"action": "retry", "reason": "transient_error"})
        );
        assert_eq!(v["ts"], "2025-12-10T18:04:21Z");
        let back: AuditEvent = serde_json::from_value(v).unwrap();
        assert_eq!(&back, e);
        assert!(verify_chain(&[back]).is_ok());
    }

    #[test]
    fn tamper_edit_delete_reorder_are_detected() {
        let good = chain(5);
        verify_chain(&good).unwrap();

        let mut edited = good.clone();
        edited[2].data["reason"] = serde_json::json!("nothing to see");
        let err = verify_chain(&edited).unwrap_err();
        assert_eq!(err.index, 2);
        assert!(matches!(err.kind, ChainBreak::HashMismatch { .. }));

        // Edit and re-hash the event: the next link breaks instead.
        let mut rehashed = good.clone();
        rehashed[2].data["reason"] = serde_json::json!("x");
        rehashed[2].hash = rehashed[2].compute_hash();
        let err = verify_chain(&rehashed).unwrap_err();
        assert_eq!(err.index, 3);
        assert_eq!(err.kind, ChainBreak::PrevMismatch);

        let mut deleted = good.clone();
        deleted.remove(1);
        let err = verify_chain(&deleted).unwrap_err();
        assert_eq!(err.index, 1);
        assert!(matches!(
            err.kind,
            ChainBreak::SeqGap {
                expected: 2,
                found: 3
            }
        ));

        let mut reordered = good.clone();
        reordered.swap(3, 4);
        let err = verify_chain(&reordered).unwrap_err();
        assert_eq!(err.index, 3);

        let mut first_deleted = good.clone();
        first_deleted.remove(0);
        assert_eq!(verify_chain(&first_deleted).unwrap_err().index, 0);
        // ...but the same segment verifies against its true anchor.
        verify_chain_from(Some((1, &good[0].hash)), &first_deleted).unwrap();
    }

    #[test]
    fn canonical_json_sorts_keys() {
        let v = serde_json::json!({"b": 1, "a": {"d": [1, "x"], "c": null}});
        let mut out = Vec::new();
        write_canonical(&v, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"a":{"c":null,"d":[1,"x"]},"b":1}"#
        );
    }
}
