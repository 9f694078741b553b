//! Job JSON to and from the engine's types.
//!
//! In: a job's `payload` is any JSON (a JSON string is stored as its UTF-8 bytes, anything
//! else as its compact JSON text, `null` or absent as empty) or `payload_base64`. Out: a job is
//! the engine's `Job` with its payload rendered as JSON when the bytes parse as JSON, else as a
//! UTF-8 string, else as `payload_base64` (with `payload` null); an empty payload is null.

use base64::Engine as _;
use bytes::Bytes;
use omnibus_engine::jobs::{ActiveJob, Job, NewJob, JOBS_PER_CALL_MAX, JOB_DOCUMENT_BYTES_MAX};
use omnibus_engine::queue::Backoff;
use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;

use crate::bounded::Bounded;
use crate::error::ApiError;
use crate::json::{decode_base64, json_value_bytes, BASE64};
use crate::json_messages::{check_backoff, check_duration, check_priority};

/// Longest job name, in bytes.
pub const JOB_NAME_BYTES_MAX: usize = 256;
/// Longest unique key or parent id, in bytes.
pub const JOB_KEY_BYTES_MAX: usize = 1024;
/// Most attempts a job may be given.
pub const JOB_ATTEMPTS_MAX: u32 = 1_000;
/// Longest time one attempt may run without a progress report (a day, like a queue's lease).
pub const JOB_TIMEOUT_MS_MAX: u64 = 24 * 3600 * 1000;

/// One job as a client sends it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobInput {
    name: Option<String>,
    payload: Option<Box<RawValue>>,
    payload_base64: Option<String>,
    priority: Option<u8>,
    delay_ms: Option<u64>,
    max_attempts: Option<u32>,
    backoff: Option<Backoff>,
    timeout_ms: Option<u64>,
    unique_key: Option<String>,
    unique_window_ms: Option<u64>,
    parent: Option<String>,
}

/// An enqueue body: one job object, or `{"jobs":[…]}`. The fields are repeated rather than
/// flattened for the reasons given on `json::PublishBody`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnqueueJobsBody {
    jobs: Option<Bounded<JobInput, JOBS_PER_CALL_MAX>>,
    name: Option<String>,
    payload: Option<Box<RawValue>>,
    payload_base64: Option<String>,
    priority: Option<u8>,
    delay_ms: Option<u64>,
    max_attempts: Option<u32>,
    backoff: Option<Backoff>,
    timeout_ms: Option<u64>,
    unique_key: Option<String>,
    unique_window_ms: Option<u64>,
    parent: Option<String>,
}

impl EnqueueJobsBody {
    /// The jobs of the body, in order, converted and checked.
    pub fn into_jobs(self) -> Result<Vec<NewJob>, ApiError> {
        let single = JobInput {
            name: self.name,
            payload: self.payload,
            payload_base64: self.payload_base64,
            priority: self.priority,
            delay_ms: self.delay_ms,
            max_attempts: self.max_attempts,
            backoff: self.backoff,
            timeout_ms: self.timeout_ms,
            unique_key: self.unique_key,
            unique_window_ms: self.unique_window_ms,
            parent: self.parent,
        };
        let Some(jobs) = self.jobs else {
            return Ok(vec![single.into_new_job("job")?]);
        };
        let has_job_fields = single.name.is_some()
            || single.payload.is_some()
            || single.payload_base64.is_some()
            || single.priority.is_some()
            || single.delay_ms.is_some()
            || single.max_attempts.is_some()
            || single.backoff.is_some()
            || single.timeout_ms.is_some()
            || single.unique_key.is_some()
            || single.unique_window_ms.is_some()
            || single.parent.is_some();
        if has_job_fields {
            return Err(ApiError::bad_request(
                "a body with \"jobs\" may not also carry job fields; put them in each job",
            ));
        }
        jobs.into_items("jobs")?
            .into_iter()
            .enumerate()
            .map(|(index, input)| input.into_new_job(&format!("jobs[{index}]")))
            .collect()
    }
}

