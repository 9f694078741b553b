//! A dead letter's history, kept in its headers.
//!
//! The newest death is the plain group `omnibus.dlq.<field>` (`reason`, `attempts`,
//! `last_error`, `source`, `source_offset`, `time_ms`, and `exchange` / `routing_key` when
//! the message had them), which is what the CLI, HTTP, redrive and the jobs layer read. A
//! message dead-lettered again — routed on through a dead-letter exchange and dying in the
//! next queue — moves that group into the history, `omnibus.dlq.history.<n>.<field>` with a
//! `count`, `n` = 1 for the oldest, before the new plain group is written. The log cannot hold
//! one header name twice in a record (the storage codec keeps the last value), hence the
//! numbered names.
//!
//! As RabbitMQ's `x-death` does, the history keeps one group per (source, reason): a death
//! like an earlier one raises that group's `count` and makes it the newest, keeping its first
//! time, exchange and routing key. It is bounded at [`HISTORY_MAX`] groups (the oldest go), so
//! a message looping through a retry cycle for ever does not grow without bound. The first
//! death's source, reason and exchange are also kept apart (`omnibus.dlq.first.<field>`),
//! since merging may move it.

use bytes::Bytes;
use omnibus_types::{Header, Record};

use crate::exchanges::{EXCHANGE_HEADER, ROUTING_KEY_HEADER};

/// The plain (newest) group's prefix.
pub const DEATH_PREFIX: &str = "omnibus.dlq.";
/// The earlier groups' prefix: `omnibus.dlq.history.<n>.<field>`.
pub const HISTORY_PREFIX: &str = "omnibus.dlq.history.";
/// The first death's fields, written once and never merged away (AMQP's
/// `x-first-death-*`): `omnibus.dlq.first.<field>`.
pub const FIRST_PREFIX: &str = "omnibus.dlq.first.";
/// Earlier deaths kept.
pub const HISTORY_MAX: usize = 12;

/// One death: its fields in order (`reason`, `source`, …) and how many times it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Death {
    pub fields: Vec<(String, Bytes)>,
    pub count: u64,
}

impl Death {
    pub fn field(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value.as_ref())
    }

    fn same_place(&self, other: &Death) -> bool {
        self.field("source") == other.field("source")
            && self.field("reason") == other.field("reason")
    }
}

/// A death about to be recorded.
pub(crate) struct Dying<'a> {
    pub reason: &'a str,
    pub attempts: u32,
    pub last_error: &'a str,
    /// The queue it dies in.
    pub source: &'a str,
    /// Its offset in that queue; `None` for a message the queue refused (never in it).
    pub offset: Option<u64>,
    pub now_ms: i64,
}

/// Turns `record` into its dead letter: the death's fields as the new plain group (the
/// exchange and routing key the message had, when it had them, for AMQP's x-death), the
/// time, no subject.
pub(crate) fn mark_death(record: &mut Record, dying: Dying<'_>) {
    let own = |name: &str| {
        record
            .headers
            .iter()
            .find(|h| h.name == name)
            .map(|h| h.value.clone())
    };
    let (exchange, routing_key) = (own(EXCHANGE_HEADER), own(ROUTING_KEY_HEADER));
    let text = |value: String| Bytes::from(value);
    let mut fields = vec![
        ("reason", text(dying.reason.to_string())),
        ("attempts", text(dying.attempts.to_string())),
        ("last_error", text(dying.last_error.to_string())),
        ("source", text(dying.source.to_string())),
    ];
    if let Some(offset) = dying.offset {
        fields.push(("source_offset", text(offset.to_string())));
    }
    // Kept with the death, not only as the record's timestamp: a dead letter routed on and
    // dead-lettered again keeps every earlier death's time.
    fields.push(("time_ms", text(dying.now_ms.to_string())));
    if let Some(exchange) = exchange {
        fields.push(("exchange", exchange));
    }
    if let Some(routing_key) = routing_key {
        fields.push(("routing_key", routing_key));
    }
    record_death(&mut record.headers, fields);
    record.timestamp_ms = dying.now_ms;
    record.subject = String::new();
}

