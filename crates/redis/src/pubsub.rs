//! Pub/sub through the engine's live router, so a Redis `PUBLISH orders.created` reaches NATS
//! subscribers of `orders.created` and the reverse.
//!
//! Channel ↔ subject: a Redis channel *is* the subject of the same name, so a channel must be
//! a valid subject (UTF-8, dot-separated non-empty tokens, no spaces, no `*` or `>` token);
//! other channels are refused with an error rather than mapped out of sight. A PSUBSCRIBE glob
//! subscribes to the narrowest subject pattern that covers it — the literal tokens before its
//! first glob character, then `>` (`orders.*` → `orders.>`, `news*` → `>`) — and each message
//! is matched against the glob itself before it is delivered, so Redis's glob semantics hold
//! (`*` crosses dots, as in Redis).
//!
//! Shard channels (`SSUBSCRIBE`, `SPUBLISH`, Redis 7's sharded pub/sub) are subjects of the
//! same router too: one broker is one shard, so a shard channel is the subject of its name,
//! and what differs is only how its messages are pushed (`smessage`) and counted. (In Redis
//! the two are separate namespaces; here `PUBLISH x` also reaches `SSUBSCRIBE x`, and a NATS
//! publish reaches both.)
//!
//! Streams: what is *published* to a subject reaches Redis subscribers from any door
//! (`PUBLISH`, a NATS `PUB` or JetStream publish — captured by a stream or not — an HTTP
//! publish to a subject), but records *written to a stream by its name* — `XADD`, a Kafka
//! produce, an HTTP publish to a stream — do not, though their live copies go to the stream's
//! subject for NATS subscribers: in Redis a stream key and a pub/sub channel are apart, and
//! `SUBSCRIBE mystream` or a monitoring `PSUBSCRIBE *` hears nothing of `XADD mystream`
//! ([`LiveMessage::appended`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use omnibus_engine::keys::glob_match;
use omnibus_engine::router::SubscriptionHandle;
use omnibus_engine::router::{Delivery, LiveMessage, LivePublish, Mailbox, MailboxLimits};
use omnibus_engine::Engine;

use crate::codec::Reply;

/// Messages and bytes waiting for one subscriber before it is cut off as slow (Redis's
/// default pub/sub output limit is 32 MiB).
const MAILBOX_LIMITS: MailboxLimits = MailboxLimits {
    messages_max: 100_000,
    bytes_max: 32 * 1024 * 1024,
};

/// Whether `name` (lowercase) is one of the commands that (un)subscribe a connection.
pub(crate) fn subscribes(name: &str) -> bool {
    matches!(
        name,
        "subscribe" | "psubscribe" | "ssubscribe" | "unsubscribe" | "punsubscribe" | "sunsubscribe"
    )
}

/// What a connection subscribes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// SUBSCRIBE.
    Channel,
    /// PSUBSCRIBE.
    Pattern,
    /// SSUBSCRIBE.
    Shard,
}

impl Kind {
    fn subscribe_word(self) -> &'static str {
        match self {
            Kind::Channel => "subscribe",
            Kind::Pattern => "psubscribe",
            Kind::Shard => "ssubscribe",
        }
    }

    fn unsubscribe_word(self) -> &'static str {
        match self {
            Kind::Channel => "unsubscribe",
            Kind::Pattern => "punsubscribe",
            Kind::Shard => "sunsubscribe",
        }
    }
}

enum Target {
    Channel(Bytes),
    Pattern(Bytes),
    Shard(Bytes),
}

/// The channels and patterns this listener's clients subscribe to, with their subscriber
/// counts, for PUBSUB CHANNELS / NUMSUB / NUMPAT. Redis clients only: a NATS or AMQP
/// subscriber of the same subject is not counted (PUBLISH's answer does count it).
#[derive(Default)]
pub(crate) struct Registry {
    channels: Mutex<BTreeMap<Bytes, usize>>,
    patterns: Mutex<BTreeMap<Bytes, usize>>,
    shards: Mutex<BTreeMap<Bytes, usize>>,
}

