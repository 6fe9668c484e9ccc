//! Retention routes (spec §1 B3, §3.6 MC-DATA-1151: per-tenant overrides with audit
//! events): a tenant's retention rules and overrides, and changing an override.
//!
//! | method | path | scope | what |
//! |---|---|---|---|
//! | `GET` | `/api/retention` | `executions:read` | every kind: default, bounds, enforcement, override, period in force |
//! | `GET` | `/api/retention/{kind}` | `executions:read` | one kind, with an `ETag` naming its override |
//! | `PUT` | `/api/retention/{kind}` | `executions:write` + an admin role | set (`{"ttl": "30d"}`) or remove (`{"ttl": null}`) the override, with a reason |
//!
//! The tenant is always the caller's. A change is checked against the kind's bounds
//! (receipts can only be kept longer than 7 years), committed together with its
//! `mc.lifecycle.override` audit event (actor, reason, previous value), and refused
//! to callers without one of the admin roles (default `retention_admin`). `If-Match`
//! with the `ETag` of a `GET` makes the change conditional (412 when someone changed
//! the override since); without it the change applies to whatever is in force and
//! the audit event records what it replaced.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mc_actions::MAX_REASON_CHARS;
use mc_core::{Clock, RetentionStore};
use mc_lifecycle::{
    KindRetention, LifecycleError, OverrideChange, Retention, Ttl, set_override_audited,
    set_override_if, tenant_retention,
};
use serde::{Deserialize, Serialize};

use crate::auth::Authenticated;
use crate::extract::ApiJson;
use crate::problem::Problem;
use crate::state::AppState;

/// The role that may change retention overrides unless configured otherwise.
pub const RETENTION_ADMIN_ROLE: &str = "retention_admin";

/// What the retention routes need.
#[derive(Clone)]
pub struct RetentionApi {
    /// The rules (kinds, defaults, bounds); overrides come from `store`.
    pub rules: Retention,
    /// Where overrides are kept, with their audit events.
    pub store: Arc<dyn RetentionStore>,
    /// The time of changes.
    pub clock: Arc<dyn Clock>,
    /// Roles allowed to change overrides (any one suffices).
    pub admin_roles: Vec<String>,
}

impl std::fmt::Debug for RetentionApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetentionApi")
            .field("rules", &self.rules)
            .field("admin_roles", &self.admin_roles)
            .finish_non_exhaustive()
    }
}

impl RetentionApi {
    /// The standard rules (logs 90 days, receipts 7 years) over `store`, changeable
    /// by [`RETENTION_ADMIN_ROLE`].
    pub fn new(store: Arc<dyn RetentionStore>, clock: Arc<dyn Clock>) -> Self {
        RetentionApi {
            rules: Retention::new(),
            store,
            clock,
            admin_roles: vec![RETENTION_ADMIN_ROLE.to_string()],
        }
    }

    /// Uses `rules` instead of the standard ones.
    pub fn with_rules(mut self, rules: Retention) -> Self {
        self.rules = rules;
        self
    }

    /// Allows `roles` (instead of [`RETENTION_ADMIN_ROLE`]) to change overrides.
    pub fn with_admin_roles(mut self, roles: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.admin_roles = roles.into_iter().map(Into::into).collect();
        self
    }
}

/// `GET /api/retention`'s body.
#[derive(Debug, Serialize)]
pub(crate) struct TenantRetentionBody {
    tenant: String,
    kinds: Vec<KindRetention>,
}

/// `PUT /api/retention/{kind}`'s body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OverrideBody {
    /// The new period (`"30d"`, `"10y"`); `null` removes the override.
    ttl: Option<String>,
    /// Why (recorded in the audit event).
    reason: String,
}

/// `PUT /api/retention/{kind}`'s answer.
#[derive(Debug, Serialize)]
pub(crate) struct OverrideChanged {
    /// The period in force before the change.
    previous: Ttl,
    /// The kind after the change.
    retention: KindRetention,
}

fn not_configured() -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "not_configured",
        "retention is not configured on this server",
    )
}

impl From<LifecycleError> for Problem {
    fn from(e: LifecycleError) -> Self {
        match &e {
            LifecycleError::NoRule { .. } => {
                Problem::new(StatusCode::NOT_FOUND, "no_rule", e.to_string())
            }
            LifecycleError::OverrideOutOfBounds { .. } => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "retention_out_of_bounds",
                e.to_string(),
            )
            .with_field("ttl"),
            LifecycleError::Ttl(_) => {
                Problem::bad_request("invalid_request", e.to_string()).with_field("ttl")
            }
            LifecycleError::PreconditionFailed { .. } => Problem::new(
                StatusCode::PRECONDITION_FAILED,
                "precondition_failed",
                e.to_string(),
            ),
            LifecycleError::Audit(s) => Problem::from_store(s),
            _ => {
                tracing::error!(error = %e, "retention failure");
                Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "retention_error",
                    e.to_string(),
                )
            }
        }
    }
}