/// Every death recorded in `headers`, oldest first (the history, then the plain group).
pub fn deaths(headers: &[Header]) -> Vec<Death> {
    let mut history: Vec<(u32, Death)> = Vec::new();
    let mut newest = Death {
        fields: Vec::new(),
        count: 1,
    };
    for header in headers {
        if header.name.starts_with(FIRST_PREFIX) {
            continue;
        }
        if let Some(rest) = header.name.strip_prefix(HISTORY_PREFIX) {
            let Some((n, field)) = rest.split_once('.') else {
                continue;
            };
            let Ok(n) = n.parse::<u32>() else { continue };
            let index = match history.iter().position(|(m, _)| *m == n) {
                Some(index) => index,
                None => {
                    history.push((
                        n,
                        Death {
                            fields: Vec::new(),
                            count: 1,
                        },
                    ));
                    history.len() - 1
                }
            };
            let death = &mut history[index].1;
            if field == "count" {
                death.count = std::str::from_utf8(&header.value)
                    .ok()
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(1);
            } else {
                death.fields.push((field.to_string(), header.value.clone()));
            }
        } else if let Some(field) = header.name.strip_prefix(DEATH_PREFIX) {
            newest
                .fields
                .push((field.to_string(), header.value.clone()));
        }
    }
    history.sort_by_key(|(n, _)| *n);
    let mut all: Vec<Death> = history.into_iter().map(|(_, death)| death).collect();
    if newest.field("reason").is_some() {
        all.push(newest);
    }
    all
}

/// The first death recorded in `headers`, as it was (count 1).
pub fn first_death(headers: &[Header]) -> Option<Death> {
    let fields: Vec<(String, Bytes)> = headers
        .iter()
        .filter_map(|h| {
            let field = h.name.strip_prefix(FIRST_PREFIX)?;
            Some((field.to_string(), h.value.clone()))
        })
        .collect();
    (!fields.is_empty()).then_some(Death { fields, count: 1 })
}

