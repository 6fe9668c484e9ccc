//! The handlers: parse and validate input, call one library function, map the result.
//! No business rule lives here — guards, idempotency and audit are `mc-actions`'.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use mc_actions::{ActionAvailability, ActionOutcome, ActionRequest};
use mc_core::{
    ActionKind, Cursor, Execution, ExecutionId, ExecutionQuery, ExecutionState, IdempotencyKey,
    StepUpGrant,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::auth::Authenticated;
use crate::extract::{ApiJson, IdSegment};
use crate::problem::Problem;
use crate::state::AppState;
use crate::stepup::IssuedGrant;

/// The header carrying the client's idempotency key.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Body of `POST /api/executions/{id}:{action}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ActionBody {
    reason: String,
    #[serde(default)]
    step_up: Option<String>,
}

/// Body of `POST /api/stepup/challenge`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ChallengeBody {
    action: String,
    execution_id: String,
}

/// A page of `GET /api/executions`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ExecutionPage {
    items: Vec<Execution>,
    next_cursor: Option<Cursor>,
}

/// Body of `GET /api/executions/{id}/actions`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ActionsView {
    execution_id: ExecutionId,
    actions: Vec<ActionAvailability>,
}

fn parse_execution_id(field: &str, raw: &str) -> Result<ExecutionId, Problem> {
    ExecutionId::new(raw).map_err(|e| Problem::bad_id(field, &e))
}

/// `GET /api/executions/{id}`.
pub(crate) async fn get_execution(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    IdSegment(seg): IdSegment,
) -> Result<Json<Execution>, Problem> {
    let id = parse_execution_id("id", &seg)?;
    let exec = state.executions.get(&principal.actor.tenant, &id).await?;
    Ok(Json(exec))
}

/// `POST /api/executions/{id}:{cancel|retry|replay}`.
///
/// Input is checked in the order a client can fix it: route (action suffix), id,
/// `Idempotency-Key`, then the body; only then is the library called.
pub(crate) async fn post_action(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    IdSegment(seg): IdSegment,
    headers: HeaderMap,
    body: Result<ApiJson<ActionBody>, Problem>,
) -> Result<Response, Problem> {
    let Some((raw_id, suffix)) = seg.rsplit_once(':') else {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            "unknown_action",
            "POST needs an action: /api/executions/{id}:cancel, :retry or :replay",
        ));
    };
    let kind: ActionKind = suffix
        .parse()
        .map_err(|e: mc_core::action::UnknownAction| {
            Problem::new(StatusCode::NOT_FOUND, "unknown_action", e.to_string())
                .with_field("action")
        })?;
    let execution_id = parse_execution_id("id", raw_id)?;
    let idempotency_key = idempotency_key(&headers)?;
    let ApiJson(body) = body?;
    let outcome: ActionOutcome = state
        .actions
        .perform(ActionRequest {
            tenant: principal.actor.tenant.clone(),
            execution_id,
            kind,
            actor: principal.actor.clone(),
            reason: body.reason,
            idempotency_key,
            step_up: body.step_up.map(StepUpGrant::new),
        })
        .await?;
    Ok((StatusCode::ACCEPTED, Json(outcome)).into_response())
}

fn idempotency_key(headers: &HeaderMap) -> Result<IdempotencyKey, Problem> {
    let Some(v) = headers.get(IDEMPOTENCY_KEY) else {
        return Err(Problem::bad_request(
            "missing_idempotency_key",
            "the Idempotency-Key header is required on every action request",
        )
        .with_field("Idempotency-Key"));
    };
    let s = v.to_str().map_err(|_| {
        Problem::bad_request("invalid_id", "invalid Idempotency-Key: not visible ASCII")
            .with_field("Idempotency-Key")
    })?;
    IdempotencyKey::new(s).map_err(|e| Problem::bad_id("Idempotency-Key", &e))
}

/// `GET /api/executions/{id}/actions`.
pub(crate) async fn allowed_actions(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    IdSegment(seg): IdSegment,
) -> Result<Json<serde_json::Value>, Problem> {
    let id = parse_execution_id("id", &seg)?;
    let actions = state
        .actions
        .allowed_actions(&principal.actor, &principal.actor.tenant, &id)
        .await?;
    let view = ActionsView {
        execution_id: id,
        actions,
    };
    Ok(Json(serde_json::to_value(view).unwrap_or_default()))
}

/// `GET /api/executions?state=&from=&to=&label=k:v&limit=&cursor=`.
pub(crate) async fn search(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    RawQuery(raw): RawQuery,
) -> Result<Response, Problem> {
    let query = parse_search(raw.as_deref().unwrap_or(""))?;
    let page = state
        .executions
        .search(&principal.actor.tenant, &query)
        .await?;
    Ok(Json(ExecutionPage {
        items: page.items,
        next_cursor: page.next_cursor,
    })
    .into_response())
}

