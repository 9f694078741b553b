//! A small typed client for the broker's HTTP API: one method per endpoint, answers decoded
//! into the shapes in [`super::wire`], and the server's `{"error":{"code","message"}}` turned
//! into a [`ClientError`] that prints as `code: message`.

use std::fmt;
use std::time::Duration;

use omnibus_engine::{OffsetCommit, StreamSpec};
use reqwest::{Method, RequestBuilder, Response, Url};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::cli::wire::{
    CommitBody, Committed, CommittedAnswer, FetchPage, FetchParams, OffsetAnswer, OutgoingRecord,
    Position, PublishAnswer, PublishBody, StreamList, StreamSummary, Target,
};

const CONNECT_TIMEOUT_MS: u64 = 10_000;
/// Ordinary calls are quick; this only stops a client from hanging on a wedged server.
const REQUEST_TIMEOUT_MS: u64 = 120_000;
/// Added to a long poll's own wait so the poll can expire server-side first.
pub(super) const LONG_POLL_MARGIN_MS: u64 = 30_000;
/// Longest error body we read or quote; a proxy's HTML error page need not be shown in full.
const ERROR_BODY_BYTES_MAX: usize = 64 * 1024;
const ERROR_TEXT_CHARS_MAX: usize = 300;

#[derive(Debug)]
pub enum ClientError {
    /// The server answered with an error.
    Api { code: String, message: String },
    /// The server could not be reached, or the exchange broke off.
    Transport { url: Url, source: reqwest::Error },
    /// The answer was not what this client understands (another server, another version).
    Protocol { url: Url, detail: String },
    /// `--server` is not a usable base URL.
    InvalidServer { server: String, detail: String },
}

impl ClientError {
    pub fn code(&self) -> &str {
        match self {
            ClientError::Api { code, .. } => code,
            ClientError::Transport { source, .. } if source.is_timeout() => "timeout",
            ClientError::Transport { .. } => "connection_failed",
            ClientError::Protocol { .. } => "protocol_error",
            ClientError::InvalidServer { .. } => "invalid_server",
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = self.code();
        match self {
            ClientError::Api { message, .. } => write!(f, "{code}: {message}"),
            ClientError::Transport { url, source } => {
                write!(f, "{code}: request to {url} failed")?;
                // reqwest's own message only repeats the URL; the cause (refused, reset,
                // timed out) is further down the chain.
                let mut cause = std::error::Error::source(source);
                if cause.is_none() {
                    write!(f, ": {source}")?;
                }
                while let Some(error) = cause {
                    write!(f, ": {error}")?;
                    cause = error.source();
                }
                Ok(())
            }
            ClientError::Protocol { url, detail } => {
                write!(f, "{code}: unexpected answer from {url}: {detail}")
            }
            ClientError::InvalidServer { server, detail } => {
                write!(f, "{code}: --server {server:?}: {detail}")
            }
        }
    }
}

// The message above already carries the cause chain; exposing `source` too would make
// `anyhow`'s `{:#}` print it twice.
impl std::error::Error for ClientError {}

pub type Result<T> = std::result::Result<T, ClientError>;

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
}

