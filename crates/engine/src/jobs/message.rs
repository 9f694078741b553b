//! The job a queue message carries. Enqueue writes no job record: the message itself holds
//! the job's name and options (headers) and its unique key (the message key), so a job that
//! never reports progress and never fails costs no state-store write until it finishes. The
//! record is written when the message no longer says everything: at progress, at a failure
//! (its error history), and when the job is final.

use bytes::Bytes;
use omnibus_types::{Header, Record};
use serde::{Deserialize, Serialize};

use super::model::{Job, JobStatus, NewJob};
use crate::queue::{header_i64, Backoff, Queue, DUE_HEADER, PRIORITY_HEADER};

/// Header naming the job kind on a job's queue message.
pub const JOB_NAME_HEADER: &str = "omnibus.job.name";
/// Header with the job's options (JSON), present only when the job sets one.
pub const JOB_OPTIONS_HEADER: &str = "omnibus.job.options";

/// The options of [`NewJob`] that the queue itself does not keep.
#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
struct JobOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_attempts: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    backoff: Option<Backoff>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    parent: Option<String>,
}

impl JobOptions {
    fn is_empty(&self) -> bool {
        *self == JobOptions::default()
    }
}

/// The headers a job's message carries: its name, and its options when it has any.
pub fn job_headers(job: &NewJob) -> Vec<Header> {
    let mut headers = vec![Header {
        name: JOB_NAME_HEADER.into(),
        value: Bytes::from(job.name.clone()),
    }];
    let options = JobOptions {
        max_attempts: job.max_attempts,
        backoff: job.backoff,
        timeout_ms: job.timeout_ms,
        parent: job.parent.clone(),
    };
    if !options.is_empty() {
        headers.push(Header {
            name: JOB_OPTIONS_HEADER.into(),
            value: Bytes::from(serde_json::to_vec(&options).expect("options serialize")),
        });
    }
    headers
}

fn header<'a>(record: &'a Record, name: &str) -> Option<&'a [u8]> {
    record
        .headers
        .iter()
        .find(|h| h.name == name)
        .map(|h| h.value.as_ref())
}

/// The job `record` (message `id` of `queue`) carries, as it was enqueued: status `waiting`
/// (or `delayed` when it had a delay), no attempts, payload included. `None` when the message
/// is not a job (no name header). A malformed options header counts as no options.
pub fn job_of_message(queue: &Queue, id: u64, record: &Record) -> Option<Job> {
    let name = String::from_utf8_lossy(header(record, JOB_NAME_HEADER)?).into_owned();
    let mut job = plain_message_job(queue, id, record);
    let options: JobOptions = header(record, JOB_OPTIONS_HEADER)
        .and_then(|bytes| serde_json::from_slice(bytes).ok())
        .unwrap_or_default();
    job.name = name;
    job.max_attempts = options.max_attempts.unwrap_or(job.max_attempts);
    job.backoff = options.backoff;
    job.timeout_ms = options.timeout_ms;
    job.parent = options.parent;
    // Enqueue makes a job's unique key its message key.
    job.unique_key = record
        .key
        .as_ref()
        .map(|key| String::from_utf8_lossy(key).into_owned());
    Some(job)
}

/// A message on a job queue that is not a job (published to the queue directly), as the
/// jobs layer hands it out: a job without a name or options.
pub fn plain_message_job(queue: &Queue, id: u64, record: &Record) -> Job {
    let run_at_ms = header_i64(record, DUE_HEADER);
    Job {
        id: id.to_string(),
        queue: queue.config.name.clone(),
        name: String::new(),
        payload: record.value.clone().unwrap_or_default(),
        status: if run_at_ms.is_some() {
            JobStatus::Delayed
        } else {
            JobStatus::Waiting
        },
        priority: header_i64(record, PRIORITY_HEADER)
            .and_then(|p| u8::try_from(p).ok())
            .unwrap_or(0),
        attempts: 0,
        max_attempts: queue.config.max_deliver,
        backoff: None,
        timeout_ms: None,
        unique_key: None,
        parent: None,
        progress: None,
        result: None,
        errors: Vec::new(),
        created_ms: record.timestamp_ms,
        updated_ms: record.timestamp_ms,
        run_at_ms,
        started_ms: None,
        finished_ms: None,
    }
}