/// Parses the console search parameters; every error names the parameter.
pub(crate) fn parse_search(raw: &str) -> Result<ExecutionQuery, Problem> {
    let bad = |field: &str, reason: String| {
        Problem::bad_request("invalid_query", format!("invalid {field}: {reason}"))
            .with_field(field.to_string())
    };
    let time = |field: &str, v: &str| {
        OffsetDateTime::parse(v, &Rfc3339)
            .map_err(|e| bad(field, format!("{v:?} is not an RFC 3339 timestamp ({e})")))
    };
    let mut q = ExecutionQuery::default();
    let mut seen = std::collections::HashSet::new();
    for (k, v) in form_urlencoded::parse(raw.as_bytes()) {
        if k != "state" && !seen.insert(k.to_string()) {
            return Err(bad(&k, "given more than once".into()));
        }
        match &*k {
            "state" => {
                for s in v.split(',').filter(|s| !s.is_empty()) {
                    let st: ExecutionState =
                        s.parse().map_err(|e: mc_core::execution::UnknownState| {
                            bad("state", e.to_string())
                        })?;
                    if !q.states.contains(&st) {
                        q.states.push(st);
                    }
                }
            }
            "from" => q.created_from = Some(time("from", &v)?),
            "to" => q.created_before = Some(time("to", &v)?),
            "label" => {
                let (key, value) = v
                    .split_once(':')
                    .filter(|(k, _)| !k.is_empty())
                    .ok_or_else(|| bad("label", format!("{v:?} is not key:value")))?;
                q.label = Some((key.to_string(), value.to_string()));
            }
            "limit" => {
                q.limit = v.parse().map_err(|_| {
                    bad(
                        "limit",
                        format!(
                            "{v:?} is not a page size between 1 and {}",
                            ExecutionQuery::MAX_LIMIT
                        ),
                    )
                })?;
                if q.limit == 0 {
                    return Err(bad("limit", "must be at least 1".into()));
                }
            }
            "cursor" => {
                let c = Cursor::from_string(v.to_string());
                c.decode().map_err(|e| store_to_query(&e))?;
                q.cursor = Some(c);
            }
            other => {
                return Err(bad(
                    other,
                    "unknown parameter; expected state, from, to, label, limit, cursor".into(),
                ));
            }
        }
    }
    if let (Some(f), Some(t)) = (q.created_from, q.created_before)
        && f >= t
    {
        return Err(bad("from", "must be before to".into()));
    }
    q.effective_limit().map_err(|e| store_to_query(&e))?;
    Ok(q)
}

/// A store's verdict on a query parameter, as the same `invalid_query` problem.
fn store_to_query(e: &mc_core::StoreError) -> Problem {
    match e {
        mc_core::StoreError::InvalidInput { field, reason } => {
            Problem::bad_request("invalid_query", format!("invalid {field}: {reason}"))
                .with_field(*field)
        }
        other => Problem::from_store(other),
    }
}

/// `POST /api/stepup/challenge`.
pub(crate) async fn stepup_challenge(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    body: Result<ApiJson<ChallengeBody>, Problem>,
) -> Result<Json<serde_json::Value>, Problem> {
    let ApiJson(body) = body?;
    let action: ActionKind = body
        .action
        .parse()
        .map_err(|e: mc_core::action::UnknownAction| {
            Problem::bad_request("invalid_request", e.to_string()).with_field("action")
        })?;
    let execution_id = parse_execution_id("executionId", &body.execution_id)?;
    // A challenge for an execution the tenant does not have is refused up front, with
    // the same 404 a read would give.
    state
        .executions
        .get(&principal.actor.tenant, &execution_id)
        .await?;
    let challenge = state
        .step_up
        .challenge(&principal.actor, action, &execution_id)
        .await?;
    Ok(Json(challenge))
}

/// `POST /api/stepup/verify`.
pub(crate) async fn stepup_verify(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    body: Result<ApiJson<serde_json::Value>, Problem>,
) -> Result<Json<IssuedGrant>, Problem> {
    let ApiJson(answer) = body?;
    Ok(Json(state.step_up.verify(&principal.actor, answer).await?))
}

/// `POST /api/stepup/registration/start`.
pub(crate) async fn stepup_register_start(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    body: Result<ApiJson<serde_json::Value>, Problem>,
) -> Result<Json<serde_json::Value>, Problem> {
    let ApiJson(b) = body?;
    Ok(Json(
        state.step_up.register_start(&principal.actor, b).await?,
    ))
}

/// `POST /api/stepup/registration/finish`.
pub(crate) async fn stepup_register_finish(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    body: Result<ApiJson<serde_json::Value>, Problem>,
) -> Result<Json<serde_json::Value>, Problem> {
    let ApiJson(b) = body?;
    Ok(Json(
        state.step_up.register_finish(&principal.actor, b).await?,
    ))
}

/// Any path no route matches.
pub(crate) async fn route_not_found() -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "route_not_found",
        "no such route; see GET /openapi.json",
    )
}

/// A known path with a method it does not serve.
pub(crate) async fn method_not_allowed() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not serve that method; see GET /openapi.json",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_parameters_are_validated_by_name() {
        let q = parse_search("state=failed,running&state=failed&label=team:pay&limit=10").unwrap();
        assert_eq!(
            q.states,
            vec![ExecutionState::Failed, ExecutionState::Running]
        );
        assert_eq!(q.label, Some(("team".into(), "pay".into())));
        assert_eq!(q.limit, 10);
        for (raw, field) in [
            ("state=done", "state"),
            ("from=yesterday", "from"),
            ("label=nocolon", "label"),
            ("limit=0", "limit"),
            ("limit=501", "limit"),
            ("limit=-1", "limit"),
            ("cursor=zz", "cursor"),
            ("colour=red", "colour"),
            ("limit=1&limit=2", "limit"),
            ("from=2025-01-02T00:00:00Z&to=2025-01-01T00:00:00Z", "from"),
        ] {
            let p = parse_search(raw).unwrap_err();
            assert_eq!(p.status, 400, "{raw}");
            assert_eq!(p.field.as_deref(), Some(field), "{raw}");
        }
    }
}
