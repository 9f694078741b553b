//! Alarm webhooks: every firing and resolved transition is POSTed, as the JSON of
//! `GET /v1/alerts`' entries, to each configured URL.
//!
//! One task fans the engine's transitions out into a bounded queue per webhook; one task per
//! webhook sends them in order. Neither can hold up the engine: the engine hands transitions
//! to a broadcast channel and never waits for a subscriber, and a webhook that hangs only
//! fills its own queue, whose oldest transitions are then dropped (and counted). Each
//! attempt has a timeout; a failed one is retried after a wait that doubles from
//! `backoff_ms` up to 30 s, `retries_max` times, then the transition is abandoned (and
//! counted). Counts and the last error are reported to the engine after every change, so
//! `GET /v1/alerts/webhooks` shows them.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use omnibus_engine::alerts::format_rfc3339_ms;
use omnibus_engine::{Alert, Engine, WebhookStatus};
use tokio::sync::{broadcast, Notify};

use crate::config_alerts::WebhookSection;

/// Longest wait between two attempts.
const BACKOFF_MS_MAX: u64 = 30_000;
/// An error text kept in the status is cut to this many characters.
const ERROR_CHARS_MAX: usize = 300;

/// One webhook's queue and counts.
struct Outbox {
    settings: WebhookSection,
    pending: Mutex<(VecDeque<Alert>, WebhookStatus)>,
    wake: Notify,
}

impl Outbox {
    fn push(&self, alert: Alert) -> WebhookStatus {
        let mut guard = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let (queue, status) = &mut *guard;
        if queue.len() >= self.settings.queue_max {
            queue.pop_front();
            status.dropped += 1;
        }
        queue.push_back(alert);
        status.queued = queue.len() as u64;
        let status = status.clone();
        drop(guard);
        self.wake.notify_one();
        status
    }

    fn count_missed(&self, missed: u64) -> WebhookStatus {
        let mut guard = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        guard.1.dropped += missed;
        guard.1.clone()
    }

    fn next(&self) -> Option<Alert> {
        let mut guard = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let (queue, status) = &mut *guard;
        let next = queue.pop_front();
        status.queued = queue.len() as u64;
        next
    }

    /// Applies `change` to the status and returns the result, to report.
    fn update(&self, change: impl FnOnce(&mut WebhookStatus)) -> WebhookStatus {
        let mut guard = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        change(&mut guard.1);
        guard.1.clone()
    }
}

/// Starts delivering to `webhooks` (nothing to do without any).
pub fn start(engine: &Arc<Engine>, webhooks: &[WebhookSection]) -> anyhow::Result<()> {
    if webhooks.is_empty() {
        return Ok(());
    }
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let outboxes: Vec<Arc<Outbox>> = webhooks
        .iter()
        .map(|settings| {
            let status = WebhookStatus {
                url: settings.url.clone(),
                ..WebhookStatus::default()
            };
            engine.report_webhook_status(status.clone());
            Arc::new(Outbox {
                settings: settings.clone(),
                pending: Mutex::new((VecDeque::new(), status)),
                wake: Notify::new(),
            })
        })
        .collect();
    for outbox in &outboxes {
        tokio::spawn(send_loop(
            Arc::downgrade(engine),
            client.clone(),
            outbox.clone(),
        ));
    }
    let transitions = engine.subscribe_alert_transitions();
    tokio::spawn(fan_out(Arc::downgrade(engine), transitions, outboxes));
    Ok(())
}

