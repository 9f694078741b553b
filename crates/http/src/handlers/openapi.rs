//! `GET /openapi.json`: the OpenAPI 3.1 description of every route, written by hand next to
//! the code and checked against the route table by the router's tests.

use axum::http::header;
use axum::response::IntoResponse;

pub const OPENAPI_JSON: &str = include_str!("../openapi.json");

pub async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON)
}
