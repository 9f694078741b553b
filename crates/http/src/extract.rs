//! axum's extractors, wrapped so that a rejection becomes an [`ApiError`] JSON body instead of
//! axum's plain-text one.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::Json;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON request body (requires `Content-Type: application/json`; bounded by the router's
/// body limit).
pub struct JsonBody<T>(pub T);

impl<T, S> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        if !plainly_json(request.headers()) {
            // Anything but the plain type: axum's own checks and rejections.
            let Json(value) = Json::<T>::from_request(request, state).await?;
            return Ok(JsonBody(value));
        }
        let bytes = Bytes::from_request(request, state).await?;
        // Parsed directly: axum's `Json` runs every body through `serde_path_to_error`, which
        // was half of parsing a worker's small request. Only a body that fails is parsed
        // again that way, for the same message (with the path of the bad field).
        match serde_json::from_slice(&bytes) {
            Ok(value) => Ok(JsonBody(value)),
            Err(_) => {
                let Json(value) = Json::<T>::from_bytes(&bytes)?;
                Ok(JsonBody(value))
            }
        }
    }
}

/// Whether `Content-Type` is exactly `application/json` (any case, optionally with
/// parameters such as a charset) — what every client of the hot endpoints sends. Other JSON
/// types (`application/problem+json`, …) and missing or wrong types go through axum's checks.
fn plainly_json(headers: &header::HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return false;
    };
    let essence = value.as_bytes().split(|byte| *byte == b';').next();
    essence.is_some_and(|essence| {
        essence
            .trim_ascii()
            .eq_ignore_ascii_case(b"application/json")
    })
}

/// A JSON body that may be left out entirely: `None` when the request has no
/// `Content-Type` and no body; otherwise exactly like [`JsonBody`].
pub struct OptionalJsonBody<T>(pub Option<T>);

impl<T, S> FromRequest<S> for OptionalJsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        if request.headers().contains_key(header::CONTENT_TYPE) {
            let JsonBody(value) = JsonBody::<T>::from_request(request, state).await?;
            return Ok(OptionalJsonBody(Some(value)));
        }
        let bytes = Bytes::from_request(request, state).await?;
        if bytes.is_empty() {
            return Ok(OptionalJsonBody(None));
        }
        Err(ApiError::Rejected {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code: omnibus_types::ErrorCode::BadRequest,
            message: "a request body must be sent with Content-Type: application/json".into(),
        })
    }
}

/// Path parameters (`{stream}`, `{partition}`), percent-decoded.
pub struct PathParams<T>(pub T);

impl<T, S> FromRequestParts<S> for PathParams<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(value) = Path::<T>::from_request_parts(parts, state).await?;
        Ok(PathParams(value))
    }
}

/// The query string.
pub struct QueryParams<T>(pub T);

impl<T, S> FromRequestParts<S> for QueryParams<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Query(value) = Query::<T>::from_request_parts(parts, state).await?;
        Ok(QueryParams(value))
    }
}

/// Whether the client sent `Prefer: return=minimal` (RFC 7240): it only needs to know that a
/// request succeeded, not the record it changed, so the answer can skip rendering it. Any other
/// preference (or none) keeps the full answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreferMinimal(pub bool);

/// The header a minimal answer carries, telling the client its preference was honoured.
pub const PREFERENCE_APPLIED: &str = "preference-applied";

impl<S> FromRequestParts<S> for PreferMinimal
where
    S: Send + Sync,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Self, std::convert::Infallible> {
        Ok(PreferMinimal(prefers_minimal(&parts.headers)))
    }
}

/// True when any `Prefer` header lists `return=minimal` (names and values are case-insensitive;
/// preferences are separated by commas and may carry `;` parameters).
fn prefers_minimal(headers: &header::HeaderMap) -> bool {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|preference| preference.split(';').next().unwrap_or_default())
        .any(|preference| {
            let mut parts = preference.splitn(2, '=');
            let name = parts.next().unwrap_or_default().trim();
            let value = parts.next().unwrap_or_default().trim().trim_matches('"');
            name.eq_ignore_ascii_case("return") && value.eq_ignore_ascii_case("minimal")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn minimal(values: &[&str]) -> bool {
        let mut headers = header::HeaderMap::new();
        for value in values {
            headers.append("prefer", HeaderValue::from_str(value).unwrap());
        }
        prefers_minimal(&headers)
    }

    async fn parse(content_type: Option<&str>, body: &'static str) -> Result<Sample, ApiError> {
        let mut request = Request::builder().method("POST").uri("/");
        if let Some(content_type) = content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        let request = request.body(axum::body::Body::from(body)).unwrap();
        JsonBody::<Sample>::from_request(request, &())
            .await
            .map(|JsonBody(sample)| sample)
    }

    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        inner: Inner,
    }

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Inner {
        count: u32,
    }

    #[tokio::test]
    async fn a_json_body_parses_directly_and_a_bad_one_is_refused_as_axum_would() {
        let parsed = parse(Some("application/json"), r#"{"inner":{"count":3}}"#).await;
        assert_eq!(
            parsed.unwrap(),
            Sample {
                inner: Inner { count: 3 }
            }
        );
        let parsed = parse(
            Some("Application/JSON; charset=utf-8"),
            r#"{"inner":{"count":4}}"#,
        );
        assert_eq!(parsed.await.unwrap().inner.count, 4);
        let parsed = parse(Some("application/vnd.api+json"), r#"{"inner":{"count":5}}"#);
        assert_eq!(parsed.await.unwrap().inner.count, 5);
        // The message names the field that was wrong, as axum's extractor does.
        let error = parse(Some("application/json"), r#"{"inner":{"count":"x"}}"#)
            .await
            .unwrap_err();
        assert!(error.to_string().contains("inner.count"), "{error}");
        let direct = Json::<Sample>::from_bytes(br#"{"inner":{"count":"x"}}"#)
            .map(|_| ())
            .unwrap_err();
        assert_eq!(error.to_string(), ApiError::from(direct).to_string());
        let error = parse(Some("text/plain"), r#"{"inner":{"count":3}}"#)
            .await
            .unwrap_err();
        assert_eq!(error.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert!(parse(None, "{}").await.is_err());
    }

    #[test]
    fn only_return_minimal_asks_for_the_minimal_answer() {
        assert!(minimal(&["return=minimal"]));
        assert!(minimal(&["Return = \"Minimal\""]));
        assert!(minimal(&["respond-async, return=minimal; x=1"]));
        assert!(minimal(&["wait=5", "return=minimal"]));
        assert!(!minimal(&[]));
        assert!(!minimal(&["return=representation"]));
        assert!(!minimal(&["minimal"]));
        assert!(!minimal(&["returns=minimal"]));
    }
}
