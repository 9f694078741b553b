//! Redriving one dead letter, then all of them: nothing twice, and the marks survive a
//! restart.

use omnibus_types::ErrorCode;

use super::failure_tests::{message, spec};
use super::*;
use crate::EngineConfig;

async fn open(dir: &std::path::Path) -> Arc<Engine> {
    Engine::open(EngineConfig::new(dir)).await.unwrap()
}

fn values(deliveries: &[Delivery]) -> Vec<String> {
    let mut values: Vec<String> = deliveries
        .iter()
        .map(|d| String::from_utf8(d.record.value.clone().unwrap().to_vec()).unwrap())
        .collect();
    values.sort();
    values
}

/// The dead-letter offset of the letter whose value is `value`.
async fn letter_offset(engine: &Engine, value: &str) -> u64 {
    let letters = engine.dead_letters("work", 0, 100).await.unwrap();
    letters
        .records
        .iter()
        .find(|record| record.value.as_deref() == Some(value.as_bytes()))
        .map(|record| record.offset)
        .expect("the letter is in the dead-letter stream")
}

#[tokio::test]
async fn one_redriven_letter_is_not_redriven_again_by_a_redrive_of_all() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path()).await;
    engine.create_queue(spec("work")).await.unwrap();
    engine
        .enqueue("work", vec![message("a"), message("b"), message("c")])
        .await
        .unwrap();
    for delivery in engine.receive("work", "w", 10, 0).await.unwrap() {
        engine
            .term("work", delivery.offset, delivery.attempt, "bad input")
            .await
            .unwrap();
    }
    assert_eq!(engine.queue_info("work").unwrap().dead_letter_depth, 3);

    let b = letter_offset(&engine, "b").await;
    engine.redrive_dead_letter("work", b).await.unwrap();
    let again = engine.redrive_dead_letter("work", b).await;
    assert!(
        matches!(again, Err(EngineError::BadRequest(_))),
        "{again:?}"
    );
    let beyond = engine.redrive_dead_letter("work", 99).await.unwrap_err();
    assert_eq!(beyond.code(), ErrorCode::OffsetOutOfRange, "{beyond:?}");
    assert_eq!(engine.queue_info("work").unwrap().dead_letter_depth, 2);
    let redriven = engine.receive("work", "w", 10, 0).await.unwrap();
    assert_eq!(values(&redriven), vec!["b"]);
    assert_eq!(redriven[0].attempt, 1, "fresh attempts");
    engine
        .ack("work", redriven[0].offset, redriven[0].attempt)
        .await
        .unwrap();

    // The mark is durable: a restarted broker still knows b was redriven.
    engine.shutdown().await.unwrap();
    drop(engine);
    let engine = open(dir.path()).await;
    assert_eq!(engine.queue_info("work").unwrap().dead_letter_depth, 2);
    assert_eq!(
        engine.redrive_state("work").unwrap().redriven_offsets,
        vec![b]
    );

    assert_eq!(
        engine.redrive("work", 100).await.unwrap(),
        2,
        "a and c only"
    );
    let redriven = engine.receive("work", "w", 10, 0).await.unwrap();
    assert_eq!(values(&redriven), vec!["a", "c"]);
    assert_eq!(engine.queue_info("work").unwrap().dead_letter_depth, 0);
    let state = engine.redrive_state("work").unwrap();
    assert_eq!(state.redriven_below, 3);
    assert!(state.redriven_offsets.is_empty(), "passed marks are gone");
    let a = letter_offset(&engine, "a").await;
    let after_all = engine.redrive_dead_letter("work", a).await;
    assert!(
        matches!(after_all, Err(EngineError::BadRequest(_))),
        "{after_all:?}"
    );
}
