//! # mc-http — the console's HTTP API (spec §5.1)
//!
//! An axum [`Router`] over `mc-actions` and `mc-core`:
//!
//! | method | path | scope | what |
//! |---|---|---|---|
//! | `POST` | `/api/executions/{id}:cancel` \| `:retry` \| `:replay` | `executions:write` | the action → **202** + `ActionOutcome` |
//! | `GET` | `/api/executions/{id}` | `executions:read` | one execution |
//! | `GET` | `/api/executions?state=&from=&to=&label=k:v&limit=&cursor=` | `executions:read` | console search |
//! | `GET` | `/api/executions/{id}/actions` | `executions:read` | the allowed-actions view |
//! | `GET` | `/api/executions/{id}/evidence` | `executions:read` | evidence manifest (digests, signed URLs) |
//! | `GET` | `/api/blobs/{key}?expires=&sig=` | `executions:read` | pre-signed download, access audited |
//! | `GET` | `/api/retention`, `/api/retention/{kind}` | `executions:read` | the tenant's retention rules and overrides |
//! | `PUT` | `/api/retention/{kind}` | `executions:write` + `retention_admin` role | set or remove an override (audited, `If-Match`) |
//! | `POST` | `/api/stepup/challenge`, `/api/stepup/verify` | `executions:write` | step-up ceremony → grant |
//! | `POST` | `/api/stepup/registration/start`, `…/finish` | `executions:write` | authenticator enrolment |
//! | `GET` | `/openapi.json` | — | the OpenAPI 3.1 document |
//!
//! Cross-cutting concerns are layers, not handler code: bearer authentication and
//! scopes ([`auth`]), a body limit, one log line per request. Every error is an
//! RFC 9457 `application/problem+json` document ([`Problem`]) with a stable `code`;
//! a missing step-up grant is a 401 with an RFC 9470
//! `WWW-Authenticate: Bearer error="insufficient_user_authentication"` header.
//! Handlers hold no business rule: guards, idempotency and audit are `mc-actions`'.
//!
//! ```
//! use std::sync::Arc;
//! use mc_actions::{ActionService, HmacStepUp};
//! use mc_core::*;
//! use mc_http::{router, AppState, HmacIssuer, Principal, StaticTokens, SCOPE_READ, SCOPE_WRITE};
//!
//! let store = Arc::new(MemoryStore::new());
//! let clock: Arc<dyn Clock> = Arc::new(SystemClock);
//! let hmac = Arc::new(HmacStepUp::new(b"a demo secret of 32 bytes.......".to_vec()));
//! let actions = ActionService::new(store.clone(), Arc::new(MemoryFlagStore::new()),
//!     hmac.clone(), clock.clone());
//! let alice = Actor::new(ActorId::new("alice@acme").unwrap(), TenantId::new("acme").unwrap(), ["operator"]);
//! let tokens = StaticTokens::new().with("alice-token",
//!     Principal { actor: alice, scopes: vec![SCOPE_READ.into(), SCOPE_WRITE.into()] });
//! let app: axum::Router = router(AppState::new(Arc::new(actions), store,
//!     Arc::new(tokens), Arc::new(HmacIssuer::new(hmac, clock))));
//! // axum::serve(tokio::net::TcpListener::bind("127.0.0.1:8080").await?, app).await?;
//! # drop(app);
//! ```
//!
//! Modules: [`auth`] (bearer verifier, scopes), [`evidence`] (manifest and download),
//! [`retention`] (retention overrides), [`stepup`] (the ceremony trait and
//! the demo issuer), [`problem`] (error → status mapping), [`openapi`] (the document),
//! and with feature `webauthn` the passkey ceremony `webauthn::WebauthnIssuer`.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod auth;
pub mod evidence;
mod extract;
pub mod openapi;
pub mod problem;
pub mod retention;
mod routes;
mod state;
pub mod stepup;
#[cfg(feature = "webauthn")]
pub mod webauthn;

use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};

pub use auth::{
    AuthError, Authenticated, BearerVerifier, Principal, SCOPE_READ, SCOPE_WRITE, StaticTokens,
};
pub use evidence::EvidenceApi;
pub use problem::{PROBLEM_JSON, Problem};
pub use retention::{RETENTION_ADMIN_ROLE, RetentionApi};
pub use routes::IDEMPOTENCY_KEY;
pub use state::{AppState, DEFAULT_BODY_LIMIT};
pub use stepup::{HmacIssuer, IssuedGrant, StepUpIssueError, StepUpIssuer};
#[cfg(feature = "webauthn")]
pub use webauthn::WebauthnIssuer;

/// The API router (see the crate docs for the route table).
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/api/executions", get(routes::search))
        .route(
            "/api/executions/{id}",
            get(routes::get_execution).post(routes::post_action),
        )
        .route("/api/executions/{id}/actions", get(routes::allowed_actions))
        .route("/api/executions/{id}/evidence", get(evidence::manifest))
        .route("/api/blobs/{*key}", get(evidence::download))
        .route("/api/retention", get(retention::list))
        .route(
            "/api/retention/{kind}",
            get(retention::get_kind).put(retention::put_kind),
        )
        .route("/api/stepup/challenge", post(routes::stepup_challenge))
        .route("/api/stepup/verify", post(routes::stepup_verify))
        .route(
            "/api/stepup/registration/start",
            post(routes::stepup_register_start),
        )
        .route(
            "/api/stepup/registration/finish",
            post(routes::stepup_register_finish),
        )
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ));
    Router::new()
        .merge(api)
        .route(
            "/openapi.json",
            get(|| async { axum::Json(openapi::openapi_document()) }),
        )
        .fallback(routes::route_not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(DefaultBodyLimit::max(state.body_limit))
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

/// One line per request: method, path (no query string — it may carry cursors),
/// status and latency.
async fn log_request(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let started = Instant::now();
    let response = next.run(req).await;
    tracing::info!(
        target: "mc_http::access",
        %method,
        path = %path,
        status = response.status().as_u16(),
        latency_ms = (started.elapsed().as_secs_f64() * 1e6).round() / 1e3,
        "request"
    );
    response
}