impl Registry {
    fn map(&self, kind: Kind) -> std::sync::MutexGuard<'_, BTreeMap<Bytes, usize>> {
        let map = match kind {
            Kind::Channel => &self.channels,
            Kind::Pattern => &self.patterns,
            Kind::Shard => &self.shards,
        };
        map.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn add(&self, name: &Bytes, kind: Kind) {
        *self.map(kind).entry(name.clone()).or_insert(0) += 1;
    }

    fn remove(&self, name: &Bytes, kind: Kind) {
        let mut map = self.map(kind);
        if let Some(count) = map.get_mut(name) {
            *count -= 1;
            if *count == 0 {
                map.remove(name);
            }
        }
    }

    /// (channels, patterns, shard channels) with at least one subscriber, for INFO.
    pub(crate) fn counts(&self) -> (usize, usize, usize) {
        (
            self.map(Kind::Channel).len(),
            self.map(Kind::Pattern).len(),
            self.map(Kind::Shard).len(),
        )
    }

    /// The subscriptions other doors (NATS) hold to each subject without a wildcard: the
    /// router's count less this listener's channel and shard subscriptions, each of which is
    /// one there too. A PUBLISH reaches them, so PUBSUB counts and lists them.
    fn other_doors(&self, engine: &Engine) -> HashMap<Bytes, usize> {
        let router = engine.live_router();
        let (channels, shards) = (self.map(Kind::Channel), self.map(Kind::Shard));
        router
            .exact_subjects()
            .into_iter()
            .filter_map(|(subject, count)| {
                let subject = Bytes::from(subject);
                let ours = channels.get(&subject).copied().unwrap_or(0)
                    + shards.get(&subject).copied().unwrap_or(0);
                let others = count.saturating_sub(ours);
                (others > 0).then_some((subject, others))
            })
            .collect()
    }

    /// PUBSUB CHANNELS [pattern] / NUMSUB [channel …] / NUMPAT, and SHARDCHANNELS /
    /// SHARDNUMSUB for shard channels. A channel counts the subscribers of every door to
    /// its subject (a NATS `SUB orders.created` is one of `orders.created`'s, and a shard
    /// channel's: PUBLISH and SPUBLISH both reach it); NUMPAT counts Redis patterns only.
    pub(crate) fn command(&self, engine: &Engine, arguments: &[Bytes]) -> Reply {
        let subcommand = String::from_utf8_lossy(&arguments[0]).to_ascii_lowercase();
        let kind = if subcommand.starts_with("shard") {
            Kind::Shard
        } else {
            Kind::Channel
        };
        match (subcommand.as_str(), arguments.len()) {
            ("channels" | "shardchannels", 1 | 2) => {
                let pattern = arguments.get(1);
                let others = self.other_doors(engine);
                let mut channels: Vec<Bytes> = self.map(kind).keys().cloned().collect();
                channels.extend(others.into_keys());
                channels.sort();
                channels.dedup();
                Reply::Array(
                    channels
                        .into_iter()
                        .filter(|channel| pattern.is_none_or(|glob| glob_match(glob, channel)))
                        .map(Reply::Bulk)
                        .collect(),
                )
            }
            // A flat array of channel, count pairs in RESP3 too, as Redis answers it.
            ("numsub" | "shardnumsub", _) => {
                let others = match arguments.len() {
                    1 => HashMap::new(),
                    _ => self.other_doors(engine),
                };
                let channels = self.map(kind);
                Reply::Array(
                    arguments[1..]
                        .iter()
                        .flat_map(|channel| {
                            let count = channels.get(channel).copied().unwrap_or(0)
                                + others.get(channel).copied().unwrap_or(0);
                            [Reply::Bulk(channel.clone()), Reply::Integer(count as i64)]
                        })
                        .collect(),
                )
            }
            ("numpat", 1) => Reply::Integer(self.map(Kind::Pattern).len() as i64),
            ("help", 1) => crate::commands::help_reply(&[
                "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "CHANNELS [<pattern>]",
                "    The channels with a subscriber, those matching <pattern> if given.",
                "NUMPAT",
                "    How many pattern subscriptions there are.",
                "NUMSUB [<channel> ...]",
                "    Each channel with its subscribers (not counting patterns).",
                "SHARDCHANNELS [<pattern>]",
                "    The shard channels with a subscriber, those matching <pattern> if given.",
                "SHARDNUMSUB [<shardchannel> ...]",
                "    Each shard channel with its subscribers.",
                "HELP",
                "    Print this help.",
            ]),
            // Redis 7.0 words this one as an unknown subcommand, as it was typed.
            ("shardchannels", _) => Reply::error(format!(
                "ERR unknown subcommand or wrong number of arguments for '{}'. Try PUBSUB HELP.",
                crate::commands::printable(&arguments[0], 128)
            )),
            ("channels" | "numpat" | "help", _) => Reply::error(format!(
                "ERR wrong number of arguments for 'pubsub|{subcommand}' command"
            )),
            _ => Reply::error(format!(
                "ERR unknown subcommand '{}'. Try PUBSUB HELP.",
                crate::commands::printable(&arguments[0], 128)
            )),
        }
    }
}