impl JobInput {
    fn into_new_job(self, name: &str) -> Result<NewJob, ApiError> {
        let payload = match (self.payload, self.payload_base64) {
            (Some(_), Some(_)) => {
                return Err(ApiError::bad_request(format!(
                    "{name}: give payload or payload_base64, not both"
                )))
            }
            (Some(raw), None) => json_value_bytes(name, &raw)?,
            (None, Some(encoded)) => decode_base64(name, "payload_base64", &encoded)?,
            (None, None) => Bytes::new(),
        };
        let priority = self.priority.unwrap_or(0);
        check_priority(name, priority)?;
        check_duration(name, "delay_ms", self.delay_ms)?;
        check_duration(name, "unique_window_ms", self.unique_window_ms)?;
        check_backoff(name, self.backoff.as_ref())?;
        if let Some(attempts) = self.max_attempts {
            if !(1..=JOB_ATTEMPTS_MAX).contains(&attempts) {
                return Err(ApiError::bad_request(format!(
                    "{name}: max_attempts {attempts} is outside 1..={JOB_ATTEMPTS_MAX}"
                )));
            }
        }
        if let Some(timeout_ms) = self.timeout_ms {
            if !(1..=JOB_TIMEOUT_MS_MAX).contains(&timeout_ms) {
                return Err(ApiError::bad_request(format!(
                    "{name}: timeout_ms {timeout_ms} is outside 1..={JOB_TIMEOUT_MS_MAX}"
                )));
            }
        }
        let job_name = self.name.unwrap_or_default();
        for (field, text, bytes_max) in [
            ("name", Some(&job_name), JOB_NAME_BYTES_MAX),
            ("unique_key", self.unique_key.as_ref(), JOB_KEY_BYTES_MAX),
            ("parent", self.parent.as_ref(), JOB_KEY_BYTES_MAX),
        ] {
            if text.is_some_and(|text| text.is_empty() || text.len() > bytes_max) {
                return Err(ApiError::bad_request(format!(
                    "{name}: {field} must be 1 to {bytes_max} bytes"
                )));
            }
        }
        Ok(NewJob {
            name: job_name,
            payload,
            priority,
            delay_ms: self.delay_ms,
            max_attempts: self.max_attempts,
            backoff: self.backoff,
            timeout_ms: self.timeout_ms,
            unique_key: self.unique_key,
            unique_window_ms: self.unique_window_ms,
            parent: self.parent,
        })
    }
}

/// Parses a progress or result document, refusing one over [`JOB_DOCUMENT_BYTES_MAX`] before
/// building it.
pub fn job_document(field: &str, raw: &RawValue) -> Result<serde_json::Value, ApiError> {
    let text = raw.get();
    if text.len() > JOB_DOCUMENT_BYTES_MAX {
        return Err(ApiError::message_too_large(format!(
            "{field} is {} bytes of JSON; the limit is {JOB_DOCUMENT_BYTES_MAX}",
            text.len()
        )));
    }
    serde_json::from_str(text).map_err(|error| ApiError::bad_request(format!("{field}: {error}")))
}

/// A payload as JSON (kept as written) or as text.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum PayloadOutput<'a> {
    Json(&'a RawValue),
    Text(&'a str),
}

/// A job as the API renders it: the engine's `Job` fields in their order, then the payload.
///
/// Written by hand rather than derived with `#[serde(flatten)]`: flattening goes through
/// serde's map path (every field buffered as a map entry), and a worker's answer renders a job
/// per request. The shape is the derived one's (`job_output_is_the_job_then_its_payload`).
#[derive(Debug)]
pub struct JobOutput<'a> {
    pub job: &'a Job,
    pub payload: Option<PayloadOutput<'a>>,
    pub payload_base64: Option<String>,
    /// `Prefer: return=minimal`: fields that are null, and `errors` when empty, are left out.
    pub minimal: bool,
}

