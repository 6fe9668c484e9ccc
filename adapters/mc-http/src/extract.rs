//! Extractors whose rejections are problem documents, so bad input is always a
//! precise 4xx (never axum's plain-text rejections, never 500).

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::problem::Problem;

/// A JSON body: `Content-Type: application/json` required (415), size-limited
/// (413), syntax errors 400, shape errors 422 — each a problem document.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(json_problem(&rejection)),
        }
    }
}

fn json_problem(r: &JsonRejection) -> Problem {
    let text = r.body_text();
    match r {
        JsonRejection::MissingJsonContentType(_) => Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the request body must be JSON sent with Content-Type: application/json",
        ),
        JsonRejection::JsonSyntaxError(_) => Problem::bad_request(
            "malformed_json",
            format!("the body is not valid JSON: {text}"),
        ),
        JsonRejection::JsonDataError(_) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            format!("the JSON body has the wrong shape: {text}"),
        ),
        _ if r.status() == StatusCode::PAYLOAD_TOO_LARGE => Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "the request body exceeds the size limit",
        ),
        _ => Problem::bad_request(
            "unreadable_body",
            format!("the body could not be read: {text}"),
        ),
    }
}

/// The raw `{id}` path segment (percent-decoded); invalid UTF-8 is a 400 naming `id`.
#[derive(Debug, Clone)]
pub struct IdSegment(pub String);

impl<S: Send + Sync> FromRequestParts<S> for IdSegment {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(s)| IdSegment(s))
            .map_err(|e| {
                Problem::bad_request("invalid_id", format!("invalid id: {}", e.body_text()))
                    .with_field("id")
            })
    }
}
