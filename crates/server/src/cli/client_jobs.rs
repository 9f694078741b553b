//! The [`Client`] methods for queues, jobs and dead letters: one per endpoint, kept apart from
//! `client.rs` so neither file grows past a screenful of endpoints.

use std::time::Duration;

use omnibus_engine::queue::QueueSpec;
use reqwest::Method;

use crate::cli::client::{Client, ClientError, Result, LONG_POLL_MARGIN_MS};
use crate::cli::wire_jobs::{
    CompleteJobsAnswer, CompleteJobsBody, Completion, DeadLetterPage, EnqueueAnswer, EnqueueBody,
    EnqueuedJob, FailBody, FetchJobsAnswer, FetchJobsBody, FetchedJob, JobPage, NewJob,
    ProgressAnswer, ProgressBody, PurgeAnswer, QueueList, QueueSummary, RedriveAnswer, RedriveBody,
};

/// Asks the broker to answer a report without the job's record: the CLI only needs to know
/// it was taken, and rendering the record is most of the answer's cost.
const PREFER: &str = "prefer";
const RETURN_MINIMAL: &str = "return=minimal";

/// What a batch completion brought back.
#[derive(Debug)]
pub struct CompletedBatch {
    /// One per completion, in order: recorded, or why not.
    pub results: Vec<Result<()>>,
    /// With a fetch: the next jobs, or why fetching failed (the completions stand).
    pub next: Option<Result<Vec<FetchedJob>>>,
}

impl Client {
    pub async fn create_queue(&self, spec: &QueueSpec) -> Result<QueueSummary> {
        let url = self.url(&["v1", "queues"], &[]);
        self.send(self.request(Method::POST, &url).json(spec), &url)
            .await
    }

    pub async fn list_queues(&self) -> Result<Vec<QueueSummary>> {
        let url = self.url(&["v1", "queues"], &[]);
        let list: QueueList = self.send(self.request(Method::GET, &url), &url).await?;
        Ok(list.queues)
    }

    pub async fn queue_info(&self, queue: &str) -> Result<QueueSummary> {
        let url = self.url(&["v1", "queues", queue], &[]);
        self.send(self.request(Method::GET, &url), &url).await
    }

    /// The full description with job counts, as the server renders it, for printing.
    pub async fn queue_info_json(&self, queue: &str) -> Result<serde_json::Value> {
        let url = self.url(&["v1", "queues", queue], &[]);
        self.send(self.request(Method::GET, &url), &url).await
    }

    pub async fn delete_queue(&self, queue: &str) -> Result<()> {
        let url = self.url(&["v1", "queues", queue], &[]);
        self.send_empty(self.request(Method::DELETE, &url), &url)
            .await
    }

    /// `action` is `pause` or `resume`.
    pub async fn queue_action(&self, queue: &str, action: &str) -> Result<()> {
        let url = self.url(&["v1", "queues", queue, action], &[]);
        self.send_empty(self.request(Method::POST, &url), &url)
            .await
    }

    /// Removes every waiting message; returns how many.
    pub async fn purge_queue(&self, queue: &str) -> Result<u64> {
        let url = self.url(&["v1", "queues", queue, "purge"], &[]);
        let answer: PurgeAnswer = self.send(self.request(Method::POST, &url), &url).await?;
        Ok(answer.purged)
    }

    pub async fn dead_letters(
        &self,
        queue: &str,
        offset: Option<u64>,
        limit: usize,
    ) -> Result<DeadLetterPage> {
        let mut query = vec![("limit", limit.to_string())];
        if let Some(offset) = offset {
            query.push(("offset", offset.to_string()));
        }
        let url = self.url(&["v1", "queues", queue, "dlq"], &query);
        self.send(self.request(Method::GET, &url), &url).await
    }

    /// Moves up to `max` dead letters (all without a max) back to the queue.
    pub async fn redrive(&self, queue: &str, max: Option<u64>) -> Result<u64> {
        let url = self.url(&["v1", "queues", queue, "dlq", "redrive"], &[]);
        let request = self.request(Method::POST, &url).json(&RedriveBody { max });
        let answer: RedriveAnswer = self.send(request, &url).await?;
        Ok(answer.redriven)
    }

    /// Returns once the jobs are durably enqueued; answers are in job order.
    pub async fn enqueue_jobs(&self, queue: &str, jobs: &[NewJob]) -> Result<Vec<EnqueuedJob>> {
        let url = self.url(&["v1", "queues", queue, "jobs"], &[]);
        let request = self.request(Method::POST, &url).json(&EnqueueBody { jobs });
        let answer: EnqueueAnswer = self.send(request, &url).await?;
        if answer.jobs.len() != jobs.len() {
            return Err(ClientError::Protocol {
                url,
                detail: format!(
                    "sent {} jobs but {} ids came back",
                    jobs.len(),
                    answer.jobs.len()
                ),
            });
        }
        Ok(answer.jobs)
    }

