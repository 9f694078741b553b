use std::sync::Arc;

use bytes::Bytes;
use omnibus_types::pattern_matches;
use proptest::prelude::*;

use super::*;
use crate::router::strategies::{pattern, token};

const ROOMY: MailboxLimits = MailboxLimits {
    messages_max: 10_000,
    bytes_max: 10 << 20,
};

fn message(subject: &str, payload: &'static str) -> Arc<LiveMessage> {
    Arc::new(LiveMessage {
        subject: subject.to_string(),
        reply: None,
        headers: Vec::new(),
        payload: Bytes::from_static(payload.as_bytes()),
        status: None,
        appended: false,
    })
}

fn tokens(mailbox: &Mailbox) -> Vec<u64> {
    let mut out = Vec::new();
    mailbox.take(&mut out, usize::MAX);
    out.into_iter().map(|delivery| delivery.token).collect()
}

#[test]
fn wildcards_match_as_nats_does_and_each_subscription_gets_its_copy() {
    let router = Arc::new(LiveRouter::new());
    let mailbox = router.mailbox(true, ROOMY);
    let _exact = router
        .subscribe(&mailbox, "orders.created", None, 1)
        .unwrap();
    let _one = router.subscribe(&mailbox, "orders.*", None, 2).unwrap();
    let _rest = router.subscribe(&mailbox, "orders.>", None, 3).unwrap();
    let _other = router.subscribe(&mailbox, "users.*", None, 4).unwrap();
    assert_eq!(
        router.publish(message("orders.created", "x"), None).matched,
        3
    );
    assert_eq!(tokens(&mailbox), vec![1, 2, 3]);
    router.publish(message("orders.created.eu", "x"), None);
    assert_eq!(
        tokens(&mailbox),
        vec![3],
        "`*` is one token, `>` one or more"
    );
    router.publish(message("orders", "x"), None);
    assert_eq!(tokens(&mailbox), Vec::<u64>::new(), "`>` needs a token");
}

#[test]
fn invalid_patterns_and_queue_groups_are_refused() {
    let router = Arc::new(LiveRouter::new());
    let mailbox = router.mailbox(true, ROOMY);
    for pattern in ["", "a..b", "a.>.b", ".a", "a.", "a b"] {
        assert!(
            router.subscribe(&mailbox, pattern, None, 1).is_err(),
            "{pattern:?} is not a pattern"
        );
    }
    assert!(router.subscribe(&mailbox, "a", Some(""), 1).is_err());
    assert!(router.subscribe(&mailbox, "a", Some("x y"), 1).is_err());
    assert!(!router.is_active(), "nothing was subscribed");
}

#[test]
fn a_wildcard_inside_a_token_is_a_literal_character() {
    let router = Arc::new(LiveRouter::new());
    let mailbox = router.mailbox(true, ROOMY);
    let _literal = router.subscribe(&mailbox, "a.b*", None, 7).unwrap();
    router.publish(message("a.bc", "x"), None);
    assert_eq!(
        tokens(&mailbox),
        Vec::<u64>::new(),
        "`b*` is not a wildcard"
    );
    router.publish(message("a.b*", "x"), None);
    assert_eq!(tokens(&mailbox), vec![7]);
}

#[test]
fn a_queue_group_shares_messages_in_turn_while_plain_subscribers_get_all() {
    let router = Arc::new(LiveRouter::new());
    let first = router.mailbox(true, ROOMY);
    let second = router.mailbox(true, ROOMY);
    let plain = router.mailbox(true, ROOMY);
    let _a = router
        .subscribe(&first, "jobs.*", Some("workers"), 1)
        .unwrap();
    let _b = router
        .subscribe(&second, "jobs.>", Some("workers"), 2)
        .unwrap();
    let _c = router.subscribe(&plain, "jobs.*", None, 3).unwrap();
    for _ in 0..10 {
        assert_eq!(router.publish(message("jobs.run", "x"), None).matched, 2);
    }
    assert_eq!(first.pending().0, 5);
    assert_eq!(second.pending().0, 5);
    assert_eq!(plain.pending().0, 10);
}

#[test]
fn a_full_mailbox_turns_slow_drops_for_itself_only_and_stays_bounded() {
    let router = Arc::new(LiveRouter::new());
    let limits = MailboxLimits {
        messages_max: 3,
        bytes_max: 1 << 20,
    };
    let slow = router.mailbox(true, limits);
    let healthy = router.mailbox(true, ROOMY);
    let _s = router.subscribe(&slow, "t", None, 1).unwrap();
    let _h = router.subscribe(&healthy, "t", None, 2).unwrap();
    for _ in 0..100 {
        router.publish(message("t", "x"), None);
    }
    assert!(slow.is_slow());
    assert_eq!(slow.pending().0, 3, "nothing past the bound was kept");
    assert!(!healthy.is_slow());
    assert_eq!(healthy.pending().0, 100);
    // The byte bound works the same way.
    let small = router.mailbox(
        true,
        MailboxLimits {
            messages_max: 1000,
            bytes_max: 10,
        },
    );
    let _b = router.subscribe(&small, "t", None, 3).unwrap();
    router.publish(message("t", "12345678"), None);
    assert!(!small.is_slow());
    let routed = router.publish(message("t", "12345678"), None);
    assert!(small.is_slow());
    assert_eq!(routed.dropped, 2, "the slow mailbox and the byte-bound one");
}

#[test]
fn echo_off_keeps_a_subscriber_from_its_own_messages() {
    let router = Arc::new(LiveRouter::new());
    let quiet = router.mailbox(false, ROOMY);
    let loud = router.mailbox(true, ROOMY);
    let _q = router.subscribe(&quiet, "a", None, 1).unwrap();
    let _l = router.subscribe(&loud, "a", None, 2).unwrap();
    router.publish(message("a", "x"), Some(quiet.id()));
    router.publish(message("a", "x"), Some(loud.id()));
    assert_eq!(quiet.pending().0, 1, "only the other's message");
    assert_eq!(loud.pending().0, 2, "its own too");
}

