//! Alarms: the current alarms, their rules, and how webhooks are doing.
//!
//! Rules posted here are the engine's API rules: durable, and hiding a default or config rule
//! of the same name until deleted. A rule the engine refuses is a 400 `invalid_config` whose
//! message names the field; a body that is not a rule (an unknown field, a wrong type) is a
//! 400 `bad_request` from the JSON reader.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use omnibus_engine::{Alert, AlertRule, AlertState, WebhookStatus};
use omnibus_types::ErrorCode;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::extract::{JsonBody, PathParams, QueryParams};
use crate::router::AppState;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsQuery {
    /// `firing` or `resolved`; both when absent.
    state: Option<AlertState>,
}

#[derive(Debug, Serialize)]
pub struct AlertList {
    alerts: Vec<Alert>,
}

#[derive(Debug, Serialize)]
pub struct RuleList {
    rules: Vec<AlertRule>,
}

#[derive(Debug, Serialize)]
pub struct WebhookList {
    webhooks: Vec<WebhookStatus>,
}

/// `GET /v1/alerts[?state=firing|resolved]`: newest transition first.
pub async fn list_alerts(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<AlertsQuery>,
) -> Json<AlertList> {
    let firing_only = query.state == Some(AlertState::Firing);
    let alerts = state
        .engine
        .alerts(firing_only)
        .into_iter()
        .filter(|alert| query.state.is_none_or(|wanted| alert.state == wanted))
        .collect();
    Json(AlertList { alerts })
}

/// `GET /v1/alerts/rules`
pub async fn list_rules(State(state): State<AppState>) -> Json<RuleList> {
    Json(RuleList {
        rules: state.engine.alert_rules(),
    })
}

/// `POST /v1/alerts/rules`: creates or replaces the API rule of that name.
pub async fn put_rule(
    State(state): State<AppState>,
    JsonBody(rule): JsonBody<AlertRule>,
) -> Result<Json<AlertRule>, ApiError> {
    Ok(Json(state.engine.put_alert_rule(rule).await?))
}

/// `DELETE /v1/alerts/rules/{name}`: deletes an API rule (a default or config rule of the
/// same name applies again). Default and config rules themselves are turned off by posting
/// them with `"enabled": false`.
pub async fn delete_rule(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    if state.engine.delete_alert_rule(&name).await? {
        return Ok(StatusCode::NO_CONTENT);
    }
    Err(ApiError::Rejected {
        status: StatusCode::NOT_FOUND,
        code: ErrorCode::BadRequest,
        message: format!(
            "no alert rule {name:?} was created over the API (default and config rules are \
             turned off with \"enabled\": false)"
        ),
    })
}

/// `GET /v1/alerts/webhooks`: deliveries, failures and drops per configured webhook.
pub async fn list_webhooks(State(state): State<AppState>) -> Json<WebhookList> {
    Json(WebhookList {
        webhooks: state.engine.webhook_statuses(),
    })
}