/// Records a new death in `headers`: the plain group it had joins the history, and
/// `fields` become the plain group (and the first death's, if it is the first).
pub fn record_death(headers: &mut Vec<Header>, fields: Vec<(&str, Bytes)>) {
    let mut history = deaths(headers);
    let first = first_death(headers).is_none() && history.is_empty();
    headers.retain(|h| !h.name.starts_with(DEATH_PREFIX) || h.name.starts_with(FIRST_PREFIX));
    if first {
        for (field, value) in &fields {
            if matches!(*field, "source" | "reason" | "exchange") {
                headers.push(Header {
                    name: format!("{FIRST_PREFIX}{field}"),
                    value: value.clone(),
                });
            }
        }
    }
    // Merge like places: the latest of each (source, reason) stays, with the counts summed and
    // the first one's fields.
    let mut merged: Vec<Death> = Vec::with_capacity(history.len());
    for death in history.drain(..) {
        match merged.iter().position(|m| m.same_place(&death)) {
            Some(index) => {
                let mut earlier = merged.remove(index);
                earlier.count += death.count;
                merged.push(earlier);
            }
            None => merged.push(death),
        }
    }
    if merged.len() > HISTORY_MAX {
        merged.drain(..merged.len() - HISTORY_MAX);
    }
    for (index, death) in merged.iter().enumerate() {
        let n = index + 1;
        for (field, value) in &death.fields {
            headers.push(Header {
                name: format!("{HISTORY_PREFIX}{n}.{field}"),
                value: value.clone(),
            });
        }
        headers.push(Header {
            name: format!("{HISTORY_PREFIX}{n}.count"),
            value: Bytes::from(death.count.to_string()),
        });
    }
    for (field, value) in fields {
        headers.push(Header {
            name: format!("{DEATH_PREFIX}{field}"),
            value,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn die(headers: &mut Vec<Header>, source: &str, reason: &str, time: &str) {
        record_death(
            headers,
            vec![
                ("reason", Bytes::from(reason.to_string())),
                ("source", Bytes::from(source.to_string())),
                ("time_ms", Bytes::from(time.to_string())),
            ],
        );
    }

    fn summary(headers: &[Header]) -> Vec<(String, String, String, u64)> {
        deaths(headers)
            .iter()
            .map(|d| {
                let text =
                    |f: &str| String::from_utf8_lossy(d.field(f).unwrap_or_default()).into_owned();
                (text("source"), text("reason"), text("time_ms"), d.count)
            })
            .collect()
    }

    #[test]
    fn each_death_is_kept_oldest_first_with_the_newest_under_the_plain_names() {
        let mut headers = vec![Header {
            name: "own".into(),
            value: Bytes::from_static(b"kept"),
        }];
        die(&mut headers, "work", "rejected", "1");
        die(&mut headers, "retry", "expired", "2");
        assert_eq!(
            summary(&headers),
            vec![
                ("work".into(), "rejected".into(), "1".into(), 1),
                ("retry".into(), "expired".into(), "2".into(), 1),
            ]
        );
        assert_eq!(headers[0].name, "own");
        let plain: Vec<_> = headers
            .iter()
            .filter(|h| h.name == "omnibus.dlq.source")
            .map(|h| h.value.clone())
            .collect();
        assert_eq!(
            plain,
            vec![Bytes::from_static(b"retry")],
            "one plain group: the newest"
        );
        let mut names: Vec<_> = headers.iter().map(|h| h.name.clone()).collect();
        names.sort();
        names.dedup();
        assert_eq!(
            names.len(),
            headers.len(),
            "no header name twice: {names:?}"
        );
    }

    #[test]
    fn a_death_like_an_earlier_one_raises_its_count_and_keeps_its_first_time() {
        let mut headers = Vec::new();
        for round in 0..3 {
            die(&mut headers, "work", "rejected", &format!("w{round}"));
            die(&mut headers, "retry", "expired", &format!("r{round}"));
        }
        // The newest (plain) death is one; the history holds the earlier ones merged.
        assert_eq!(
            summary(&headers),
            vec![
                ("retry".into(), "expired".into(), "r0".into(), 2),
                ("work".into(), "rejected".into(), "w0".into(), 3),
                ("retry".into(), "expired".into(), "r2".into(), 1),
            ]
        );
    }

    proptest::proptest! {
        /// Headers are the producer's to choose (an HTTP enqueue may name any): whatever
        /// `omnibus.dlq.*` headers a message arrives with, reading them never panics and a
        /// death recorded on top leaves a bounded history with the new death newest.
        #[test]
        fn any_headers_read_without_panic_and_stay_bounded(
            names in proptest::collection::vec(
                proptest::prop_oneof![
                    "omnibus\\.dlq\\.history\\.[0-9]{0,12}\\.(reason|source|count|x)",
                    "omnibus\\.dlq\\.(reason|source|first\\.source|history\\.|history\\.x)",
                    "[a-z.]{0,12}",
                ],
                0..64,
            ),
            values in proptest::collection::vec("[a-z0-9]{0,6}", 64),
        ) {
            let mut headers: Vec<Header> = names
                .iter()
                .zip(values.iter())
                .map(|(name, value)| Header {
                    name: name.clone(),
                    value: Bytes::from(value.clone()),
                })
                .collect();
            let before = deaths(&headers);
            let _ = first_death(&headers);
            die(&mut headers, "q", "rejected", "1");
            let after = deaths(&headers);
            proptest::prop_assert!(after.len() <= HISTORY_MAX + 1);
            proptest::prop_assert!(after.len() <= before.len() + 1);
            let newest = after.last().unwrap();
            proptest::prop_assert_eq!(newest.field("source"), Some(&b"q"[..]));
            proptest::prop_assert_eq!(newest.count, 1);
        }
    }

    #[test]
    fn the_history_is_bounded() {
        let mut headers = Vec::new();
        for i in 0..(HISTORY_MAX + 10) {
            die(&mut headers, &format!("q{i}"), "rejected", &i.to_string());
        }
        let all = deaths(&headers);
        assert_eq!(all.len(), HISTORY_MAX + 1);
        assert_eq!(all.last().unwrap().field("source"), Some(&b"q21"[..]));
        assert_eq!(all[0].field("source"), Some(&b"q9"[..]), "the oldest went");
        let first = first_death(&headers).unwrap();
        assert_eq!(first.field("source"), Some(&b"q0"[..]), "the first stays");
    }
}
