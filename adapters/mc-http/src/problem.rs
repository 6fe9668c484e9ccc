//! RFC 9457 problem documents and the mapping of every library error to one.
//!
//! Every error this crate answers is an `application/problem+json` body with `type`,
//! `title`, `status`, `detail` and a stable `code` extension (for actions, exactly
//! [`ActionError::code`]). The status is chosen per variant so a client can react
//! without parsing text: bad input is 4xx and never 500.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mc_actions::ActionError;
use mc_core::{IdError, StepUpError, StoreError};
use serde::Serialize;

/// The media type of problem documents (RFC 9457 §3).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Prefix of every problem `type` URI; the suffix is the problem's `code`.
pub const PROBLEM_TYPE_BASE: &str = "https://maestro-conductor.dev/problems/";

/// An RFC 9457 problem document, plus the `code` extension member.
///
/// Serialised as `{"type", "title", "status", "detail", "code", "field"?}`; `type`
/// is [`PROBLEM_TYPE_BASE`] + `code` and `title` the status's reason phrase, so
/// neither can disagree with the fields they derive from.
///
/// ```
/// use mc_http::Problem;
/// let p = Problem::bad_request("missing_idempotency_key", "the Idempotency-Key header is required");
/// assert_eq!(p.status, 400);
/// assert_eq!(p.type_uri(), "https://maestro-conductor.dev/problems/missing_idempotency_key");
/// let json = serde_json::to_value(&p).unwrap();
/// assert_eq!(json["title"], "Bad Request");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong in this occurrence (names the field for bad input).
    pub detail: String,
    /// Stable machine-readable code (extension member).
    pub code: String,
    /// The request field at fault, when there is one (extension member).
    pub field: Option<String>,
    /// Extra response headers (`WWW-Authenticate`, `Retry-After`); not serialised.
    pub headers: Vec<(header::HeaderName, String)>,
}

impl Serialize for Problem {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("type", &self.type_uri())?;
        m.serialize_entry("title", self.title())?;
        m.serialize_entry("status", &self.status)?;
        m.serialize_entry("detail", &self.detail)?;
        m.serialize_entry("code", &self.code)?;
        if let Some(f) = &self.field {
            m.serialize_entry("field", f)?;
        }
        m.end()
    }
}