impl<'a> JobOutput<'a> {
    pub fn new(job: &'a Job) -> Self {
        let bytes = &job.payload[..];
        let (payload, payload_base64) = if bytes.is_empty() {
            (None, None)
        } else if let Ok(raw) = serde_json::from_slice::<&RawValue>(bytes) {
            (Some(PayloadOutput::Json(raw)), None)
        } else if let Ok(text) = std::str::from_utf8(bytes) {
            (Some(PayloadOutput::Text(text)), None)
        } else {
            (None, Some(BASE64.encode(bytes)))
        };
        JobOutput {
            job,
            payload,
            payload_base64,
            minimal: false,
        }
    }

    /// Writes the job's fields into an open struct.
    fn write_fields<S: SerializeStruct>(&self, out: &mut S) -> Result<(), S::Error> {
        let job = self.job;
        let minimal = self.minimal;
        /// `value` under `name`, or nothing when `leave_out`.
        fn field<S: SerializeStruct, T: Serialize>(
            out: &mut S,
            name: &'static str,
            value: &T,
            leave_out: bool,
        ) -> Result<(), S::Error> {
            if leave_out {
                return out.skip_field(name);
            }
            out.serialize_field(name, value)
        }
        fn optional<S: SerializeStruct, T: Serialize>(
            out: &mut S,
            name: &'static str,
            value: &Option<T>,
            minimal: bool,
        ) -> Result<(), S::Error> {
            field(out, name, value, minimal && value.is_none())
        }
        out.serialize_field("id", &job.id)?;
        out.serialize_field("queue", &job.queue)?;
        out.serialize_field("name", &job.name)?;
        out.serialize_field("status", &job.status)?;
        out.serialize_field("priority", &job.priority)?;
        out.serialize_field("attempts", &job.attempts)?;
        out.serialize_field("max_attempts", &job.max_attempts)?;
        optional(out, "backoff", &job.backoff, minimal)?;
        optional(out, "timeout_ms", &job.timeout_ms, minimal)?;
        optional(out, "unique_key", &job.unique_key, minimal)?;
        optional(out, "parent", &job.parent, minimal)?;
        optional(out, "progress", &job.progress, minimal)?;
        optional(out, "result", &job.result, minimal)?;
        field(out, "errors", &job.errors, minimal && job.errors.is_empty())?;
        out.serialize_field("created_ms", &job.created_ms)?;
        out.serialize_field("updated_ms", &job.updated_ms)?;
        optional(out, "run_at_ms", &job.run_at_ms, minimal)?;
        optional(out, "started_ms", &job.started_ms, minimal)?;
        optional(out, "finished_ms", &job.finished_ms, minimal)?;
        optional(out, "payload", &self.payload, minimal)?;
        let base64 = &self.payload_base64;
        field(out, "payload_base64", base64, base64.is_none())
    }
}

/// Fields a job renders at most (the struct length serializers are told).
const JOB_OUTPUT_FIELDS: usize = 22;

impl Serialize for JobOutput<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_struct("Job", JOB_OUTPUT_FIELDS)?;
        self.write_fields(&mut out)?;
        out.end()
    }
}

/// A job handed to a worker: the job plus the attempt to report against.
#[derive(Debug)]
pub struct ActiveJobOutput<'a> {
    pub job: JobOutput<'a>,
    pub attempt: u32,
    pub lease_deadline_ms: i64,
}

impl<'a> ActiveJobOutput<'a> {
    pub fn new(active: &'a ActiveJob) -> Self {
        ActiveJobOutput {
            job: JobOutput::new(&active.job),
            attempt: active.attempt,
            lease_deadline_ms: active.lease_deadline_ms,
        }
    }

    /// [`ActiveJobOutput::new`], leaving out null fields and empty `errors` when `minimal`.
    pub fn with_minimal(active: &'a ActiveJob, minimal: bool) -> Self {
        let mut output = ActiveJobOutput::new(active);
        output.job.minimal = minimal;
        output
    }
}

