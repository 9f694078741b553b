//! The built-in web dashboard: hand-written HTML, CSS and JavaScript modules embedded in the
//! binary (`crates/http/assets/dashboard/`), served on the HTTP port beside the API.
//!
//! What is served where:
//! - `/` and every page path under `/ui/` (see [`is_page`]) answer the same `index.html`; the
//!   page's script reads `location.pathname` and draws that page, so a page can be bookmarked
//!   and reloaded. A path under `/ui/` that names no page answers a 404 HTML page, with a
//!   real 404 status.
//! - `/ui/assets/<file>` answers an embedded asset with its content type. There is no build
//!   step, so asset names carry no content hash: every asset is sent with an `ETag` (a hash
//!   of its bytes) and `Cache-Control: no-cache`, so a browser revalidates it (304, no body)
//!   and never runs a stale script after an upgrade.
//! - Nothing here shadows the API: `/v1`, `/metrics`, `/health` and `/openapi.json` are never
//!   UI paths. A browser asking for an unknown path outside `/v1` (its `Accept` names HTML)
//!   gets the 404 page instead of the API's JSON error ([`not_found_page_for_browser`]).
//!
//! Every answer carries a Content-Security-Policy that allows only this origin's scripts,
//! styles and API (no inline script, no third-party CDN: the broker runs on machines without
//! internet), and `X-Content-Type-Options: nosniff`.

use std::sync::LazyLock;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};

use crate::extract::PathParams;
use crate::router::AppState;

/// `data:` images only for the inline favicon; `connect-src 'self'` covers fetch and SSE.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

const INDEX_HTML: &[u8] = include_bytes!("../assets/dashboard/index.html");
const NOT_FOUND_HTML: &[u8] = include_bytes!("../assets/dashboard/404.html");

struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $content_type:expr) => {
        Asset {
            name: $name,
            content_type: $content_type,
            bytes: include_bytes!(concat!("../assets/dashboard/", $name)),
        }
    };
}

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";

/// Every file under `/ui/assets/`.
const ASSETS: &[Asset] = &[
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("app.js", JAVASCRIPT),
    asset!("api.js", JAVASCRIPT),
    asset!("charts.js", JAVASCRIPT),
    asset!("format.js", JAVASCRIPT),
    asset!("streams.js", JAVASCRIPT),
    asset!("queues.js", JAVASCRIPT),
    asset!("jobs.js", JAVASCRIPT),
    asset!("alerts.js", JAVASCRIPT),
    asset!("icon.svg", "image/svg+xml"),
];

/// The ETag of each asset, by position in [`ASSETS`]; computed once, on first use.
static ASSET_ETAGS: LazyLock<Vec<HeaderValue>> =
    LazyLock::new(|| ASSETS.iter().map(|asset| etag_of(asset.bytes)).collect());

/// A strong ETag: FNV-1a 64 of the bytes. Not a security measure, only a change detector.
fn etag_of(bytes: &[u8]) -> HeaderValue {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    HeaderValue::from_str(&format!("\"{hash:016x}-{}\"", bytes.len()))
        .expect("hex digits are a valid header value")
}

/// The dashboard's routes (all `GET`), added to the API router by [`crate::router`].
pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/", get(index)),
        ("/ui", get(index)),
        ("/ui/", get(index)),
        ("/ui/assets/{name}", get(asset)),
        ("/ui/{*page}", get(page)),
    ]
}

/// Whether `path` (after `/ui/`) names a page the dashboard draws. Must match the route table
/// of `assets/dashboard/app.js`.
pub fn is_page(path: &str) -> bool {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    if segments.iter().any(|segment| segment.is_empty()) {
        return false;
    }
    matches!(
        segments.as_slice(),
        ["overview"]
            | ["streams"]
            | ["streams", _]
            | ["groups"]
            | ["groups", _]
            | ["queues"]
            | ["queues", _]
            | ["queues", _, "dlq"]
            | ["queues", _, "jobs", _]
            | ["alerts"]
    )
}

async fn index() -> Response {
    html(StatusCode::OK, INDEX_HTML)
}

async fn page(PathParams(page): PathParams<String>) -> Response {
    if is_page(&page) {
        html(StatusCode::OK, INDEX_HTML)
    } else {
        not_found_page()
    }
}