/// One connection's subscriptions.
#[derive(Default)]
pub(crate) struct Subscriptions {
    registry: Option<Arc<Registry>>,
    mailbox: Option<Arc<Mailbox>>,
    channels: BTreeMap<Bytes, SubscriptionHandle>,
    patterns: BTreeMap<Bytes, SubscriptionHandle>,
    shards: BTreeMap<Bytes, SubscriptionHandle>,
    targets: HashMap<u64, Target>,
    next_token: u64,
}

impl Drop for Subscriptions {
    fn drop(&mut self) {
        if let Some(registry) = &self.registry {
            for kind in [Kind::Channel, Kind::Pattern, Kind::Shard] {
                for name in self.handles(kind).keys() {
                    registry.remove(name, kind);
                }
            }
        }
    }
}

impl Subscriptions {
    pub(crate) fn new(registry: Arc<Registry>) -> Subscriptions {
        let mut subscriptions = Subscriptions::default();
        subscriptions.registry = Some(registry);
        subscriptions
    }

    /// Every subscription (the bound, and RESP2's subscribed mode).
    pub(crate) fn count(&self) -> usize {
        self.channels.len() + self.patterns.len() + self.shards.len()
    }

    /// (channels, patterns, shard channels) of this connection, for CLIENT LIST.
    pub(crate) fn counts(&self) -> (usize, usize, usize) {
        (self.channels.len(), self.patterns.len(), self.shards.len())
    }

    /// What a confirmation of `kind` counts, as Redis does: channels and patterns together,
    /// shard channels apart.
    fn count_of(&self, kind: Kind) -> usize {
        match kind {
            Kind::Channel | Kind::Pattern => self.channels.len() + self.patterns.len(),
            Kind::Shard => self.shards.len(),
        }
    }

    fn handles(&self, kind: Kind) -> &BTreeMap<Bytes, SubscriptionHandle> {
        match kind {
            Kind::Channel => &self.channels,
            Kind::Pattern => &self.patterns,
            Kind::Shard => &self.shards,
        }
    }

