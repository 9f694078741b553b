//! A durable queue's declaration, kept with the queue. What the engine has no field for —
//! `durable` and `auto_delete` as declared, and the arguments only this door acts on
//! (`x-expires`, `x-max-priority`, `x-queue-type`, `x-single-active-consumer`) — is stored
//! in the door settings of the queue's stream (`amqp.<name>`, deleted with it) when the door
//! creates the queue, and brought back when the door starts. So after a restart a
//! re-declaration is compared as before (`equivalence.rs`), a single-active-consumer queue
//! still delivers to one consumer at a time, and the `x-expires` clock runs again from the
//! start (RabbitMQ restarts it at boot too). Transient queues are not stored: they do not
//! survive a start.

use std::collections::BTreeMap;
use std::sync::Arc;

use omnibus_engine::{Engine, EngineError};

use super::equivalence::DOOR_ARGUMENTS;
use super::{expiry, QueueOwner, Shared};

const DECLARED: &str = "amqp.declared";
const DURABLE: &str = "amqp.durable";
const AUTO_DELETE: &str = "amqp.auto_delete";
const ARGUMENT_PREFIX: &str = "amqp.argument.";

/// Stores what `owner` (just declared by this door) says beyond the engine's queue.
pub(crate) async fn store(
    engine: &Engine,
    queue: &str,
    owner: &QueueOwner,
) -> Result<(), EngineError> {
    let mut settings = engine.stream_door_settings(queue)?;
    settings.retain(|name, _| !name.starts_with("amqp."));
    settings.insert(DECLARED.into(), "true".into());
    settings.insert(DURABLE.into(), owner.durable.to_string());
    settings.insert(AUTO_DELETE.into(), owner.auto_delete.to_string());
    for (name, value) in &owner.door_arguments {
        settings.insert(format!("{ARGUMENT_PREFIX}{name}"), value.clone());
    }
    engine.set_stream_door_settings(queue, settings).await
}

/// The stored declaration of `queue`, if this door made it.
fn load(settings: &BTreeMap<String, String>) -> Option<QueueOwner> {
    if settings.get(DECLARED).map(String::as_str) != Some("true") {
        return None;
    }
    let flag = |name: &str| settings.get(name).map(String::as_str) == Some("true");
    let door_arguments: BTreeMap<&'static str, String> = DOOR_ARGUMENTS
        .iter()
        .filter_map(|&name| {
            let value = settings.get(&format!("{ARGUMENT_PREFIX}{name}"))?;
            Some((name, value.clone()))
        })
        .collect();
    let single_active = door_arguments
        .get("x-single-active-consumer")
        .map(String::as_str)
        == Some("true");
    Some(QueueOwner {
        declared_here: true,
        durable: flag(DURABLE),
        auto_delete: flag(AUTO_DELETE),
        single_active: single_active.then(Arc::default),
        door_arguments,
        ..QueueOwner::default()
    })
}

/// Brings back the declarations of every queue this door made (at the door's start).
pub(crate) fn restore_all(shared: &Arc<Shared>) {
    let mut expiring = Vec::new();
    for info in shared.engine.list_queues() {
        let queue = info.config.name;
        let owner = match shared.engine.stream_door_settings(&queue) {
            Ok(settings) => load(&settings),
            Err(error) => {
                tracing::warn!(queue, "reading an AMQP queue's declaration failed: {error}");
                None
            }
        };
        let Some(owner) = owner else { continue };
        if let Some(ms) = owner
            .door_arguments
            .get("x-expires")
            .and_then(|ms| ms.parse::<u64>().ok())
            .filter(|ms| *ms > 0)
        {
            expiring.push((queue.clone(), ms));
        }
        shared
            .owners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(queue, owner);
    }
    for (queue, ms) in expiring {
        expiry::watch(shared, &queue, ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_declaration_loads_back_and_other_doors_settings_are_not_one() {
        let mut settings = BTreeMap::new();
        assert!(load(&settings).is_none());
        settings.insert("redis.group".to_string(), "true".to_string());
        assert!(load(&settings).is_none(), "another door's settings");
        settings.insert(DECLARED.into(), "true".into());
        settings.insert(DURABLE.into(), "true".into());
        settings.insert(AUTO_DELETE.into(), "false".into());
        settings.insert(
            format!("{ARGUMENT_PREFIX}x-single-active-consumer"),
            "true".into(),
        );
        settings.insert(format!("{ARGUMENT_PREFIX}x-expires"), "60000".into());
        settings.insert(format!("{ARGUMENT_PREFIX}x-unknown"), "1".into());
        let owner = load(&settings).unwrap();
        assert!(owner.declared_here && owner.durable && !owner.auto_delete);
        assert!(owner.single_active.is_some());
        assert_eq!(
            owner.door_arguments.into_iter().collect::<Vec<_>>(),
            vec![
                ("x-expires", "60000".to_string()),
                ("x-single-active-consumer", "true".to_string())
            ]
        );
    }
}