async fn fan_out(
    engine: Weak<Engine>,
    mut transitions: broadcast::Receiver<Alert>,
    outboxes: Vec<Arc<Outbox>>,
) {
    loop {
        let reports: Vec<WebhookStatus> = match transitions.recv().await {
            Ok(alert) => outboxes.iter().map(|o| o.push(alert.clone())).collect(),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                outboxes.iter().map(|o| o.count_missed(missed)).collect()
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let Some(engine) = engine.upgrade() else {
            return;
        };
        for status in reports {
            engine.report_webhook_status(status);
        }
    }
}

async fn send_loop(engine: Weak<Engine>, client: reqwest::Client, outbox: Arc<Outbox>) {
    loop {
        let Some(alert) = outbox.next() else {
            outbox.wake.notified().await;
            continue;
        };
        let status = deliver(&client, &outbox, &alert, &engine).await;
        let Some(engine) = engine.upgrade() else {
            return;
        };
        engine.report_webhook_status(status);
    }
}

/// Sends one transition, retrying; returns the status to report.
async fn deliver(
    client: &reqwest::Client,
    outbox: &Outbox,
    alert: &Alert,
    engine: &Weak<Engine>,
) -> WebhookStatus {
    let settings = &outbox.settings;
    let mut backoff_ms = settings.backoff_ms.max(1);
    for attempt in 0..=settings.retries_max {
        let outcome = client
            .post(&settings.url)
            .timeout(Duration::from_millis(settings.timeout_ms))
            .json(alert)
            .send()
            .await;
        let error = match outcome {
            Ok(response) if response.status().is_success() => {
                return outbox.update(|status| {
                    status.delivered += 1;
                    status.last_delivered_at = Some(now());
                });
            }
            Ok(response) => format!("answered {}", response.status()),
            Err(error) if error.is_timeout() => {
                format!("no answer within {} ms", settings.timeout_ms)
            }
            Err(error) => error_text(&error),
        };
        let status = outbox.update(|status| {
            status.failed_attempts += 1;
            status.last_error = Some(error.chars().take(ERROR_CHARS_MAX).collect());
            status.last_error_at = Some(now());
        });
        tracing::warn!(url = %settings.url, attempt, "alarm webhook failed: {error}");
        if attempt == settings.retries_max {
            break;
        }
        // Failures are visible while the retries wait.
        if let Some(engine) = engine.upgrade() {
            engine.report_webhook_status(status);
        }
        tokio::time::sleep(Duration::from_millis(backoff_ms)).await;
        backoff_ms = backoff_ms.saturating_mul(2).min(BACKOFF_MS_MAX);
    }
    outbox.update(|status| status.abandoned += 1)
}

/// reqwest's message plus its causes (the refused connection is in a cause).
fn error_text(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn now() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    format_rfc3339_ms(ms)
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use omnibus_engine::{AlertKind, AlertState};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    fn alert(id: &str) -> Alert {
        Alert {
            id: id.into(),
            rule: "dlq_not_empty".into(),
            kind: AlertKind::DlqDepth,
            target: "work".into(),
            state: AlertState::Firing,
            value: 1.0,
            threshold: 0.0,
            since: "2026-12-03T22:00:00.000Z".into(),
            resolved_at: None,
            message: "dead letters of queue work: 1 (alarm above 0)".into(),
        }
    }

    fn outbox(url: &str, queue_max: usize) -> Outbox {
        Outbox {
            settings: WebhookSection {
                url: url.into(),
                timeout_ms: 2_000,
                retries_max: 3,
                backoff_ms: 10,
                queue_max,
            },
            pending: Mutex::new((VecDeque::new(), WebhookStatus::default())),
            wake: Notify::new(),
        }
    }

    #[test]
    fn a_full_queue_drops_its_oldest_transition_and_counts_it() {
        let outbox = outbox("http://127.0.0.1:9/", 2);
        outbox.push(alert("a"));
        outbox.push(alert("b"));
        let status = outbox.push(alert("c"));
        assert_eq!((status.dropped, status.queued), (1, 2));
        assert_eq!(outbox.next().unwrap().id, "b");
        assert_eq!(outbox.next().unwrap().id, "c");
        assert!(outbox.next().is_none());
    }

    /// Answers the first `failures` requests 500, the rest 200; notes when each arrived.
    async fn flaky_receiver(failures: usize) -> (String, Arc<Mutex<Vec<Instant>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let counted = requests.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut request = Vec::new();
                let mut chunk = [0u8; 4096];
                // The alarm JSON is small: its request fits and ends with the body's `}`.
                while !request.ends_with(b"}") {
                    let read = socket.read(&mut chunk).await.unwrap();
                    if read == 0 {
                        break;
                    }
                    request.extend_from_slice(&chunk[..read]);
                }
                let seen = {
                    let mut requests = counted.lock().unwrap();
                    requests.push(Instant::now());
                    requests.len()
                };
                let answer: &[u8] = if seen <= failures {
                    b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                } else {
                    b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                };
                let _ = socket.write_all(answer).await;
            }
        });
        (url, requests)
    }

    #[tokio::test]
    async fn a_failing_webhook_is_retried_with_backoff_until_it_answers() {
        let (url, requests) = flaky_receiver(2).await;
        let outbox = outbox(&url, 10);
        let client = reqwest::Client::new();
        let status = deliver(&client, &outbox, &alert("a"), &Weak::new()).await;
        assert_eq!(requests.lock().unwrap().len(), 3);
        assert_eq!(
            (status.delivered, status.failed_attempts, status.abandoned),
            (1, 2, 0)
        );
        assert!(status.last_error.unwrap().contains("500"));
        assert!(status.last_delivered_at.is_some());
    }

    #[tokio::test]
    async fn a_webhook_failing_past_its_retries_abandons_the_transition() {
        let (url, requests) = flaky_receiver(usize::MAX).await;
        let outbox = outbox(&url, 10);
        let client = reqwest::Client::new();
        let status = deliver(&client, &outbox, &alert("a"), &Weak::new()).await;
        let arrivals = requests.lock().unwrap().clone();
        assert_eq!(arrivals.len(), 4, "the first attempt and 3 retries");
        assert_eq!(
            (status.delivered, status.failed_attempts, status.abandoned),
            (0, 4, 1)
        );
        // The waits double from backoff_ms (10 ms): at least 10, 20 and 40 ms apart.
        for (index, pair) in arrivals.windows(2).enumerate() {
            let least = Duration::from_millis(10 << index);
            assert!(
                pair[1] - pair[0] >= least,
                "wait {index}: {:?}",
                pair[1] - pair[0]
            );
        }
    }

    #[tokio::test]
    async fn a_refused_connection_is_retried_then_abandoned_with_the_error_visible() {
        // A port nothing listens on any more.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        drop(listener);
        let outbox = outbox(&url, 10);
        let client = reqwest::Client::new();
        let status = deliver(&client, &outbox, &alert("a"), &Weak::new()).await;
        assert_eq!(
            (status.delivered, status.failed_attempts, status.abandoned),
            (0, 4, 1)
        );
        let error = status.last_error.unwrap().to_lowercase();
        assert!(error.contains("refused"), "{error}");
    }
}
