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

enum Target {
    Channel(Bytes),
    Pattern(Bytes),
}

/// The channels and patterns this listener's clients subscribe to, with their subscriber
/// counts, for PUBSUB CHANNELS / NUMSUB / NUMPAT. Redis clients only: a NATS or AMQP
/// subscriber of the same subject is not counted (PUBLISH's answer does count it).
#[derive(Default)]
pub(crate) struct Registry {
    channels: Mutex<BTreeMap<Bytes, usize>>,
    patterns: Mutex<BTreeMap<Bytes, usize>>,
}

impl Registry {
    fn map(&self, pattern: bool) -> std::sync::MutexGuard<'_, BTreeMap<Bytes, usize>> {
        let map = if pattern {
            &self.patterns
        } else {
            &self.channels
        };
        map.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn add(&self, name: &Bytes, pattern: bool) {
        *self.map(pattern).entry(name.clone()).or_insert(0) += 1;
    }

    fn remove(&self, name: &Bytes, pattern: bool) {
        let mut map = self.map(pattern);
        if let Some(count) = map.get_mut(name) {
            *count -= 1;
            if *count == 0 {
                map.remove(name);
            }
        }
    }

    /// (channels, patterns) with at least one subscriber, for INFO.
    pub(crate) fn counts(&self) -> (usize, usize) {
        (self.map(false).len(), self.map(true).len())
    }

    /// PUBSUB CHANNELS [pattern] / NUMSUB [channel …] / NUMPAT.
    pub(crate) fn command(&self, arguments: &[Bytes]) -> Reply {
        let subcommand = String::from_utf8_lossy(&arguments[0]).to_ascii_lowercase();
        match (subcommand.as_str(), arguments.len()) {
            ("channels", 1 | 2) => {
                let pattern = arguments.get(1);
                let channels = self.map(false);
                Reply::Array(
                    channels
                        .keys()
                        .filter(|channel| pattern.is_none_or(|glob| glob_match(glob, channel)))
                        .map(|channel| Reply::Bulk(channel.clone()))
                        .collect(),
                )
            }
            // A flat array of channel, count pairs in RESP3 too, as Redis answers it.
            ("numsub", _) => {
                let channels = self.map(false);
                Reply::Array(
                    arguments[1..]
                        .iter()
                        .flat_map(|channel| {
                            let count = channels.get(channel).copied().unwrap_or(0);
                            [Reply::Bulk(channel.clone()), Reply::Integer(count as i64)]
                        })
                        .collect(),
                )
            }
            ("numpat", 1) => Reply::Integer(self.map(true).len() as i64),
            ("channels" | "numpat", _) => Reply::error(format!(
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
    targets: HashMap<u64, Target>,
    next_token: u64,
}

impl Drop for Subscriptions {
    fn drop(&mut self) {
        if let Some(registry) = &self.registry {
            for name in self.channels.keys() {
                registry.remove(name, false);
            }
            for name in self.patterns.keys() {
                registry.remove(name, true);
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

    pub(crate) fn count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    pub(crate) fn mailbox(&self) -> Option<&Arc<Mailbox>> {
        self.mailbox.as_ref().filter(|_| self.count() > 0)
    }

    /// SUBSCRIBE / PSUBSCRIBE: one confirmation per name.
    pub(crate) fn subscribe(
        &mut self,
        engine: &Engine,
        names: &[Bytes],
        pattern: bool,
        limit: usize,
    ) -> Vec<Reply> {
        let kind = if pattern { "psubscribe" } else { "subscribe" };
        let mut replies = Vec::new();
        for name in names {
            let exists = if pattern {
                self.patterns.contains_key(name)
            } else {
                self.channels.contains_key(name)
            };
            if !exists {
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
                    .get_or_insert_with(|| router.mailbox(true, MAILBOX_LIMITS))
                    .clone();
                self.next_token += 1;
                let token = self.next_token;
                match router.subscribe(&mailbox, &subject, None, token) {
                    Ok(handle) => {
                        if let Some(registry) = &self.registry {
                            registry.add(name, pattern);
                        }
                        if pattern {
                            self.patterns.insert(name.clone(), handle);
                            self.targets.insert(token, Target::Pattern(name.clone()));
                        } else {
                            self.channels.insert(name.clone(), handle);
                            self.targets.insert(token, Target::Channel(name.clone()));
                        }
                    }
                    Err(error) => {
                        replies.push(Reply::error(format!("ERR {error}")));
                        return replies;
                    }
                }
            }
            replies.push(Reply::Push(vec![
                Reply::text(kind),
                Reply::Bulk(name.clone()),
                Reply::Integer(self.count() as i64),
            ]));
        }
        replies
    }

    /// UNSUBSCRIBE / PUNSUBSCRIBE: the names given, or all of them.
    pub(crate) fn unsubscribe(&mut self, names: &[Bytes], pattern: bool) -> Vec<Reply> {
        let kind = if pattern {
            "punsubscribe"
        } else {
            "unsubscribe"
        };
        let names: Vec<Bytes> = if names.is_empty() {
            let map = if pattern {
                &self.patterns
            } else {
                &self.channels
            };
            map.keys().cloned().collect()
        } else {
            names.to_vec()
        };
        if names.is_empty() {
            return vec![Reply::Push(vec![
                Reply::text(kind),
                Reply::Null,
                Reply::Integer(self.count() as i64),
            ])];
        }
        names
            .into_iter()
            .map(|name| {
                let map = if pattern {
                    &mut self.patterns
                } else {
                    &mut self.channels
                };
                if let Some(handle) = map.remove(&name) {
                    self.targets.remove(&handle.token());
                    handle.unsubscribe();
                    if let Some(registry) = &self.registry {
                        registry.remove(&name, pattern);
                    }
                }
                Reply::Push(vec![
                    Reply::text(kind),
                    Reply::Bulk(name),
                    Reply::Integer(self.count() as i64),
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
    };
    let routed = match engine.publish_live(message, None).await {
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
