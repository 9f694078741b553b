//! The door-wide steps every request goes through, as one tower layer wrapped round each
//! route (and the fallbacks) where the route is known: count the request, refuse a declared
//! `Content-Length` over the limit before any of the body is read, set the body limit that
//! extractors enforce while reading (axum's `DefaultBodyLimit`), and count the answer — as an
//! error when its status is 400 or more, and under the route template and method.
//!
//! Why by hand rather than `axum::middleware::from_fn`: each `from_fn` layer, and each layer
//! added to a router, boxes the request's future and clones a boxed service per request, and
//! a route's counters were looked up by name (two strings built and hashed under a lock) on
//! every request. A worker taking one job at a time makes one small request per job, where
//! that was a measurable share of what the door spent (docs/benchmarks.md). Here the route's
//! counters are resolved once, when the router is built, and the layer adds one box, not four.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, Method};
use axum::response::{IntoResponse, Response};
use omnibus_engine::metrics::{Door, DoorCounters, RouteCounters};
use omnibus_engine::Engine;
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::error::ApiError;

/// What a request and its answer are counted into.
struct Recorder {
    door: Arc<DoorCounters>,
    /// The route's method and counters; `None` for the fallbacks (no route matched).
    route: Option<(Method, Arc<RouteCounters>)>,
    /// A `GET` route also answers `HEAD`, counted under `HEAD`.
    head: Option<Arc<RouteCounters>>,
}

/// Which of the recorder's route counters an answer goes to.
#[derive(Clone, Copy)]
enum Counted {
    Route,
    Head,
    /// No route: a fallback, or the route's own answer to a method it does not serve (405).
    Door,
}

impl Recorder {
    fn which(&self, method: &Method) -> Counted {
        match &self.route {
            Some((verb, _)) if verb == method => Counted::Route,
            Some(_) if method == Method::HEAD && self.head.is_some() => Counted::Head,
            _ => Counted::Door,
        }
    }

    fn answered(&self, which: Counted, status: u16) {
        if status >= 400 {
            self.door.error();
        }
        let counters = match which {
            Counted::Route => self.route.as_ref().map(|(_, counters)| counters),
            Counted::Head => self.head.as_ref(),
            Counted::Door => None,
        };
        if let Some(counters) = counters {
            counters.answered(status);
        }
    }
}

/// The layer: see the module documentation.
#[derive(Clone)]
pub(crate) struct Counting {
    recorder: Arc<Recorder>,
    body_bytes_max: usize,
}

impl Counting {
    /// For the fallbacks: door-wide counting and bounding, no route counters.
    pub(crate) fn door(engine: &Engine, body_bytes_max: usize) -> Counting {
        Counting {
            recorder: Arc::new(Recorder {
                door: engine.metrics().door(Door::Http).clone(),
                route: None,
                head: None,
            }),
            body_bytes_max,
        }
    }

    /// For the route `template` served for `method`, counted under both.
    pub(crate) fn route(
        engine: &Engine,
        body_bytes_max: usize,
        method: Method,
        template: &str,
    ) -> Counting {
        let metrics = engine.metrics();
        let head = (method == Method::GET).then(|| metrics.api_route("HEAD", template));
        let counters = metrics.api_route(method.as_str(), template);
        Counting {
            recorder: Arc::new(Recorder {
                door: metrics.door(Door::Http).clone(),
                route: Some((method, counters)),
                head,
            }),
            body_bytes_max,
        }
    }
}

impl<S> Layer<S> for Counting {
    type Service = CountingService<<DefaultBodyLimit as Layer<S>>::Service>;

    fn layer(&self, inner: S) -> Self::Service {
        CountingService {
            inner: DefaultBodyLimit::max(self.body_bytes_max).layer(inner),
            recorder: self.recorder.clone(),
            body_bytes_max: self.body_bytes_max,
        }
    }
}

#[derive(Clone)]
pub(crate) struct CountingService<S> {
    inner: S,
    recorder: Arc<Recorder>,
    body_bytes_max: usize,
}

impl<S> Service<Request> for CountingService<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = CountingFuture<S::Future>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        self.recorder.door.request();
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        let recorder = self.recorder.clone();
        match declared {
            Some(bytes) if bytes > self.body_bytes_max as u64 => {
                let refusal = ApiError::message_too_large(format!(
                    "request body is {bytes} bytes; the limit is {}",
                    self.body_bytes_max
                ))
                .into_response();
                CountingFuture {
                    future: None,
                    refusal: Some(refusal),
                    recorder,
                    which: Counted::Door,
                }
            }
            _ => CountingFuture {
                which: recorder.which(request.method()),
                future: Some(self.inner.call(request)),
                refusal: None,
                recorder,
            },
        }
    }
}

pin_project! {
    /// The inner service's answer, counted when it is ready; or the refusal of a body
    /// declared too large, which never reached the route.
    pub(crate) struct CountingFuture<F> {
        #[pin]
        future: Option<F>,
        refusal: Option<Response>,
        recorder: Arc<Recorder>,
        which: Counted,
    }
}

impl<F, E> Future for CountingFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let answer = match this.future.as_pin_mut() {
            Some(future) => ready!(future.poll(context)),
            None => Ok(this
                .refusal
                .take()
                .expect("a refused request is polled to its answer once")),
        };
        if let Ok(response) = &answer {
            this.recorder
                .answered(*this.which, response.status().as_u16());
        }
        Poll::Ready(answer)
    }
}
