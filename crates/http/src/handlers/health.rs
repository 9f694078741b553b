//! `GET /health`: whether the broker can do its job, not only whether the process is up.
//!
//! 200 `{"status":"ok"}` when nothing is wrong. 503 `{"status":"degraded","problems":[...]}`
//! when the engine reports problems: the disk is full (or its reserve is spent), the state
//! store failed, or partitions refuse writes (each with its stream, partition and reason). A
//! load balancer or orchestrator that only looks at the status sees the broker as unready
//! while it cannot take writes; reads keep working and the problems clear by themselves once
//! the disk has room (docs/storage.md, "Full disk").

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use omnibus_engine::HealthProblem;
use serde_json::{json, Value};

use crate::router::AppState;

pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    // One statvfs and a walk over the partitions' failure flags: no disk I/O to wait on.
    let health = state.engine.health();
    if health.is_ok() {
        return (StatusCode::OK, Json(json!({"status": "ok"})));
    }
    let problems: Vec<Value> = health.problems.iter().map(problem_json).collect();
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"status": "degraded", "problems": problems})),
    )
}

fn problem_json(problem: &HealthProblem) -> Value {
    let mut value = json!({"kind": problem.kind.as_str(), "reason": problem.reason});
    if let Some(stream) = &problem.stream {
        value["stream"] = json!(stream);
    }
    if let Some(partition) = problem.partition {
        value["partition"] = json!(partition);
    }
    value
}