impl Problem {
    /// A problem with `status`, `code` and `detail`.
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        Problem {
            status: status.as_u16(),
            detail: detail.into(),
            code: code.to_string(),
            field: None,
            headers: Vec::new(),
        }
    }

    /// The `type` member: a URI naming the problem type.
    pub fn type_uri(&self) -> String {
        format!("{PROBLEM_TYPE_BASE}{}", self.code)
    }

    /// The `title` member: the status's canonical reason phrase.
    pub fn title(&self) -> &'static str {
        StatusCode::from_u16(self.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Error")
    }

    /// A 400 Bad Request problem.
    pub fn bad_request(code: &str, detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::BAD_REQUEST, code, detail)
    }

    /// Names the request field at fault.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Adds a response header.
    pub fn with_header(mut self, name: header::HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// 400 for an identifier that failed validation; `field` is the request field
    /// (`id`, `executionId`), the detail carries the validator's reason.
    pub fn bad_id(field: &str, err: &IdError) -> Self {
        Problem::bad_request("invalid_id", format!("invalid {field}: {err}")).with_field(field)
    }

    /// 401 for a missing or unusable bearer token (RFC 6750 §3).
    pub fn unauthenticated(detail: impl Into<String>) -> Self {
        let detail = detail.into();
        Problem::new(StatusCode::UNAUTHORIZED, "unauthenticated", detail.clone()).with_header(
            header::WWW_AUTHENTICATE,
            format!(
                "Bearer realm=\"mc\", error=\"invalid_token\", error_description=\"{}\"",
                quote_safe(&detail)
            ),
        )
    }

    /// 401 without a token at all: RFC 6750 §3.1 says no error code then.
    pub fn missing_token() -> Self {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "a bearer token is required (Authorization: Bearer <token>)",
        )
        .with_header(header::WWW_AUTHENTICATE, "Bearer realm=\"mc\"")
    }

    /// 403 for a token that lacks `scope` (RFC 6750 §3.1 `insufficient_scope`).
    pub fn insufficient_scope(scope: &str) -> Self {
        Problem::new(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            format!("the bearer token lacks the scope {scope}"),
        )
        .with_header(
            header::WWW_AUTHENTICATE,
            format!("Bearer realm=\"mc\", error=\"insufficient_scope\", scope=\"{scope}\""),
        )
    }

    /// 401 asking for step-up, shaped as RFC 9470 §3.
    pub fn step_up(code: &str, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        Problem::new(StatusCode::UNAUTHORIZED, code, detail.clone()).with_header(
            header::WWW_AUTHENTICATE,
            format!(
                "Bearer error=\"insufficient_user_authentication\", error_description=\"{}\"",
                quote_safe(&detail)
            ),
        )
    }

    /// 503 while step-up cannot be performed: the console is read-only (spec §8).
    pub fn step_up_unavailable(detail: &str) -> Self {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "step_up_unavailable",
            format!("step-up unavailable, console is read-only: {detail}"),
        )
        .with_header(header::RETRY_AFTER, "30")
    }

    /// The problem for a store error outside an action.
    pub fn from_store(err: &StoreError) -> Self {
        match err {
            StoreError::NotFound { .. } => {
                Problem::new(StatusCode::NOT_FOUND, "not_found", err.to_string())
            }
            StoreError::AlreadyExists { .. } => {
                Problem::new(StatusCode::CONFLICT, "already_exists", err.to_string())
            }
            StoreError::VersionConflict { .. } | StoreError::Conflict { .. } => {
                Problem::new(StatusCode::CONFLICT, "conflict", err.to_string())
            }
            StoreError::IllegalTransition { .. } => {
                Problem::new(StatusCode::CONFLICT, "illegal_transition", err.to_string())
            }
            StoreError::IdempotencyConflict { .. } => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_conflict",
                err.to_string(),
            ),
            StoreError::InvalidInput { field, .. } => {
                Problem::bad_request("invalid_request", err.to_string()).with_field(*field)
            }
            StoreError::Unavailable(_) => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                err.to_string(),
            )
            .with_header(header::RETRY_AFTER, "5"),
            // Server-side faults: the detail stays generic (no backend internals leak
            // to clients); the full error is logged.
            StoreError::Corrupt(_) | StoreError::Backend(_) => {
                tracing::error!(error = %err, "store failure");
                Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "store_error",
                    "the store failed; the request had no effect",
                )
            }
        }
    }

    /// The problem for an action refusal. `code` is always [`ActionError::code`].
    pub fn from_action(err: &ActionError) -> Self {
        let code = err.code();
        let detail = err.to_string();
        match err {
            ActionError::InvalidRequest { field, .. } => {
                Problem::bad_request(code, detail).with_field(*field)
            }
            ActionError::FlagDisabled { .. } | ActionError::NotAllowed { .. } => {
                Problem::new(StatusCode::FORBIDDEN, code, detail)
            }
            ActionError::StepUpRequired { .. } => Problem::step_up(code, detail),
            ActionError::StepUpRejected(e) => {
                Problem::step_up(code, detail).with_field(step_up_field(e))
            }
            ActionError::StepUpUnavailable(m) => {
                let mut p = Problem::step_up_unavailable(m);
                p.code = code.to_string();
                p
            }
            ActionError::NotAllowedInState { .. } | ActionError::Conflict { .. } => {
                Problem::new(StatusCode::CONFLICT, code, detail)
            }
            ActionError::NotFound { .. } => Problem::new(StatusCode::NOT_FOUND, code, detail),
            ActionError::IdempotencyConflict { .. } => {
                Problem::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail)
                    .with_field("Idempotency-Key")
            }
            ActionError::RateLimited { retry_after } => {
                Problem::new(StatusCode::TOO_MANY_REQUESTS, code, detail).with_header(
                    header::RETRY_AFTER,
                    retry_after_secs(*retry_after).to_string(),
                )
            }
            ActionError::Store(e) => {
                let mut p = Problem::from_store(e);
                if p.status >= 500 && p.status != 503 {
                    p.code = code.to_string();
                }
                p
            }
        }
    }
}