    /// Leases up to `max` jobs, waiting up to `wait_ms` for the first.
    pub async fn fetch_jobs(
        &self,
        queue: &str,
        worker: &str,
        max: usize,
        wait_ms: u64,
    ) -> Result<Vec<FetchedJob>> {
        let url = self.url(&["v1", "queues", queue, "jobs", "fetch"], &[]);
        let request = self
            .request(Method::POST, &url)
            .timeout(Duration::from_millis(wait_ms + LONG_POLL_MARGIN_MS))
            .json(&FetchJobsBody {
                worker,
                max,
                wait_ms,
            });
        let answer: FetchJobsAnswer = self.send(request, &url).await?;
        Ok(answer.jobs)
    }

    pub async fn list_jobs(
        &self,
        queue: &str,
        status: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<JobPage> {
        let mut query = vec![("limit", limit.to_string())];
        if let Some(status) = status {
            query.push(("status", status.to_string()));
        }
        if let Some(after) = after {
            query.push(("after", after.to_string()));
        }
        let url = self.url(&["v1", "queues", queue, "jobs"], &query);
        self.send(self.request(Method::GET, &url), &url).await
    }

    /// A job as the server renders it, for printing.
    pub async fn job_json(&self, queue: &str, id: &str) -> Result<serde_json::Value> {
        let url = self.url(&["v1", "queues", queue, "jobs", id], &[]);
        self.send(self.request(Method::GET, &url), &url).await
    }

    pub async fn cancel_job(&self, queue: &str, id: &str) -> Result<()> {
        let url = self.url(&["v1", "queues", queue, "jobs", id, "cancel"], &[]);
        self.send_empty(self.request(Method::POST, &url), &url)
            .await
    }

    /// Reports progress, which also extends the attempt's lease; returns the new deadline.
    pub async fn job_progress(
        &self,
        queue: &str,
        id: &str,
        attempt: u32,
        progress: &serde_json::Value,
    ) -> Result<i64> {
        let url = self.url(&["v1", "queues", queue, "jobs", id, "progress"], &[]);
        let request = self
            .request(Method::POST, &url)
            .json(&ProgressBody { attempt, progress });
        let answer: ProgressAnswer = self.send(request, &url).await?;
        Ok(answer.lease_deadline_ms)
    }

    /// Completes many attempts in one request: the broker commits them together and judges
    /// each alone (one answer per completion, in order). With `fetch` (`max` > 0), the worker's
    /// next jobs are leased in the same commit, or long-polled for up to `wait_ms` after it
    /// when none is ready. The answer is asked for without job records (`return=minimal`).
    pub async fn complete_jobs(
        &self,
        queue: &str,
        completions: &[Completion],
        fetch: Option<(&str, usize, u64)>,
    ) -> Result<CompletedBatch> {
        let url = self.url(&["v1", "queues", queue, "jobs", "complete"], &[]);
        let wait_ms = fetch.map_or(0, |(_, _, wait_ms)| wait_ms);
        let body = CompleteJobsBody {
            completions,
            fetch: fetch.map(|(worker, max, wait_ms)| FetchJobsBody {
                worker,
                max,
                wait_ms,
            }),
        };
        let request = self
            .request(Method::POST, &url)
            .timeout(Duration::from_millis(wait_ms + LONG_POLL_MARGIN_MS))
            .header(PREFER, RETURN_MINIMAL)
            .json(&body);
        let answer: CompleteJobsAnswer = self.send(request, &url).await?;
        if answer.results.len() != completions.len() {
            return Err(ClientError::Protocol {
                url,
                detail: format!(
                    "sent {} completions but {} answers came back",
                    completions.len(),
                    answer.results.len()
                ),
            });
        }
        let results = answer
            .results
            .into_iter()
            .map(|result| match result.error {
                None => Ok(()),
                Some(error) => Err(ClientError::Api {
                    code: error.code,
                    message: error.message,
                }),
            })
            .collect();
        let next = match (fetch, answer.fetch_error, answer.next) {
            (None, _, _) => None,
            (Some(_), Some(error), _) => Some(Err(ClientError::Api {
                code: error.code,
                message: error.message,
            })),
            (Some(_), None, next) => Some(Ok(next.unwrap_or_default())),
        };
        Ok(CompletedBatch { results, next })
    }

    pub async fn fail_job(&self, queue: &str, id: &str, attempt: u32, error: &str) -> Result<()> {
        let url = self.url(&["v1", "queues", queue, "jobs", id, "fail"], &[]);
        let request = self
            .request(Method::POST, &url)
            .header(PREFER, RETURN_MINIMAL)
            .json(&FailBody { attempt, error });
        self.send_empty(request, &url).await
    }
}