async fn asset(PathParams(name): PathParams<String>, headers: HeaderMap) -> Response {
    let Some(position) = ASSETS.iter().position(|asset| asset.name == name) else {
        return not_found_page();
    };
    let asset = &ASSETS[position];
    let etag = ASSET_ETAGS[position].clone();
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|sent| sent.as_bytes() == etag.as_bytes());
    let mut response = if unchanged {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            )],
            asset.bytes,
        )
            .into_response()
    };
    let response_headers = response.headers_mut();
    response_headers.insert(header::ETAG, etag);
    response_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    secure(response_headers);
    response
}

/// The 404 page (HTML, status 404).
pub fn not_found_page() -> Response {
    html(StatusCode::NOT_FOUND, NOT_FOUND_HTML)
}

/// The 404 page when a browser (its `Accept` names `text/html`) asks for a path outside the
/// API; `None` for API paths and API clients, which keep the JSON error.
pub fn not_found_page_for_browser(path: &str, headers: &HeaderMap) -> Option<Response> {
    let api = ["/v1", "/metrics", "/health", "/openapi.json"]
        .iter()
        .any(|prefix| path == *prefix || path.starts_with(&format!("{prefix}/")));
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    (!api && wants_html).then(not_found_page)
}

fn html(status: StatusCode, body: &'static [u8]) -> Response {
    let mut response = (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        body,
    )
        .into_response();
    let headers = response.headers_mut();
    // The page is small and names its assets without a hash: always revalidate.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    secure(headers);
    response
}

fn secure(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pages_of_the_script_route_table_are_pages_and_nothing_else_is() {
        for page in [
            "overview",
            "streams",
            "streams/orders",
            "groups/billing",
            "queues",
            "queues/emails/",
            "queues/emails/dlq",
            "queues/emails/jobs/17",
            "alerts",
        ] {
            assert!(is_page(page), "{page}");
        }
        for path in [
            "",
            "nope",
            "streams/a/b",
            "queues/emails/jobs",
            "queues//dlq",
            "alerts/x",
            "assets",
        ] {
            assert!(!is_page(path), "{path}");
        }
    }

    /// The page paths of `app.js`'s `ROUTES` table, with each `:param` filled in.
    fn script_routes() -> Vec<String> {
        let script = include_str!("../assets/dashboard/app.js");
        let table = script
            .split("const ROUTES = [")
            .nth(1)
            .and_then(|rest| rest.split("\n];").next())
            .expect("app.js has a ROUTES table");
        table
            .lines()
            .filter_map(|line| line.trim().strip_prefix("[[")?.split(']').next())
            .map(|pattern| {
                pattern
                    .split(',')
                    .map(|part| part.trim().trim_matches('\''))
                    .filter(|part| !part.is_empty())
                    .map(|part| part.trim_start_matches(':'))
                    .collect::<Vec<_>>()
                    .join("/")
            })
            .collect()
    }

    #[test]
    fn every_route_of_the_script_is_a_page_of_the_server() {
        let routes = script_routes();
        assert!(routes.len() >= 10, "{routes:?}");
        for route in routes.iter().filter(|route| !route.is_empty()) {
            assert!(is_page(route), "app.js routes {route}; is_page refuses it");
        }
    }

    #[test]
    fn every_asset_file_is_embedded_with_its_content_type() {
        let script = include_str!("../assets/dashboard/app.js");
        assert!(script.contains("./streams.js"), "app.js imports the pages");
        for asset in ASSETS {
            assert!(!asset.bytes.is_empty(), "{} is empty", asset.name);
            let extension = asset.name.rsplit('.').next().unwrap_or_default();
            let expected = match extension {
                "js" => "text/javascript",
                "css" => "text/css",
                "svg" => "image/svg+xml",
                other => panic!("no content type known for .{other}"),
            };
            assert!(asset.content_type.starts_with(expected), "{}", asset.name);
        }
        let index = String::from_utf8_lossy(INDEX_HTML);
        assert!(index.contains("/ui/assets/app.js"));
        assert!(
            !index.contains("http://") && !index.contains("https://"),
            "no CDN"
        );
    }
}