/// The entity tag of a kind's override: `"none"` or the period (`"30d"`).
fn etag(k: &KindRetention) -> String {
    let text = k.override_ttl.map(|t| t.to_string());
    format!("\"{}\"", mc_core::retention::show(text.as_deref()))
}

/// `If-Match`: absent or `*` → unconditional; `"none"` → no override; `"30d"` →
/// that override. Anything else is a 400 naming the header.
fn if_match(headers: &HeaderMap) -> Result<Option<Option<Ttl>>, Problem> {
    let Some(v) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let bad = || {
        Problem::bad_request(
            "invalid_request",
            "If-Match must be * or one entity tag from GET /api/retention/{kind}, such as \"none\" or \"30d\"",
        )
        .with_field("If-Match")
    };
    let v = v.to_str().map_err(|_| bad())?.trim();
    if v == "*" {
        return Ok(None);
    }
    let tag = v
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .ok_or_else(bad)?;
    if tag == "none" {
        return Ok(Some(None));
    }
    tag.parse::<Ttl>().map(|t| Some(Some(t))).map_err(|_| bad())
}

fn with_etag(k: &KindRetention, body: impl IntoResponse) -> Response {
    let mut r = body.into_response();
    if let Ok(v) = HeaderValue::from_str(&etag(k)) {
        r.headers_mut().insert(header::ETAG, v);
    }
    r
}

async fn kind_view(
    api: &RetentionApi,
    tenant: &mc_core::TenantId,
    kind: &str,
) -> Result<KindRetention, Problem> {
    tenant_retention(&api.rules, api.store.as_ref(), tenant)
        .await?
        .into_iter()
        .find(|k| k.kind == kind)
        .ok_or_else(|| {
            LifecycleError::NoRule {
                kind: kind.to_string(),
            }
            .into()
        })
}

/// `GET /api/retention`.
pub(crate) async fn list(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Json<TenantRetentionBody>, Problem> {
    let api = state.retention.as_ref().ok_or_else(not_configured)?;
    let tenant = &principal.actor.tenant;
    let kinds = tenant_retention(&api.rules, api.store.as_ref(), tenant).await?;
    Ok(Json(TenantRetentionBody {
        tenant: tenant.to_string(),
        kinds,
    }))
}

/// `GET /api/retention/{kind}`.
pub(crate) async fn get_kind(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(kind): Path<String>,
) -> Result<Response, Problem> {
    let api = state.retention.as_ref().ok_or_else(not_configured)?;
    let k = kind_view(api, &principal.actor.tenant, &kind).await?;
    Ok(with_etag(&k, Json(&k)))
}

/// `PUT /api/retention/{kind}`.
pub(crate) async fn put_kind(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(kind): Path<String>,
    headers: HeaderMap,
    body: Result<ApiJson<OverrideBody>, Problem>,
) -> Result<Response, Problem> {
    let api = state.retention.as_ref().ok_or_else(not_configured)?;
    let actor = &principal.actor;
    if !actor.roles.iter().any(|r| api.admin_roles.contains(r)) {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "not_allowed",
            format!(
                "changing retention needs one of the roles {}",
                api.admin_roles.join(", ")
            ),
        ));
    }
    let precondition = if_match(&headers)?;
    let ApiJson(body) = body?;
    let reason = body.reason.trim();
    if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
        return Err(Problem::bad_request(
            "invalid_request",
            format!("reason must be 1 to {MAX_REASON_CHARS} characters"),
        )
        .with_field("reason"));
    }
    let ttl = body
        .ttl
        .as_deref()
        .map(str::parse::<Ttl>)
        .transpose()
        .map_err(LifecycleError::from)?;
    let change = OverrideChange {
        tenant: &actor.tenant,
        actor: &actor.sub,
        kind: &kind,
        ttl,
        reason,
    };
    let now = api.clock.now();
    let previous = match precondition {
        Some(expected) => {
            set_override_if(&api.rules, api.store.as_ref(), change, expected, now).await?
        }
        None => set_override_audited(&api.rules, api.store.as_ref(), change, now).await?,
    };
    let k = kind_view(api, &actor.tenant, &kind).await?;
    Ok(with_etag(
        &k,
        Json(OverrideChanged {
            previous,
            retention: k.clone(),
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_forms() {
        let mut h = HeaderMap::new();
        assert_eq!(if_match(&h).unwrap(), None);
        for (v, want) in [
            ("*", None),
            ("\"none\"", Some(None)),
            ("\"30d\"", Some(Some(Ttl::days(30)))),
        ] {
            h.insert(header::IF_MATCH, HeaderValue::from_static(v));
            assert_eq!(if_match(&h).unwrap(), want, "{v}");
        }
        for bad in [
            "30d",
            "\"30 days\"",
            "\"\"",
            "W/\"30d\"",
            "\"30d\", \"none\"",
        ] {
            h.insert(header::IF_MATCH, HeaderValue::from_static(bad));
            let p = if_match(&h).unwrap_err();
            assert_eq!(p.status, 400, "{bad}");
            assert_eq!(p.field.as_deref(), Some("If-Match"), "{bad}");
        }
    }
}
