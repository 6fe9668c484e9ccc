//! Evidence routes (spec §3.2 MC-DISC-1111, §7): the manifest of an execution and
//! the download behind its pre-signed URLs, each access logged to the audit chain.
//!
//! `GET /api/executions/{id}/evidence` calls `mc_evidence::EvidenceService::manifest`
//! (403 when `evidence_v2_enabled` is off, 404 for another tenant's execution).
//! `GET /api/blobs/{key}?expires=…&sig=…` serves the blob a pre-signed URL names
//! (local and in-memory stores; S3 URLs go to S3 directly). It is behind the bearer
//! layer like every `/api` route, so each download is logged with *who* fetched it:
//! the URL must verify (signature, expiry ≤ 10 min) and the key must belong to the
//! caller's tenant.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use mc_core::{BlobError, BlobKey, BlobStore};
use mc_evidence::{AccessLogger, EvidenceError, EvidenceService};

use crate::auth::Authenticated;
use crate::extract::IdSegment;
use crate::problem::Problem;
use crate::state::AppState;

/// What the evidence routes need. `access` must check URLs with the same signer the
/// blob store signs with, and its signer's base must be `{public base}/api/blobs`.
#[derive(Clone)]
pub struct EvidenceApi {
    /// Builds manifests.
    pub service: EvidenceService,
    /// Verifies pre-signed URLs and logs each granted access.
    pub access: AccessLogger,
    /// Where the blobs are read from.
    pub blobs: Arc<dyn BlobStore>,
}

impl std::fmt::Debug for EvidenceApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EvidenceApi").finish_non_exhaustive()
    }
}

fn blob_problem(e: &BlobError) -> Problem {
    match e {
        BlobError::NotFound { .. } => {
            Problem::new(StatusCode::NOT_FOUND, "blob_not_found", e.to_string())
        }
        BlobError::InvalidKey { .. } => {
            Problem::bad_request("invalid_id", e.to_string()).with_field("key")
        }
        BlobError::Unavailable(_) => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "blob_store_unavailable",
            e.to_string(),
        ),
        _ => {
            tracing::error!(error = %e, "blob store failure");
            Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "blob_store_error",
                "the blob store failed",
            )
        }
    }
}

impl From<EvidenceError> for Problem {
    fn from(e: EvidenceError) -> Self {
        match &e {
            EvidenceError::FlagDisabled { .. } => {
                Problem::new(StatusCode::FORBIDDEN, "flag_disabled", e.to_string())
            }
            EvidenceError::ExecutionNotFound { .. } => {
                Problem::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
            }
            EvidenceError::AccessRefused(_) => {
                Problem::new(StatusCode::FORBIDDEN, "access_refused", e.to_string())
            }
            EvidenceError::InvalidInput { field, .. } => {
                Problem::bad_request("invalid_request", e.to_string()).with_field(*field)
            }
            EvidenceError::Store(s) => Problem::from_store(s),
            EvidenceError::Blob(b) | EvidenceError::Fetch { source: b, .. } => {
                let mut p = blob_problem(b);
                // A blob vanishing while a manifest is built is a race, not a 404
                // of the manifest: ask the client to retry.
                if p.status == 404 {
                    p = Problem::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "blob_changed",
                        e.to_string(),
                    )
                    .with_header(header::RETRY_AFTER, "1");
                }
                p
            }
            _ => {
                tracing::error!(error = %e, "evidence failure");
                Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "evidence_error",
                    "building the evidence failed",
                )
            }
        }
    }
}

fn not_configured() -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "not_configured",
        "evidence is not configured on this server",
    )
}

/// `GET /api/executions/{id}/evidence`.
pub(crate) async fn manifest(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    IdSegment(seg): IdSegment,
) -> Result<Response, Problem> {
    let id = mc_core::ExecutionId::new(&seg).map_err(|e| Problem::bad_id("id", &e))?;
    let api = state.evidence.as_ref().ok_or_else(not_configured)?;
    let signed = api.service.manifest(&principal.actor.tenant, &id).await?;
    Ok(axum::Json(signed).into_response())
}

/// `GET /api/blobs/{*key}?expires=…&sig=…`.
pub(crate) async fn download(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(key): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, Problem> {
    let api = state.evidence.as_ref().ok_or_else(not_configured)?;
    let parsed = BlobKey::new(key.clone()).map_err(|e| blob_problem(&e))?;
    // Another tenant's blob is "not found" before anything is verified or logged.
    if parsed.tenant().as_ref() != Some(&principal.actor.tenant) {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            "blob_not_found",
            format!("blob {key} not found"),
        ));
    }
    let grant = api
        .access
        .authorize_request(
            &key,
            query.as_deref().unwrap_or(""),
            &principal.actor.sub,
            None,
        )
        .await?;
    let stream = api
        .blobs
        .get_stream(&grant.key)
        .await
        .map_err(|e| blob_problem(&e))?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                mc_evidence::manifest::media_type_for(grant.key.name()),
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}