#[test]
fn subscription_changes_invalidate_the_cache() {
    let router = Arc::new(LiveRouter::new());
    let mailbox = router.mailbox(true, ROOMY);
    let first = router.subscribe(&mailbox, "a.*", None, 1).unwrap();
    router.publish(message("a.b", "x"), None);
    assert_eq!(router.cached_subjects(), 1);
    let second = router.subscribe(&mailbox, "a.b", None, 2).unwrap();
    router.publish(message("a.b", "x"), None);
    assert_eq!(
        tokens(&mailbox),
        vec![1, 1, 2],
        "the new subscription is seen"
    );
    drop(first);
    router.publish(message("a.b", "x"), None);
    assert_eq!(tokens(&mailbox), vec![2], "the dropped one is gone");
    second.unsubscribe();
    assert!(!router.is_active());
    assert_eq!(router.publish(message("a.b", "x"), None).matched, 0);
}

#[test]
fn the_cache_stays_bounded_under_many_subjects() {
    let router = Arc::new(LiveRouter::with_cache_entries(32));
    let mailbox = router.mailbox(true, ROOMY);
    let _all = router.subscribe(&mailbox, ">", None, 1).unwrap();
    for index in 0..1000 {
        router.publish(message(&format!("s.{index}"), ""), None);
        assert!(router.cached_subjects() <= 32);
    }
    assert_eq!(mailbox.pending().0, 1000);
}

proptest! {
    /// Through subscribes, unsubscribes and cached lookups, every publish reaches exactly the
    /// plain subscriptions a naive matcher finds.
    #[test]
    fn deliveries_agree_with_a_naive_matcher(
        patterns in proptest::collection::vec(pattern(), 1..20),
        steps in proptest::collection::vec(
            (any::<prop::sample::Index>(), proptest::collection::vec(token(), 1..5)),
            1..40,
        ),
    ) {
        let router = Arc::new(LiveRouter::with_cache_entries(4));
        let mailbox = router.mailbox(true, ROOMY);
        let mut live: Vec<(u64, String, SubscriptionHandle)> = patterns
            .iter()
            .enumerate()
            .map(|(token, pattern)| {
                let handle = router.subscribe(&mailbox, pattern, None, token as u64).unwrap();
                (token as u64, pattern.clone(), handle)
            })
            .collect();
        for (step, (pick, subject_tokens)) in steps.into_iter().enumerate() {
            if step % 3 == 2 && !live.is_empty() {
                live.remove(pick.index(live.len()));
            }
            let subject = subject_tokens.join(".");
            router.publish(message(&subject, ""), None);
            let mut found = tokens(&mailbox);
            found.sort_unstable();
            let mut expected: Vec<u64> = live
                .iter()
                .filter(|(_, pattern, _)| pattern_matches(pattern, &subject))
                .map(|(token, _, _)| *token)
                .collect();
            expected.sort_unstable();
            prop_assert_eq!(found, expected, "subject {}", subject);
        }
    }
}

#[test]
fn publish_to_routes_by_one_subject_and_keeps_the_message_own() {
    let router = Arc::new(LiveRouter::new());
    let reader = router.mailbox(true, ROOMY);
    let other = router.mailbox(true, ROOMY);
    let _delivery = router.subscribe(&reader, "deliver.here", None, 7).unwrap();
    let _orders = router.subscribe(&other, "orders.*", None, 8).unwrap();
    assert_eq!(router.interest("deliver.here").subscriptions, 1);
    let routed = router.publish_to("deliver.here", message("orders.created", "x"), None);
    assert_eq!(routed.matched, 1);
    let mut out = Vec::new();
    reader.take(&mut out, usize::MAX);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].message.subject, "orders.created");
    assert_eq!(
        tokens(&other),
        Vec::<u64>::new(),
        "routed by the delivery subject only"
    );
    // Interest reports the fullest mailbox, so a sender can hold back.
    router.publish_to("deliver.here", message("a", "x"), None);
    router.publish_to("deliver.here", message("b", "x"), None);
    let interest = router.interest("deliver.here");
    assert_eq!(
        (interest.subscriptions, interest.pending_messages_max),
        (1, 2)
    );
    assert_eq!(router.interest("nobody.listens"), Interest::default());
}

#[test]
fn answers_to_unique_inboxes_reach_their_subscriber_without_filling_the_match_cache() {
    let router = Arc::new(LiveRouter::new());
    let mailbox = router.mailbox(true, ROOMY);
    let _inbox = router.subscribe(&mailbox, "_INBOX.abc.*", None, 7).unwrap();
    for n in 0..100 {
        let routed = router.publish_once(message(&format!("_INBOX.abc.{n}"), "ack"), None);
        assert_eq!(routed.matched, 1);
    }
    assert_eq!(tokens(&mailbox), vec![7; 100]);
    assert_eq!(router.cached_subjects(), 0);
    // A queue group still takes turns: its turn lives in the cached set.
    let other = router.mailbox(true, ROOMY);
    let _first = router
        .subscribe(&mailbox, "jobs.done", Some("g"), 8)
        .unwrap();
    let _second = router.subscribe(&other, "jobs.done", Some("g"), 9).unwrap();
    router.publish_once(message("jobs.done", "a"), None);
    router.publish_once(message("jobs.done", "b"), None);
    assert_eq!(tokens(&mailbox), vec![8]);
    assert_eq!(tokens(&other), vec![9]);
}