impl Client {
    pub fn new(server: &str) -> Result<Client> {
        let invalid = |detail: String| ClientError::InvalidServer {
            server: server.to_string(),
            detail,
        };
        let base = Url::parse(server).map_err(|error| invalid(error.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(invalid("expected an http:// URL".to_string()));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(CONNECT_TIMEOUT_MS))
            // The broker is usually on loopback or the local network; an HTTP_PROXY meant for
            // the internet must not capture it.
            .no_proxy()
            .build()
            .map_err(|error| invalid(error.to_string()))?;
        Ok(Client { http, base })
    }

    pub async fn list_streams(&self) -> Result<Vec<StreamSummary>> {
        let url = self.url(&["v1", "streams"], &[]);
        let list: StreamList = self.send(self.request(Method::GET, &url), &url).await?;
        Ok(list.streams)
    }

    pub async fn create_stream(&self, spec: &StreamSpec) -> Result<StreamSummary> {
        let url = self.url(&["v1", "streams"], &[]);
        let request = self.request(Method::POST, &url).json(spec);
        self.send(request, &url).await
    }

    /// The full description, as the server renders it, for printing.
    pub async fn stream_info_json(&self, stream: &str) -> Result<serde_json::Value> {
        let url = self.url(&["v1", "streams", stream], &[]);
        self.send(self.request(Method::GET, &url), &url).await
    }

    pub async fn stream_info(&self, stream: &str) -> Result<StreamSummary> {
        let url = self.url(&["v1", "streams", stream], &[]);
        self.send(self.request(Method::GET, &url), &url).await
    }

    /// Changes the settings named in `patch`; returns the stream's new description.
    pub async fn alter_stream(
        &self,
        stream: &str,
        patch: &serde_json::Value,
    ) -> Result<serde_json::Value> {
        let url = self.url(&["v1", "streams", stream], &[]);
        let request = self.request(Method::PATCH, &url).json(patch);
        self.send(request, &url).await
    }

    pub async fn delete_stream(&self, stream: &str) -> Result<()> {
        let url = self.url(&["v1", "streams", stream], &[]);
        self.send_empty(self.request(Method::DELETE, &url), &url)
            .await
    }

    /// Returns once the records are durably acknowledged; positions are in record order.
    pub async fn publish(
        &self,
        target: &Target,
        records: &[OutgoingRecord],
    ) -> Result<Vec<Position>> {
        let url = match target {
            Target::Stream(stream) => self.url(&["v1", "streams", stream, "records"], &[]),
            Target::Subject(subject) => self.url(&["v1", "subjects", subject, "records"], &[]),
        };
        let request = self
            .request(Method::POST, &url)
            .json(&PublishBody { records });
        let answer: PublishAnswer = self.send(request, &url).await?;
        if answer.records.len() != records.len() {
            return Err(ClientError::Protocol {
                url,
                detail: format!(
                    "sent {} records but {} positions came back",
                    records.len(),
                    answer.records.len()
                ),
            });
        }
        Ok(answer.records)
    }

    pub async fn fetch(
        &self,
        stream: &str,
        partition: u32,
        params: FetchParams,
    ) -> Result<FetchPage> {
        let partition = partition.to_string();
        let url = self.url(
            &["v1", "streams", stream, "partitions", &partition, "records"],
            &[
                ("offset", params.offset.to_string()),
                ("max_records", params.max_records.to_string()),
                ("max_bytes", params.max_bytes.to_string()),
                ("wait_ms", params.wait_ms.to_string()),
            ],
        );
        let request = self
            .request(Method::GET, &url)
            .timeout(Duration::from_millis(params.wait_ms + LONG_POLL_MARGIN_MS));
        self.send(request, &url).await
    }

    /// `at` is `earliest`, `latest`, or a timestamp in ms since the epoch.
    pub async fn offset_at(&self, stream: &str, partition: u32, at: &str) -> Result<u64> {
        let partition = partition.to_string();
        let url = self.url(
            &["v1", "streams", stream, "partitions", &partition, "offsets"],
            &[("at", at.to_string())],
        );
        let answer: OffsetAnswer = self.send(self.request(Method::GET, &url), &url).await?;
        Ok(answer.offset)
    }

    pub async fn commit_offsets(&self, group: &str, offsets: &[OffsetCommit]) -> Result<()> {
        let url = self.url(&["v1", "groups", group, "offsets"], &[]);
        let request = self
            .request(Method::POST, &url)
            .json(&CommitBody { offsets });
        self.send_empty(request, &url).await
    }

    pub async fn committed_offsets(&self, group: &str, stream: &str) -> Result<Vec<Committed>> {
        let url = self.url(
            &["v1", "groups", group, "offsets"],
            &[("stream", stream.to_string())],
        );
        let answer: CommittedAnswer = self.send(self.request(Method::GET, &url), &url).await?;
        Ok(answer.offsets)
    }

    /// Committed offsets of a group, as the server renders them, for printing.
    pub async fn committed_offsets_json(
        &self,
        group: &str,
        stream: Option<&str>,
    ) -> Result<serde_json::Value> {
        let query = stream_query(stream);
        let url = self.url(&["v1", "groups", group, "offsets"], &query);
        self.send(self.request(Method::GET, &url), &url).await
    }

    pub async fn group_lag_json(
        &self,
        group: &str,
        stream: Option<&str>,
    ) -> Result<serde_json::Value> {
        let query = stream_query(stream);
        let url = self.url(&["v1", "groups", group, "lag"], &query);
        self.send(self.request(Method::GET, &url), &url).await
    }

    pub async fn list_groups_json(&self) -> Result<serde_json::Value> {
        let url = self.url(&["v1", "groups"], &[]);
        self.send(self.request(Method::GET, &url), &url).await
    }

    /// `GET /metrics` as text (the acked consumers' lag, `cli/consumer_lag.rs`).
    pub async fn metrics_text(&self) -> Result<String> {
        let url = self.url(&["metrics"], &[]);
        let response = self.exchange(self.request(Method::GET, &url), &url).await?;
        response
            .text()
            .await
            .map_err(|source| transport(&url, source))
    }

    /// Any GET of the API, as the server renders it (`omnibus top` reads several).
    pub async fn get_json(&self, segments: &[&str]) -> Result<serde_json::Value> {
        let url = self.url(segments, &[]);
        self.send(self.request(Method::GET, &url), &url).await
    }

    /// The base URL plus percent-encoded path segments and query pairs.
    pub(super) fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Url {
        let mut url = self.base.clone();
        // `new` checked that the base can carry a path, so this always succeeds.
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    pub(super) fn request(&self, method: Method, url: &Url) -> RequestBuilder {
        self.http
            .request(method, url.clone())
            .timeout(Duration::from_millis(REQUEST_TIMEOUT_MS))
    }

    pub(super) async fn send<T: DeserializeOwned>(
        &self,
        request: RequestBuilder,
        url: &Url,
    ) -> Result<T> {
        let response = self.exchange(request, url).await?;
        let body = response
            .bytes()
            .await
            .map_err(|source| transport(url, source))?;
        serde_json::from_slice(&body).map_err(|error| ClientError::Protocol {
            url: url.clone(),
            detail: error.to_string(),
        })
    }

    pub(super) async fn send_empty(&self, request: RequestBuilder, url: &Url) -> Result<()> {
        let response = self.exchange(request, url).await?;
        // Read to the end so the connection can be reused.
        response
            .bytes()
            .await
            .map_err(|source| transport(url, source))?;
        Ok(())
    }

    /// Sends the request; a non-success status becomes [`ClientError::Api`].
    async fn exchange(&self, request: RequestBuilder, url: &Url) -> Result<Response> {
        let response = request
            .send()
            .await
            .map_err(|source| transport(url, source))?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(error_from_response(response).await)
    }
}

fn stream_query(stream: Option<&str>) -> Vec<(&'static str, String)> {
    stream
        .map(|stream| vec![("stream", stream.to_string())])
        .unwrap_or_default()
}

fn transport(url: &Url, source: reqwest::Error) -> ClientError {
    ClientError::Transport {
        url: url.clone(),
        source,
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
}

async fn error_from_response(mut response: Response) -> ClientError {
    let status = response.status();
    let mut body = Vec::new();
    // Read chunk by chunk so a huge error page is cut off instead of buffered whole.
    while body.len() < ERROR_BODY_BYTES_MAX {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    match serde_json::from_slice::<ErrorBody>(&body) {
        Ok(parsed) => ClientError::Api {
            code: parsed.error.code,
            message: parsed.error.message,
        },
        Err(_) => {
            // Not our error format (a proxy, another service on the port): show what we got.
            let text = String::from_utf8_lossy(&body);
            let text: String = text.trim().chars().take(ERROR_TEXT_CHARS_MAX).collect();
            let message = if text.is_empty() {
                format!("HTTP {status}")
            } else {
                format!("HTTP {status}: {text}")
            };
            ClientError::Api {
                code: format!("http_{}", status.as_u16()),
                message,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::wire::FetchedRecord;

    #[test]
    fn paths_are_percent_encoded_under_the_base() {
        let client = Client::new("http://127.0.0.1:8080/prefix/").unwrap();
        let url = client.url(
            &["v1", "subjects", "a b/c", "records"],
            &[("at", "1".into())],
        );
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:8080/prefix/v1/subjects/a%20b%2Fc/records?at=1"
        );
        let client = Client::new("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            client.url(&["health"], &[]).as_str(),
            "http://127.0.0.1:8080/health"
        );
    }

    #[test]
    fn a_server_that_is_not_http_is_refused() {
        assert_eq!(
            Client::new("ftp://host").err().unwrap().code(),
            "invalid_server"
        );
        assert_eq!(
            Client::new("not a url").err().unwrap().code(),
            "invalid_server"
        );
    }

    #[test]
    fn an_api_error_prints_code_then_message() {
        let error = ClientError::Api {
            code: "stream_not_found".into(),
            message: "stream \"x\" does not exist".into(),
        };
        assert_eq!(
            error.to_string(),
            "stream_not_found: stream \"x\" does not exist"
        );
    }

    #[test]
    fn fetched_records_render_back_without_absent_fields() {
        let text = r#"{"offset":3,"timestamp_ms":5,"subject":"s","partition":0,"value":"v","headers":{"h":"1"}}"#;
        let record: FetchedRecord = serde_json::from_str(text).unwrap();
        assert_eq!(serde_json::to_string(&record).unwrap(), text);
    }
}
