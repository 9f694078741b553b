use std::sync::Arc;

use bytes::Bytes;
use proptest::prelude::*;

use super::super::{LiveMessage, LiveRouter, Mailbox, MailboxLimits, SubscriptionHandle};
use crate::router::strategies;

const ROOMY: MailboxLimits = MailboxLimits {
    messages_max: 10_000,
    bytes_max: 10 << 20,
};

fn message(subject: &str, payload: &str) -> Arc<LiveMessage> {
    Arc::new(LiveMessage {
        subject: subject.to_string(),
        reply: None,
        headers: Vec::new(),
        payload: Bytes::copy_from_slice(payload.as_bytes()),
        status: None,
        appended: false,
    })
}

/// (token, payload) of every delivery waiting in `mailbox`, oldest first.
fn taken(mailbox: &Mailbox) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    mailbox.take(&mut out, usize::MAX);
    out.into_iter()
        .map(|d| {
            (
                d.token,
                String::from_utf8_lossy(&d.message.payload).into_owned(),
            )
        })
        .collect()
}

/// One router with three subscribers: `patterns` (pattern, queue group, subscriber) subscribed
/// in order, the second subscriber without echo.
struct Setup {
    router: Arc<LiveRouter>,
    mailboxes: Vec<Arc<Mailbox>>,
    _handles: Vec<SubscriptionHandle>,
}

fn setup(patterns: &[(String, Option<&str>, usize)]) -> Setup {
    let router = Arc::new(LiveRouter::new());
    let mailboxes: Vec<Arc<Mailbox>> = (0..3).map(|n| router.mailbox(n != 1, ROOMY)).collect();
    let handles = patterns
        .iter()
        .enumerate()
        .map(|(token, (pattern, group, owner))| {
            router
                .subscribe(&mailboxes[*owner], pattern, *group, token as u64)
                .unwrap()
        })
        .collect();
    Setup {
        router,
        mailboxes,
        _handles: handles,
    }
}

/// Two tokens and patterns of at most two (before a `>`): batches meet many subscriptions.
fn token() -> impl Strategy<Value = String> + Clone {
    strategies::token_of(&["a", "b"])
}

fn pattern() -> impl Strategy<Value = String> {
    strategies::pattern_of(token(), 2)
}

fn subscriptions() -> impl Strategy<Value = Vec<(String, Option<&'static str>, usize)>> {
    let group = prop_oneof![3 => Just(None), 1 => Just(Some("g")), 1 => Just(Some("h"))];
    proptest::collection::vec((pattern(), group, 0..3usize), 1..12)
}

fn subjects() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(
        proptest::collection::vec(token(), 1..4).prop_map(|t| t.join(".")),
        1..40,
    )
}

proptest! {
    /// A run routed in one call reaches every mailbox with exactly what one publish per
    /// message delivers, in the same order: plain subscriptions, queue-group turns, echo.
    #[test]
    fn publish_many_delivers_what_single_publishes_deliver(
        patterns in subscriptions(),
        subjects in subjects(),
        origin in 0..3usize,
    ) {
        let single = setup(&patterns);
        let batched = setup(&patterns);
        let messages: Vec<Arc<LiveMessage>> = subjects
            .iter()
            .enumerate()
            .map(|(n, subject)| message(subject, &n.to_string()))
            .collect();
        let from = Some(single.mailboxes[origin].id());
        let mut expected = super::super::Routed::default();
        for message in &messages {
            let routed = single.router.publish(message.clone(), from);
            expected.matched += routed.matched;
        }
        let routed = batched
            .router
            .publish_many(messages.clone(), Some(batched.mailboxes[origin].id()));
        prop_assert_eq!(routed.matched, expected.matched);
        for (one, many) in single.mailboxes.iter().zip(&batched.mailboxes) {
            prop_assert_eq!(taken(one), taken(many));
        }
    }

    /// The same for answers to unique inboxes ([`LiveRouter::publish_once_many`]), queue
    /// groups among them.
    #[test]
    fn publish_once_many_delivers_what_single_publishes_deliver(
        patterns in subscriptions(),
        subjects in subjects(),
    ) {
        let single = setup(&patterns);
        let batched = setup(&patterns);
        let messages: Vec<Arc<LiveMessage>> = subjects
            .iter()
            .enumerate()
            .map(|(n, subject)| message(subject, &n.to_string()))
            .collect();
        for message in &messages {
            single.router.publish_once(message.clone(), None);
        }
        batched.router.publish_once_many(messages.clone(), None);
        for (one, many) in single.mailboxes.iter().zip(&batched.mailboxes) {
            prop_assert_eq!(taken(one), taken(many));
        }
    }
}

#[test]
fn a_run_of_answers_to_unique_inboxes_leaves_the_match_cache_empty() {
    let router = Arc::new(LiveRouter::new());
    let mailbox = router.mailbox(true, ROOMY);
    let _inbox = router.subscribe(&mailbox, "_INBOX.abc.*", None, 7).unwrap();
    let answers = (0..100).map(|n| message(&format!("_INBOX.abc.{n}"), "ack"));
    let routed = router.publish_once_many(answers, None);
    assert_eq!((routed.matched, routed.dropped), (100, 0));
    assert_eq!(taken(&mailbox).len(), 100);
    assert_eq!(router.cached_subjects(), 0);
    // A run on one subject is looked up (and cached) once.
    let stored = (0..100).map(|n| message("orders.created", &n.to_string()));
    router.publish_many(stored, None);
    assert_eq!(router.cached_subjects(), 1);
}

#[test]
fn a_run_past_a_mailbox_bound_drops_the_rest_for_that_mailbox_only() {
    let router = Arc::new(LiveRouter::new());
    let small = router.mailbox(
        true,
        MailboxLimits {
            messages_max: 3,
            bytes_max: 1 << 20,
        },
    );
    let roomy = router.mailbox(true, ROOMY);
    let _small = router.subscribe(&small, "orders.*", None, 1).unwrap();
    let _roomy = router.subscribe(&roomy, "orders.*", None, 2).unwrap();
    let run = (0..5).map(|n| message("orders.created", &n.to_string()));
    let routed = router.publish_many(run, None);
    assert_eq!((routed.matched, routed.dropped), (10, 2));
    assert!(
        small.is_slow(),
        "the subscriber that fell behind is cut off"
    );
    assert!(!roomy.is_slow());
    assert_eq!(taken(&roomy).len(), 5);
    assert_eq!(
        taken(&small),
        vec![(1, "0".into()), (1, "1".into()), (1, "2".into())],
        "it kept what fitted, in order"
    );
    let routed = router.publish_many([message("orders.created", "5")], None);
    assert_eq!(routed.dropped, 1, "a slow mailbox takes nothing more");
}

#[test]
fn nothing_is_routed_while_no_subscription_exists() {
    let router = Arc::new(LiveRouter::new());
    let routed = router.publish_many([message("a", "x")], None);
    assert_eq!(routed, super::super::Routed::default());
    let routed = router.publish_once_many([message("a", "x")], None);
    assert_eq!(routed, super::super::Routed::default());
}