    fn handles_mut(&mut self, kind: Kind) -> &mut BTreeMap<Bytes, SubscriptionHandle> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shards,
        }
    }

    pub(crate) fn mailbox(&self) -> Option<&Arc<Mailbox>> {
        self.mailbox.as_ref().filter(|_| self.count() > 0)
    }

    /// SUBSCRIBE / PSUBSCRIBE / SSUBSCRIBE: one confirmation per name.
    pub(crate) fn subscribe(
        &mut self,
        engine: &Engine,
        names: &[Bytes],
        kind: Kind,
        limit: usize,
    ) -> Vec<Reply> {
        let pattern = kind == Kind::Pattern;
        let mut replies = Vec::new();
        for name in names {
            if !self.handles(kind).contains_key(name) {
                if self.count() >= limit {
                    replies.push(Reply::error(format!(
                        "ERR a connection may hold at most {limit} subscriptions"
                    )));
                    return replies;
                }
                let subject = match if pattern {
                    glob_subject(name)
                } else {
                    channel_subject(name)
                } {
                    Ok(subject) => subject,
                    Err(reply) => {
                        replies.push(reply);
                        return replies;
                    }
                };
                let router = engine.live_router();
                let mailbox = self
                    .mailbox
                    .get_or_insert_with(|| {
                        let mailbox = router.mailbox(true, MAILBOX_LIMITS);
                        // A stream key is not a channel (module documentation).
                        mailbox.set_receives_appended(false);
                        mailbox
                    })
                    .clone();
                self.next_token += 1;
                let token = self.next_token;
                match router.subscribe(&mailbox, &subject, None, token) {
                    Ok(handle) => {
                        if let Some(registry) = &self.registry {
                            registry.add(name, kind);
                        }
                        self.handles_mut(kind).insert(name.clone(), handle);
                        let target = match kind {
                            Kind::Channel => Target::Channel(name.clone()),
                            Kind::Pattern => Target::Pattern(name.clone()),
                            Kind::Shard => Target::Shard(name.clone()),
                        };
                        self.targets.insert(token, target);
                    }
                    Err(error) => {
                        replies.push(Reply::error(format!("ERR {error}")));
                        return replies;
                    }
                }
            }
            replies.push(Reply::Push(vec![
                Reply::text(kind.subscribe_word()),
                Reply::Bulk(name.clone()),
                Reply::Integer(self.count_of(kind) as i64),
            ]));
        }
        replies
    }

    /// UNSUBSCRIBE / PUNSUBSCRIBE / SUNSUBSCRIBE: the names given, or all of them.
    pub(crate) fn unsubscribe(&mut self, names: &[Bytes], kind: Kind) -> Vec<Reply> {
        let word = kind.unsubscribe_word();
        let names: Vec<Bytes> = if names.is_empty() {
            self.handles(kind).keys().cloned().collect()
        } else {
            names.to_vec()
        };
        if names.is_empty() {
            return vec![Reply::Push(vec![
                Reply::text(word),
                Reply::Null,
                Reply::Integer(self.count_of(kind) as i64),
            ])];
        }
        names
            .into_iter()
            .map(|name| {
                if let Some(handle) = self.handles_mut(kind).remove(&name) {
                    self.targets.remove(&handle.token());
                    handle.unsubscribe();
                    if let Some(registry) = &self.registry {
                        registry.remove(&name, kind);
                    }
                }
                Reply::Push(vec![
                    Reply::text(word),
                    Reply::Bulk(name),
                    Reply::Integer(self.count_of(kind) as i64),
                ])
            })
            .collect()
    }

    /// Ends every subscription (RESET, and when the connection closes by dropping).
    pub(crate) fn clear(&mut self) {
        // The old subscriptions leave the registry as they drop.
        let mut empty = Subscriptions::default();
        empty.registry = self.registry.clone();
        *self = empty;
    }

    /// The push a delivery becomes, or `None` when a pattern's glob does not match it.
    pub(crate) fn message(&self, delivery: &Delivery) -> Option<Reply> {
        let message = &delivery.message;
        if message.status.is_some() {
            return None;
        }
        let subject = Bytes::copy_from_slice(message.subject.as_bytes());
        match self.targets.get(&delivery.token)? {
            Target::Channel(channel) => Some(Reply::Push(vec![
                Reply::text("message"),
                Reply::Bulk(channel.clone()),
                Reply::Bulk(message.payload.clone()),
            ])),
            Target::Shard(channel) => Some(Reply::Push(vec![
                Reply::text("smessage"),
                Reply::Bulk(channel.clone()),
                Reply::Bulk(message.payload.clone()),
            ])),
            Target::Pattern(pattern) => glob_match(pattern, &subject).then(|| {
                Reply::Push(vec![
                    Reply::text("pmessage"),
                    Reply::Bulk(pattern.clone()),
                    Reply::Bulk(subject),
                    Reply::Bulk(message.payload.clone()),
                ])
            }),
        }
    }
}

