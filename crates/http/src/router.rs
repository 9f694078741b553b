//! The route table, the body limit and the JSON fallbacks for unknown routes and methods.
//!
//! [`routes`] is the one list of routes: the router is built from it, and a test checks that
//! every entry (and nothing else) is described in `openapi.json`.

use std::sync::Arc;

use std::ops::Deref;

use axum::handler::Handler;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Router;
use omnibus_engine::Engine;
use tokio::sync::{watch, Semaphore};

use crate::counting::Counting;
use crate::error::ApiError;
use crate::handlers::{
    alerts, dead_letters, events, fetch, groups, health, jobs, messages, metrics, offsets, openapi,
    overview, publish, queues, streams,
};
use crate::HttpConfig;

/// What every handler can reach: one `Arc`, so that handing it to a handler (once per
/// request) is one reference count, not one per field.
#[derive(Clone)]
pub struct AppState(Arc<AppShared>);

impl Deref for AppState {
    type Target = AppShared;

    fn deref(&self) -> &AppShared {
        &self.0
    }
}

pub struct AppShared {
    pub engine: Arc<Engine>,
    pub config: HttpConfig,
    /// One permit per open event stream, `config.sse_streams_max` in all.
    pub sse_streams: Arc<Semaphore>,
    /// Becomes `true` when the server begins shutting down, which ends open event streams.
    pub closing: watch::Receiver<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    Post,
    Patch,
    Delete,
}

impl Verb {
    fn method(self) -> Method {
        match self {
            Verb::Get => Method::GET,
            Verb::Post => Method::POST,
            Verb::Patch => Method::PATCH,
            Verb::Delete => Method::DELETE,
        }
    }

    fn filter(self) -> MethodFilter {
        match self {
            Verb::Get => MethodFilter::GET,
            Verb::Post => MethodFilter::POST,
            Verb::Patch => MethodFilter::PATCH,
            Verb::Delete => MethodFilter::DELETE,
        }
    }

    /// The operation key OpenAPI uses under a path.
    #[cfg(test)]
    pub fn openapi_key(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::Post => "post",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
        }
    }
}

pub struct Route {
    pub verb: Verb,
    pub path: &'static str,
    handler: MethodRouter<AppState>,
}