impl Serialize for ActiveJobOutput<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_struct("ActiveJob", JOB_OUTPUT_FIELDS + 2)?;
        self.job.write_fields(&mut out)?;
        out.serialize_field("attempt", &self.attempt)?;
        out.serialize_field("lease_deadline_ms", &self.lease_deadline_ms)?;
        out.end()
    }
}

#[cfg(test)]
mod tests {
    use omnibus_engine::jobs::JobStatus;

    use super::*;

    fn jobs(body: &str) -> Result<Vec<NewJob>, ApiError> {
        serde_json::from_str::<EnqueueJobsBody>(body)
            .expect("body parses")
            .into_jobs()
    }

    fn job_with_payload(payload: &[u8]) -> Job {
        Job {
            id: "j1".into(),
            queue: "q".into(),
            name: "n".into(),
            payload: Bytes::copy_from_slice(payload),
            status: JobStatus::Waiting,
            priority: 0,
            attempts: 0,
            max_attempts: 3,
            backoff: None,
            timeout_ms: None,
            unique_key: None,
            parent: None,
            progress: None,
            result: None,
            errors: Vec::new(),
            created_ms: 1,
            updated_ms: 1,
            run_at_ms: None,
            started_ms: None,
            finished_ms: None,
        }
    }

    /// The derived shape the hand-written serializer must keep: the job's own fields
    /// (serde's derive on `Job`) followed by the payload, as `#[serde(flatten)]` wrote it.
    fn derived_shape(job: &Job, payload: serde_json::Value) -> serde_json::Value {
        let mut expected = serde_json::to_value(job).unwrap();
        let fields = expected.as_object_mut().unwrap();
        fields.insert("payload".into(), payload);
        expected
    }