/// PUBLISH: to the live subscribers of every door, and into the stream capturing the
/// subject if one does (answered once that append is durable). Answers how many received it.
pub(crate) async fn publish(engine: &Engine, channel: &Bytes, payload: &Bytes) -> Reply {
    publish_with(engine, channel, payload, false).await
}

/// [`publish`]; `once`: the channel is seldom published again (a keyspace event's
/// `__keyspace@0__:<key>`), so the router does not cache what it matches.
pub(crate) async fn publish_with(
    engine: &Engine,
    channel: &Bytes,
    payload: &Bytes,
    once: bool,
) -> Reply {
    let subject = match channel_subject(channel) {
        Ok(subject) => subject,
        Err(reply) => return reply,
    };
    let message = LiveMessage {
        subject,
        reply: None,
        headers: Vec::new(),
        payload: payload.clone(),
        status: None,
        appended: false,
    };
    let published = if once {
        engine.publish_live_once(message, None).await
    } else {
        engine.publish_live(message, None).await
    };
    let routed = match published {
        Ok(LivePublish::Delivered(routed)) | Ok(LivePublish::Enqueued { routed, .. }) => routed,
        Ok(LivePublish::Captured(pending)) => match pending.durable().await {
            Ok((_, routed)) => routed,
            Err(error) => return Reply::error(format!("ERR {error}")),
        },
        Err(error) => return Reply::error(format!("ERR {error}")),
    };
    Reply::Integer((routed.matched - routed.dropped) as i64)
}

fn channel_subject(channel: &[u8]) -> Result<String, Reply> {
    let invalid = || {
        Reply::error(format!(
            "ERR channel '{}' is not a valid Omnibus subject (dot-separated tokens without \
             spaces, '*' or '>')",
            crate::commands::printable(channel, 128)
        ))
    };
    let text = std::str::from_utf8(channel).map_err(|_| invalid())?;
    omnibus_types::validate_subject(text).map_err(|_| invalid())?;
    Ok(text.to_string())
}

/// The narrowest subject pattern covering every subject `glob` matches.
fn glob_subject(glob: &[u8]) -> Result<String, Reply> {
    let Some(first) = glob
        .iter()
        .position(|b| matches!(b, b'*' | b'?' | b'[' | b'\\'))
    else {
        return channel_subject(glob);
    };
    let prefix = &glob[..first];
    let subject = match prefix.iter().rposition(|&b| b == b'.') {
        Some(dot) => {
            let base = channel_subject(&prefix[..dot])?;
            format!("{base}.>")
        }
        None => ">".to_string(),
    };
    Ok(subject)
}

#[cfg(test)]
mod tests {
    use super::glob_subject;

    #[test]
    fn globs_subscribe_to_the_narrowest_covering_pattern() {
        assert_eq!(glob_subject(b"orders.*").unwrap(), "orders.>");
        assert_eq!(glob_subject(b"orders.eu.c?").unwrap(), "orders.eu.>");
        assert_eq!(glob_subject(b"news*").unwrap(), ">");
        assert_eq!(glob_subject(b"exact.name").unwrap(), "exact.name");
        assert!(glob_subject(b"has space").is_err());
    }
}