fn route<H, T>(verb: Verb, path: &'static str, handler: H) -> Route
where
    H: Handler<T, AppState>,
    T: 'static,
{
    Route {
        verb,
        path,
        handler: on(verb.filter(), handler),
    }
}

/// Every route the API serves.
pub fn routes() -> Vec<Route> {
    use Verb::{Delete, Get, Patch, Post};
    vec![
        route(Get, "/health", health::health),
        route(Get, "/openapi.json", openapi::openapi),
        route(Get, "/v1/streams", streams::list_streams),
        route(Post, "/v1/streams", streams::create_stream),
        route(Get, "/v1/streams/{stream}", streams::get_stream),
        route(Patch, "/v1/streams/{stream}", streams::alter_stream),
        route(Delete, "/v1/streams/{stream}", streams::delete_stream),
        route(
            Post,
            "/v1/streams/{stream}/records",
            publish::publish_to_stream,
        ),
        route(
            Post,
            "/v1/subjects/{subject}/records",
            publish::publish_to_subject,
        ),
        route(
            Get,
            "/v1/streams/{stream}/partitions/{partition}/records",
            fetch::fetch_records,
        ),
        route(
            Get,
            "/v1/streams/{stream}/partitions/{partition}/offsets",
            offsets::resolve_offset,
        ),
        route(Get, "/v1/groups", groups::list_groups),
        route(Post, "/v1/groups/{group}/offsets", groups::commit_offsets),
        route(Get, "/v1/groups/{group}/offsets", groups::committed_offsets),
        route(Get, "/v1/groups/{group}/lag", groups::group_lag),
        route(Get, "/v1/queues", queues::list_queues),
        route(Post, "/v1/queues", queues::create_queue),
        route(Get, "/v1/queues/{queue}", queues::get_queue),
        route(Delete, "/v1/queues/{queue}", queues::delete_queue),
        route(Post, "/v1/queues/{queue}/pause", queues::pause_queue),
        route(Post, "/v1/queues/{queue}/resume", queues::resume_queue),
        route(Post, "/v1/queues/{queue}/purge", queues::purge_queue),
        route(Post, "/v1/queues/{queue}/messages", messages::enqueue),
        route(Post, "/v1/queues/{queue}/receive", messages::receive),
        route(Post, "/v1/queues/{queue}/messages/{id}/ack", messages::ack),
        route(
            Post,
            "/v1/queues/{queue}/messages/{id}/nack",
            messages::nack,
        ),
        route(
            Post,
            "/v1/queues/{queue}/messages/{id}/extend",
            messages::extend,
        ),
        route(
            Post,
            "/v1/queues/{queue}/messages/{id}/term",
            messages::term,
        ),
        route(
            Get,
            "/v1/queues/{queue}/dlq",
            dead_letters::list_dead_letters,
        ),
        route(
            Post,
            "/v1/queues/{queue}/dlq/redrive",
            dead_letters::redrive,
        ),
        route(Post, "/v1/queues/{queue}/jobs", jobs::enqueue_jobs),
        route(Get, "/v1/queues/{queue}/jobs", jobs::list_jobs),
        route(Post, "/v1/queues/{queue}/jobs/fetch", jobs::fetch_jobs),
        route(
            Post,
            "/v1/queues/{queue}/jobs/complete",
            jobs::complete_jobs,
        ),
        route(Get, "/v1/queues/{queue}/jobs/{id}", jobs::get_job),
        route(
            Post,
            "/v1/queues/{queue}/jobs/{id}/progress",
            jobs::job_progress,
        ),
        route(
            Post,
            "/v1/queues/{queue}/jobs/{id}/complete",
            jobs::complete_job,
        ),
        route(Post, "/v1/queues/{queue}/jobs/{id}/fail", jobs::fail_job),
        route(
            Post,
            "/v1/queues/{queue}/jobs/{id}/cancel",
            jobs::cancel_job,
        ),
        route(
            Get,
            "/v1/queues/{queue}/jobs/{id}/events",
            events::job_events,
        ),
        route(Get, "/v1/queues/{queue}/events", events::queue_events),
        // The dashboard's additions (issue 15).
        route(Get, "/v1/overview", overview::overview),
        route(Post, "/v1/queues/{queue}/jobs/{id}/retry", jobs::retry_job),
        route(
            Post,
            "/v1/queues/{queue}/dlq/{offset}/redrive",
            dead_letters::redrive_one,
        ),
        route(Get, "/v1/alerts", alerts::list_alerts),
        route(Get, "/v1/alerts/rules", alerts::list_rules),
        route(Post, "/v1/alerts/rules", alerts::put_rule),
        route(Delete, "/v1/alerts/rules/{name}", alerts::delete_rule),
        route(Get, "/v1/alerts/webhooks", alerts::list_webhooks),
        route(Get, "/metrics", metrics::metrics),
    ]
}

/// The API as an axum router, ready for [`axum::serve()`]. Its event streams end only when
/// their client leaves (or a job's stream reaches the job's end); [`crate::serve`] also ends
/// them at shutdown.
pub fn router(engine: Arc<Engine>, config: HttpConfig) -> Router {
    // The sender is dropped at once: nothing will ever signal `closing`.
    let (_, closing) = watch::channel(false);
    router_closing_on(engine, config, closing)
}

/// The router, with event streams ending once `closing` becomes `true`.
pub fn router_closing_on(
    engine: Arc<Engine>,
    config: HttpConfig,
    closing: watch::Receiver<bool>,
) -> Router {
    let body_bytes_max = config.body_bytes_max;
    let door = Counting::door(&engine, body_bytes_max);
    let count =
        |verb: Verb, path: &str| Counting::route(&engine, body_bytes_max, verb.method(), path);
    let mut router = Router::new();
    for route in routes() {
        let counting = count(route.verb, route.path);
        router = router.route(route.path, route.handler.layer(counting));
    }
    // The web UI at `/` and `/ui/...`; its paths never overlap the API's.
    for (path, handler) in crate::dashboard::routes() {
        router = router.route(path, handler.layer(count(Verb::Get, path)));
    }
    let state = AppState(Arc::new(AppShared {
        engine,
        config,
        sse_streams: Arc::new(Semaphore::new(
            config.sse_streams_max.min(Semaphore::MAX_PERMITS),
        )),
        closing,
    }));
    router
        // Must come after the routes: it applies to the routes present when called. A
        // route's `Counting` layer sees the 405 too, and counts it for the door alone.
        .method_not_allowed_fallback(method_not_allowed.layer(door.clone()))
        .fallback(route_not_found.layer(door))
        .with_state(state)
}

async fn route_not_found(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    // A browser following a stale link gets the dashboard's 404 page, an API client JSON.
    if let Some(page) = crate::dashboard::not_found_page_for_browser(uri.path(), &headers) {
        return page;
    }
    ApiError::RouteNotFound {
        method,
        path: uri.path().to_owned(),
    }
    .into_response()
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed {
        method,
        path: uri.path().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::handlers::openapi::OPENAPI_JSON;

    fn document() -> serde_json::Value {
        serde_json::from_str(OPENAPI_JSON).expect("openapi.json is JSON")
    }

    #[test]
    fn openapi_document_is_version_3_1() {
        let document = document();
        let version = document["openapi"].as_str().expect("openapi is a string");
        assert!(version.starts_with("3.1"), "{version}");
        assert!(document["components"]["schemas"]["Error"].is_object());
    }

    #[test]
    fn every_route_is_described_in_openapi_and_nothing_else_is() {
        let document = document();
        let paths = document["paths"].as_object().expect("paths is an object");
        let routed: BTreeSet<(String, &str)> = routes()
            .iter()
            .map(|route| (route.path.to_owned(), route.verb.openapi_key()))
            .collect();
        for (path, verb) in &routed {
            assert!(
                paths.get(path).and_then(|item| item.get(*verb)).is_some(),
                "{verb} {path} is routed but not in openapi.json"
            );
        }
        let mut described = BTreeSet::new();
        for (path, item) in paths {
            for verb in ["get", "post", "put", "patch", "delete", "head", "options"] {
                if item.get(verb).is_some() {
                    described.insert((path.clone(), verb));
                }
            }
        }
        assert_eq!(
            described, routed,
            "openapi.json describes routes that do not exist"
        );
    }

    #[test]
    fn every_operation_documents_its_errors_with_the_error_schema() {
        let document = document();
        let paths = document["paths"].as_object().unwrap();
        for (path, item) in paths {
            for (verb, operation) in item.as_object().unwrap() {
                if verb == "parameters" {
                    continue;
                }
                let responses = operation["responses"].as_object().unwrap();
                assert!(
                    responses.contains_key("default"),
                    "{verb} {path} has no default (error) response"
                );
            }
        }
    }
}
