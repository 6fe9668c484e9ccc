//! Authentication and scoped authorisation (spec §7 "scoped OAuth").
//!
//! A [`BearerVerifier`] turns the `Authorization: Bearer` token into a [`Principal`]:
//! the mc-core [`Actor`] (subject, tenant, roles) and the token's OAuth scopes. The
//! router runs it as a layer on every `/api` route ([`authenticate`]), so no handler
//! can forget it; the layer also demands [`SCOPE_READ`] for safe methods and
//! [`SCOPE_WRITE`] for everything else. The tenant of every request is the
//! principal's — it never comes from the URL, so a foreign execution id resolves to
//! "not found" (DESIGN.md rule 3).

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use mc_core::Actor;
use sha2::{Digest as _, Sha256};

use crate::problem::Problem;
use crate::state::AppState;

/// Scope needed by every read route (`GET`).
pub const SCOPE_READ: &str = "executions:read";
/// Scope needed by every write route (`POST`: actions and step-up).
pub const SCOPE_WRITE: &str = "executions:write";

/// Who is calling: the actor and the scopes its token carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Subject, tenant and roles.
    pub actor: Actor,
    /// OAuth scopes (`executions:read`, `executions:write`).
    pub scopes: Vec<String>,
}

impl Principal {
    /// Whether the token carries `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// Why a bearer token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The token is unknown, expired or malformed.
    #[error("the bearer token is invalid or expired")]
    InvalidToken,
    /// The identity provider cannot be reached.
    #[error("the identity provider is unavailable: {0}")]
    Unavailable(String),
}

/// Verifies bearer tokens (an OAuth introspection client, a JWT validator, or the
/// static demo map [`StaticTokens`]).
#[async_trait]
pub trait BearerVerifier: Send + Sync {
    /// The principal behind `token`.
    ///
    /// # Errors
    /// [`AuthError::InvalidToken`] for a token it does not accept;
    /// [`AuthError::Unavailable`] when it cannot decide now.
    async fn verify(&self, token: &str) -> Result<Principal, AuthError>;
}

/// A fixed token → principal map, for the demo and tests.
///
/// Tokens are kept only as SHA-256 digests and looked up by digest, so the map
/// never holds a usable token and a lookup's timing depends on the digest, not on
/// how many leading characters of a guess were right.
///
/// ```
/// use mc_core::{Actor, ActorId, TenantId};
/// use mc_http::{BearerVerifier, Principal, StaticTokens, SCOPE_READ};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let actor = Actor::new(ActorId::new("bob@acme").unwrap(), TenantId::new("acme").unwrap(), ["viewer"]);
/// let tokens = StaticTokens::new().with("t0ken", Principal { actor, scopes: vec![SCOPE_READ.into()] });
/// assert!(tokens.verify("t0ken").await.is_ok());
/// assert!(tokens.verify("guess").await.is_err());
/// # });
/// ```
#[derive(Debug, Clone, Default)]
pub struct StaticTokens {
    by_digest: HashMap<[u8; 32], Principal>,
}

impl StaticTokens {
    /// An empty map (every token is refused).
    pub fn new() -> Self {
        StaticTokens::default()
    }

    /// Adds `token` for `principal` (builder style).
    pub fn with(mut self, token: &str, principal: Principal) -> Self {
        self.insert(token, principal);
        self
    }

    /// Adds `token` for `principal`.
    pub fn insert(&mut self, token: &str, principal: Principal) {
        self.by_digest.insert(digest(token), principal);
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[async_trait]
impl BearerVerifier for StaticTokens {
    async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        self.by_digest
            .get(&digest(token))
            .cloned()
            .ok_or(AuthError::InvalidToken)
    }
}

/// Longest accepted bearer token, in bytes (a bound on work per request).
const MAX_TOKEN_LEN: usize = 4096;

/// The authentication layer: verifies the bearer token, checks the scope the
/// method needs and stores the [`Principal`] in the request extensions for the
/// [`Authenticated`] extractor.
///
/// # Errors (as responses)
/// 401 + `WWW-Authenticate: Bearer` for a missing or invalid token; 403
/// `insufficient_scope` for a token without the needed scope; 503 when the
/// verifier is unavailable.
pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let token = match bearer_token(req.headers()) {
        Ok(t) => t,
        Err(p) => return p.into_response(),
    };
    let principal = match state.authenticator.verify(&token).await {
        Ok(p) => p,
        Err(AuthError::InvalidToken) => {
            return Problem::unauthenticated("the bearer token is invalid or expired")
                .into_response();
        }
        Err(e @ AuthError::Unavailable(_)) => {
            return Problem::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "auth_unavailable",
                e.to_string(),
            )
            .into_response();
        }
    };
    let needed = if matches!(*req.method(), Method::GET | Method::HEAD) {
        SCOPE_READ
    } else {
        SCOPE_WRITE
    };
    if !principal.has_scope(needed) {
        return Problem::insufficient_scope(needed).into_response();
    }
    req.extensions_mut().insert(Arc::new(principal));
    next.run(req).await
}

fn bearer_token(headers: &axum::http::HeaderMap) -> Result<String, Problem> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(Problem::missing_token());
    };
    let value = value
        .to_str()
        .map_err(|_| Problem::unauthenticated("the Authorization header is not ASCII"))?;
    let (scheme, token) = value.split_once(' ').ok_or_else(|| {
        Problem::unauthenticated("the Authorization header must be `Bearer <token>`")
    })?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Problem::unauthenticated(
            "only the Bearer authorization scheme is accepted",
        ));
    }
    let token = token.trim();
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(Problem::unauthenticated(
            "the bearer token is empty or too long",
        ));
    }
    Ok(token.to_string())
}

/// Extractor for the principal the [`authenticate`] layer verified.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Arc<Principal>);

impl<S: Send + Sync> FromRequestParts<S> for Authenticated {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Arc<Principal>>()
            .cloned()
            .map(Authenticated)
            // Only reachable if a route was mounted outside the auth layer: refuse
            // rather than serve unauthenticated.
            .ok_or_else(Problem::missing_token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, HeaderValue};

    #[test]
    fn bearer_parsing() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer_token(&h).unwrap_err().status, 401);
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert!(bearer_token(&h).unwrap_err().detail.contains("Bearer"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer  tok "),
        );
        assert_eq!(bearer_token(&h).unwrap(), "tok");
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(bearer_token(&h).unwrap_err().status, 401);
    }
}