fn step_up_field(e: &StepUpError) -> &'static str {
    match e {
        StepUpError::Mismatch { .. }
        | StepUpError::Invalid
        | StepUpError::Expired
        | StepUpError::AlreadyUsed
        | StepUpError::Unavailable(_) => "stepUp",
    }
}

fn retry_after_secs(d: Duration) -> u64 {
    // Round up: telling a client to come back too early only earns another 429.
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Makes `s` safe inside a quoted-string of an HTTP auth parameter: no quotes,
/// backslashes or control characters (they would break or smuggle header syntax).
fn quote_safe(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '"' | '\\' => '\'',
            c if c.is_control() || !c.is_ascii() => ' ',
            c => c,
        })
        .collect()
}

impl From<ActionError> for Problem {
    fn from(e: ActionError) -> Self {
        Problem::from_action(&e)
    }
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Self {
        Problem::from_store(&e)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        for (name, value) in &self.headers {
            if let Ok(v) = HeaderValue::from_str(value) {
                headers.append(name.clone(), v);
            }
        }
        (status, headers, body).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mc_core::{ActionKind, ExecutionState, Flag};

    #[test]
    fn every_action_error_has_a_precise_status() {
        let cases: Vec<(ActionError, u16)> = vec![
            (
                ActionError::InvalidRequest {
                    field: "reason",
                    reason: "must not be empty".into(),
                },
                400,
            ),
            (
                ActionError::FlagDisabled {
                    flag: Flag::ConsoleActionsEnabled,
                    tenant: "acme".into(),
                },
                403,
            ),
            (ActionError::NotAllowed { reasons: vec![] }, 403),
            (
                ActionError::StepUpRequired {
                    action: ActionKind::Retry,
                    execution_id: "e".into(),
                },
                401,
            ),
            (ActionError::StepUpRejected(StepUpError::Expired), 401),
            (ActionError::StepUpUnavailable("down".into()), 503),
            (
                ActionError::NotAllowedInState {
                    action: ActionKind::Retry,
                    state: ExecutionState::Running,
                },
                409,
            ),
            (
                ActionError::NotFound {
                    execution_id: "e".into(),
                },
                404,
            ),
            (ActionError::IdempotencyConflict { key: "k".into() }, 422),
            (
                ActionError::Conflict {
                    execution_id: "e".into(),
                },
                409,
            ),
            (
                ActionError::RateLimited {
                    retry_after: Duration::from_millis(1500),
                },
                429,
            ),
            (
                ActionError::Store(StoreError::Unavailable("db down".into())),
                503,
            ),
            (ActionError::Store(StoreError::Backend("boom".into())), 500),
        ];
        for (err, status) in cases {
            let p = Problem::from_action(&err);
            assert_eq!(p.status, status, "{err:?}");
            if status != 503 {
                assert_eq!(p.code, err.code(), "{err:?}");
            }
            assert!(p.type_uri().ends_with(&p.code));
        }
        let p = Problem::from_action(&ActionError::RateLimited {
            retry_after: Duration::from_millis(1500),
        });
        assert_eq!(p.headers[0].1, "2");
        let p = Problem::from_action(&ActionError::Store(StoreError::Backend("secret".into())));
        assert!(!p.detail.contains("secret"));
    }

    #[test]
    fn step_up_header_is_rfc9470_shaped_and_injection_safe() {
        let p = Problem::step_up("step_up_required", "need \"it\"\r\nX-Evil: 1");
        let (name, value) = &p.headers[0];
        assert_eq!(name, header::WWW_AUTHENTICATE);
        assert!(value.starts_with("Bearer error=\"insufficient_user_authentication\""));
        assert!(!value.contains('\r') && !value.contains('\n'));
        assert_eq!(value.matches('"').count(), 4);
    }
}