    #[test]
    fn job_output_is_the_job_then_its_payload() {
        let mut job = job_with_payload(br#"{"to":"a"}"#);
        job.errors.push(omnibus_engine::jobs::JobError {
            attempt: 1,
            message: "boom".into(),
            at_ms: 5,
        });
        job.progress = Some(serde_json::json!({"done": 3}));
        let text = serde_json::to_string(&JobOutput::new(&job)).unwrap();
        let rendered: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(rendered, derived_shape(&job, serde_json::json!({"to":"a"})));
        // In the order the fields are declared, payload last.
        assert!(text.starts_with(r#"{"id":"j1","queue":"q","name":"n","status":"waiting""#));
        assert!(
            text.ends_with(r#""finished_ms":null,"payload":{"to":"a"}}"#),
            "{text}"
        );

        let binary = job_with_payload(b"\x00\xff");
        let rendered = serde_json::to_value(JobOutput::new(&binary)).unwrap();
        assert_eq!(rendered["payload"], serde_json::Value::Null);
        assert_eq!(rendered["payload_base64"], "AP8=");
    }

    #[test]
    fn a_minimal_active_job_leaves_out_null_fields_and_empty_errors_only() {
        let mut job = job_with_payload(b"text");
        job.status = JobStatus::Active;
        job.timeout_ms = Some(900);
        job.started_ms = Some(7);
        let active = ActiveJob {
            job,
            attempt: 2,
            lease_deadline_ms: 99,
        };
        let full = serde_json::to_value(ActiveJobOutput::new(&active)).unwrap();
        let mut expected = derived_shape(&active.job, "text".into());
        expected["attempt"] = 2.into();
        expected["lease_deadline_ms"] = 99.into();
        assert_eq!(full, expected);

        let text = serde_json::to_string(&ActiveJobOutput::with_minimal(&active, true)).unwrap();
        assert_eq!(
            text,
            r#"{"id":"j1","queue":"q","name":"n","status":"active","priority":0,"attempts":0,"max_attempts":3,"timeout_ms":900,"created_ms":1,"updated_ms":1,"started_ms":7,"payload":"text","attempt":2,"lease_deadline_ms":99}"#
        );
        let minimal: serde_json::Value = serde_json::from_str(&text).unwrap();
        for (field, value) in minimal.as_object().unwrap() {
            assert_eq!(&full[field], value, "{field}");
        }
    }

    #[test]
    fn payloads_are_stored_like_record_values() {
        let converted = jobs(r#"{"name":"email","payload":{"to": "a", "n": 1.50}}"#).unwrap();
        assert_eq!(converted[0].name, "email");
        assert_eq!(converted[0].payload, Bytes::from(r#"{"to":"a","n":1.50}"#));
        let payload = |body: &str| jobs(body).unwrap().remove(0).payload;
        assert_eq!(payload(r#"{"name":"n","payload":"text"}"#), "text");
        assert_eq!(payload(r#"{"name":"n","payload":null}"#), "");
        assert_eq!(
            payload(r#"{"name":"n","payload_base64":"AP8="}"#),
            &b"\x00\xff"[..]
        );
    }

    #[test]
    fn a_batch_converts_in_order_and_refuses_mixed_fields() {
        let converted = jobs(r#"{"jobs":[{"name":"a"},{"name":"b","priority":9}]}"#).unwrap();
        let names: Vec<&str> = converted.iter().map(|job| job.name.as_str()).collect();
        assert_eq!(names, vec!["a", "b"]);
        assert_eq!(converted[1].priority, 9);
        assert_eq!(
            jobs(r#"{"jobs":[],"name":"x"}"#).unwrap_err().code(),
            "bad_request"
        );
    }

    #[test]
    fn out_of_range_settings_are_bad_requests_naming_the_job() {
        for second in [
            r#"{"name":"n","priority":10}"#,
            r#"{"name":"n","max_attempts":0}"#,
            r#"{"name":"n","timeout_ms":0}"#,
            r#"{"name":"n","delay_ms":999999999999999}"#,
            r#"{"name":"n","payload":"a","payload_base64":"YQ=="}"#,
            r#"{"name":"n","backoff":{"kind":"fixed","delay_ms":999999999999999}}"#,
            r#"{"name":"n","unique_key":""}"#,
            r#"{"name":""}"#,
            r#"{}"#,
        ] {
            let body = format!(r#"{{"jobs":[{{"name":"ok"}},{second}]}}"#);
            let body = body.as_str();
            let error = jobs(body).unwrap_err();
            assert_eq!(error.code(), "bad_request", "{body}");
            assert!(error.to_string().starts_with("jobs[1]: "), "{error}");
        }
    }

    #[test]
    fn payload_renders_as_json_then_text_then_base64() {
        let render = |payload: &[u8]| {
            serde_json::to_value(JobOutput::new(&job_with_payload(payload))).unwrap()
        };
        let rendered = render(br#"{"b":1,"a":2}"#);
        assert_eq!(rendered["payload"], serde_json::json!({"b": 1, "a": 2}));
        assert_eq!(rendered["status"], "waiting");
        assert_eq!(rendered["id"], "j1");
        assert_eq!(render(b"plain text")["payload"], "plain text");
        assert_eq!(render(b"")["payload"], serde_json::Value::Null);
        let binary = render(&[0xff, 0x00]);
        assert_eq!(binary["payload"], serde_json::Value::Null);
        assert_eq!(binary["payload_base64"], "/wA=");
    }

    #[test]
    fn a_json_payload_keeps_its_text_exactly() {
        let job = job_with_payload(br#"{"z":1.50,"a":[true]}"#);
        let text = serde_json::to_string(&JobOutput::new(&job)).unwrap();
        assert!(
            text.contains(r#""payload":{"z":1.50,"a":[true]}"#),
            "{text}"
        );
    }

    #[test]
    fn oversized_documents_are_refused_before_parsing() {
        let big = format!("\"{}\"", "x".repeat(JOB_DOCUMENT_BYTES_MAX));
        let raw = RawValue::from_string(big).unwrap();
        assert_eq!(
            job_document("result", &raw).unwrap_err().code(),
            "message_too_large"
        );
        let raw = RawValue::from_string("{\"p\":50}".into()).unwrap();
        assert_eq!(
            job_document("progress", &raw).unwrap(),
            serde_json::json!({"p": 50})
        );
    }
}
