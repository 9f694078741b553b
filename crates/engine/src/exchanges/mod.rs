//! Exchanges and bindings, protocol-neutral: named routers that take a message with a routing
//! key (and headers) and name the queues it goes to. AMQP 0-9-1's exchanges map onto this one
//! to one, but nothing here knows a wire type; the HTTP door could route through it too.
//!
//! - kinds: `direct` (the key equals the binding key), `fanout` (every binding), `topic`
//!   (`topic.rs`: `*` one word, `#` zero or more), `headers` (`x-match` `all`/`any` over the
//!   binding's other arguments, compared as text);
//! - a binding's destination is a queue, or another exchange (`to_exchange`, AMQP's
//!   exchange.bind): routing then goes on through that exchange's bindings, each exchange
//!   visited once per message (so a cycle of bindings ends);
//! - an exchange's `alternate_exchange` takes the messages none of its bindings matched;
//! - the default exchange `""` routes to the queue named by the key, when it exists; the
//!   built-ins `amq.direct`, `amq.fanout`, `amq.topic`, `amq.headers` and `amq.match` always
//!   exist and cannot be deleted;
//! - a durable exchange, and a durable binding, is written to the state store (tables
//!   `exchanges` and `exchange_bindings`) before it is answered, and comes back at start.
//!
//! Routing is a scan of the exchange's bindings (bounded by `BINDINGS_PER_EXCHANGE_MAX`)
//! under a read lock; bindings change rarely, messages often.

mod dead_letters;
mod topic;
mod transient;

pub(crate) use dead_letters::Routes;
pub use dead_letters::{DeadLetterRoute, EXCHANGE_HEADER, ROUTING_KEY_HEADER};

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};

use omnibus_storage::StateWrite;
use serde::{Deserialize, Serialize};

pub use topic::topic_matches;

use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::streams::registry::off_the_runtime;

const EXCHANGES_TABLE: &str = "exchanges";
const BINDINGS_TABLE: &str = "exchange_bindings";
/// Most exchanges at once (built-ins included).
pub const EXCHANGES_MAX: usize = 10_000;
/// Most bindings one exchange holds.
pub const BINDINGS_PER_EXCHANGE_MAX: usize = 10_000;
/// Exchange names are AMQP short strings.
pub const EXCHANGE_NAME_BYTES_MAX: usize = 255;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExchangeKind {
    Direct,
    Fanout,
    Topic,
    Headers,
}

impl ExchangeKind {
    pub fn parse(text: &str) -> Option<ExchangeKind> {
        match text {
            "direct" => Some(ExchangeKind::Direct),
            "fanout" => Some(ExchangeKind::Fanout),
            "topic" => Some(ExchangeKind::Topic),
            "headers" => Some(ExchangeKind::Headers),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ExchangeKind::Direct => "direct",
            ExchangeKind::Fanout => "fanout",
            ExchangeKind::Topic => "topic",
            ExchangeKind::Headers => "headers",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExchangeSpec {
    pub name: String,
    pub kind: ExchangeKind,
    pub durable: bool,
    pub auto_delete: bool,
    pub internal: bool,
    /// Where messages go that none of this exchange's bindings match (AMQP's
    /// `alternate-exchange` argument); it need not exist (then they are unroutable).
    #[serde(default)]
    pub alternate_exchange: Option<String>,
}

/// A binding from an exchange to a queue, or to another exchange when `to_exchange` (then
/// `queue` names that exchange). `arguments` are the binding's arguments as text (the
/// headers exchange matches on them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    pub exchange: String,
    pub queue: String,
    pub routing_key: String,
    #[serde(default)]
    pub arguments: BTreeMap<String, String>,
    pub durable: bool,
    #[serde(default)]
    pub to_exchange: bool,
}

impl Binding {
    fn key(&self) -> String {
        // Bindings to queues keep the key they had before exchange destinations existed.
        format!(
            "{}\u{1f}{}\u{1f}{}\u{1f}{}{}",
            self.exchange,
            self.queue,
            self.routing_key,
            serde_json::to_string(&self.arguments).unwrap_or_default(),
            if self.to_exchange {
                "\u{1f}exchange"
            } else {
                ""
            }
        )
    }

    fn to_queue(&self, queue: &str) -> bool {
        !self.to_exchange && self.queue == queue
    }

    fn same_as(&self, other: &Binding) -> bool {
        self.exchange == other.exchange
            && self.queue == other.queue
            && self.routing_key == other.routing_key
            && self.arguments == other.arguments
            && self.to_exchange == other.to_exchange
    }
}

#[derive(Debug)]
struct Exchange {
    spec: ExchangeSpec,
    bindings: Vec<Binding>,
}

/// Every exchange, in memory; durable ones mirrored in the state store.
#[derive(Debug, Default)]
pub struct ExchangeTable {
    exchanges: RwLock<BTreeMap<String, Exchange>>,
}

/// What `declare_exchange` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Declared {
    Created,
    /// It existed with the same kind and durability.
    Existing,
}

pub const DEFAULT_EXCHANGE: &str = "";

fn built_ins() -> Vec<ExchangeSpec> {
    [
        ("", ExchangeKind::Direct),
        ("amq.direct", ExchangeKind::Direct),
        ("amq.fanout", ExchangeKind::Fanout),
        ("amq.topic", ExchangeKind::Topic),
        ("amq.headers", ExchangeKind::Headers),
        ("amq.match", ExchangeKind::Headers),
    ]
    .into_iter()
    .map(|(name, kind)| ExchangeSpec {
        name: name.to_string(),
        kind,
        durable: true,
        auto_delete: false,
        internal: false,
        alternate_exchange: None,
    })
    .collect()
}

fn is_built_in(name: &str) -> bool {
    name.is_empty() || name.starts_with("amq.")
}

impl Engine {
    /// Loads the built-in exchanges and every durable exchange and binding (at open).
    pub(crate) fn open_exchanges(&self) -> Result<()> {
        let mut table = self
            .exchanges
            .exchanges
            .write()
            .unwrap_or_else(|p| p.into_inner());
        for spec in built_ins() {
            table.insert(
                spec.name.clone(),
                Exchange {
                    spec,
                    bindings: Vec::new(),
                },
            );
        }
        for (name, bytes) in self.state.scan_prefix(EXCHANGES_TABLE, "")? {
            let spec: ExchangeSpec = serde_json::from_slice(&bytes)
                .map_err(|e| EngineError::Internal(format!("exchange {name:?} metadata: {e}")))?;
            table.insert(
                spec.name.clone(),
                Exchange {
                    spec,
                    bindings: Vec::new(),
                },
            );
        }
        for (key, bytes) in self.state.scan_prefix(BINDINGS_TABLE, "")? {
            let binding: Binding = serde_json::from_slice(&bytes)
                .map_err(|e| EngineError::Internal(format!("binding {key:?}: {e}")))?;
            if let Some(exchange) = table.get_mut(&binding.exchange) {
                exchange.bindings.push(binding);
            }
        }
        Ok(())
    }

    /// Declares an exchange: creates it, or checks that the existing one has the same kind
    /// and durability (`InvalidConfig` otherwise, AMQP's 406). A durable one is written
    /// before this returns.
    fn declare_exchange_blocking(&self, spec: ExchangeSpec) -> Result<Declared> {
        if spec.name.len() > EXCHANGE_NAME_BYTES_MAX {
            return Err(EngineError::InvalidName(format!(
                "exchange name is {} bytes; the limit is {EXCHANGE_NAME_BYTES_MAX}",
                spec.name.len()
            )));
        }
        let mut table = self
            .exchanges
            .exchanges
            .write()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(existing) = table.get(&spec.name) {
            if existing.spec.kind != spec.kind
                || (!is_built_in(&spec.name) && existing.spec.durable != spec.durable)
            {
                return Err(EngineError::InvalidConfig(format!(
                    "exchange {:?} exists as {} (durable: {}); declared as {} (durable: {})",
                    spec.name,
                    existing.spec.kind.as_str(),
                    existing.spec.durable,
                    spec.kind.as_str(),
                    spec.durable
                )));
            }
            return Ok(Declared::Existing);
        }
        if is_built_in(&spec.name) {
            return Err(EngineError::InvalidName(format!(
                "exchange names starting with \"amq.\" are reserved: {:?}",
                spec.name
            )));
        }
        if table.len() >= EXCHANGES_MAX {
            return Err(EngineError::LimitExceeded(format!(
                "{EXCHANGES_MAX} exchanges exist (the limit)"
            )));
        }
        if spec.durable {
            let bytes = serde_json::to_vec(&spec).expect("exchange spec serializes");
            self.state.put(EXCHANGES_TABLE, &spec.name, &bytes)?;
        }
        table.insert(
            spec.name.clone(),
            Exchange {
                spec,
                bindings: Vec::new(),
            },
        );
        Ok(Declared::Created)
    }

    /// The exchange's declaration, if it exists.
    pub fn exchange(&self, name: &str) -> Option<ExchangeSpec> {
        self.exchanges
            .exchanges
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .map(|exchange| exchange.spec.clone())
    }

    /// Deletes an exchange and its bindings. With `if_unused`, refuses (`InvalidConfig`)
    /// while it has bindings.
    fn delete_exchange_blocking(&self, name: &str, if_unused: bool) -> Result<()> {
        if is_built_in(name) {
            return Err(EngineError::InvalidName(format!(
                "exchange {name:?} is built in and cannot be deleted"
            )));
        }
        let mut table = self
            .exchanges
            .exchanges
            .write()
            .unwrap_or_else(|p| p.into_inner());
        let Some(exchange) = table.get(name) else {
            return Err(EngineError::ExchangeNotFound(name.to_string()));
        };
        if if_unused && !exchange.bindings.is_empty() {
            return Err(EngineError::InvalidConfig(format!(
                "exchange {name:?} has bindings"
            )));
        }
        let mut writes = vec![StateWrite::Delete {
            table: EXCHANGES_TABLE,
            key: name.to_string(),
        }];
        // Its own bindings, and the bindings of other exchanges to it.
        let to_it = |binding: &Binding| binding.to_exchange && binding.queue == name;
        writes.extend(
            table
                .values()
                .flat_map(|exchange| exchange.bindings.iter())
                .filter(|binding| binding.exchange == name || to_it(binding))
                .map(|binding| StateWrite::Delete {
                    table: BINDINGS_TABLE,
                    key: binding.key(),
                }),
        );
        self.state.write(&writes)?;
        table.remove(name);
        for exchange in table.values_mut() {
            exchange.bindings.retain(|binding| !to_it(binding));
        }
        Ok(())
    }

    /// Binds `binding.queue` to `binding.exchange` (idempotent). The destination must exist.
    fn bind_queue_blocking(&self, binding: Binding) -> Result<()> {
        if !binding.to_exchange {
            self.queue(&binding.queue)?;
        }
        let mut table = self
            .exchanges
            .exchanges
            .write()
            .unwrap_or_else(|p| p.into_inner());
        let destination_durable = if binding.to_exchange {
            if binding.queue.is_empty() {
                return Err(EngineError::InvalidConfig(
                    "the default exchange takes no bindings".into(),
                ));
            }
            match table.get(&binding.queue) {
                Some(destination) => destination.spec.durable,
                None => return Err(EngineError::ExchangeNotFound(binding.queue.clone())),
            }
        } else {
            true
        };
        let Some(exchange) = table.get_mut(&binding.exchange) else {
            return Err(EngineError::ExchangeNotFound(binding.exchange.clone()));
        };
        if binding.exchange.is_empty() {
            return Err(EngineError::InvalidConfig(
                "the default exchange takes no bindings".into(),
            ));
        }
        if exchange.bindings.iter().any(|b| b.same_as(&binding)) {
            return Ok(());
        }
        if exchange.bindings.len() >= BINDINGS_PER_EXCHANGE_MAX {
            return Err(EngineError::LimitExceeded(format!(
                "exchange {:?} has {BINDINGS_PER_EXCHANGE_MAX} bindings (the limit)",
                binding.exchange
            )));
        }
        if binding.durable && exchange.spec.durable && destination_durable {
            let bytes = serde_json::to_vec(&binding).expect("binding serializes");
            self.state.put(BINDINGS_TABLE, &binding.key(), &bytes)?;
        }
        exchange.bindings.push(binding);
        Ok(())
    }

    /// Removes a binding; removing one that does not exist is not an error (RabbitMQ).
    fn unbind_queue_blocking(&self, binding: &Binding) -> Result<()> {
        let mut table = self
            .exchanges
            .exchanges
            .write()
            .unwrap_or_else(|p| p.into_inner());
        let Some(exchange) = table.get_mut(&binding.exchange) else {
            return Err(EngineError::ExchangeNotFound(binding.exchange.clone()));
        };
        self.state.write(&[StateWrite::Delete {
            table: BINDINGS_TABLE,
            key: binding.key(),
        }])?;
        exchange.bindings.retain(|b| !b.same_as(binding));
        Ok(())
    }

    /// Removes every binding to `queue` (the queue was deleted).
    pub(crate) fn unbind_queue_everywhere_blocking(&self, queue: &str) -> Result<()> {
        let mut table = self
            .exchanges
            .exchanges
            .write()
            .unwrap_or_else(|p| p.into_inner());
        let mut writes = Vec::new();
        for exchange in table.values() {
            for binding in exchange.bindings.iter().filter(|b| b.to_queue(queue)) {
                writes.push(StateWrite::Delete {
                    table: BINDINGS_TABLE,
                    key: binding.key(),
                });
            }
        }
        if !writes.is_empty() {
            self.state.write(&writes)?;
        }
        for exchange in table.values_mut() {
            exchange.bindings.retain(|b| !b.to_queue(queue));
        }
        Ok(())
    }

    /// The queues a message published to `exchange` with `routing_key` and `headers` (as
    /// text) goes to, each once. The default exchange names the queue by the key. Bindings
    /// to exchanges, and alternate exchanges, are followed; each exchange is visited at most
    /// once, so the walk is bounded by the number of exchanges even when bindings form a
    /// cycle.
    pub fn route_exchange(
        &self,
        exchange: &str,
        routing_key: &str,
        headers: &BTreeMap<String, String>,
    ) -> Result<Vec<String>> {
        // Looked up before the exchanges' lock is taken: the two locks are never nested.
        let key_names_a_queue = self.queue(routing_key).is_ok();
        let table = self
            .exchanges
            .exchanges
            .read()
            .unwrap_or_else(|p| p.into_inner());
        if !table.contains_key(exchange) {
            return Err(EngineError::ExchangeNotFound(exchange.to_string()));
        }
        let mut queues = BTreeSet::new();
        let mut visited = BTreeSet::new();
        let mut pending = vec![exchange];
        while let Some(name) = pending.pop() {
            if !visited.insert(name) {
                continue;
            }
            let Some(found) = table.get(name) else {
                continue;
            };
            let mut matched_any = false;
            if name.is_empty() && key_names_a_queue {
                queues.insert(routing_key.to_string());
                matched_any = true;
            }
            for binding in &found.bindings {
                let matched = match found.spec.kind {
                    ExchangeKind::Direct => binding.routing_key == routing_key,
                    ExchangeKind::Fanout => true,
                    ExchangeKind::Topic => topic_matches(&binding.routing_key, routing_key),
                    ExchangeKind::Headers => headers_match(&binding.arguments, headers),
                };
                if !matched {
                    continue;
                }
                matched_any = true;
                if binding.to_exchange {
                    pending.push(&binding.queue);
                } else {
                    queues.insert(binding.queue.clone());
                }
            }
            if !matched_any {
                if let Some(alternate) = &found.spec.alternate_exchange {
                    pending.push(alternate);
                }
            }
        }
        Ok(queues.into_iter().collect())
    }
}

impl Engine {
    /// Declares an exchange: creates it, or checks that the existing one has the same kind
    /// and durability (`InvalidConfig` otherwise). A durable one is written before this
    /// returns; the write runs off the async runtime.
    pub async fn declare_exchange(self: &Arc<Self>, spec: ExchangeSpec) -> Result<Declared> {
        let engine = self.clone();
        off_the_runtime(move || engine.declare_exchange_blocking(spec)).await
    }

    /// Deletes an exchange and its bindings; with `if_unused`, refuses while it has bindings.
    pub async fn delete_exchange(self: &Arc<Self>, name: &str, if_unused: bool) -> Result<()> {
        let engine = self.clone();
        let name = name.to_string();
        off_the_runtime(move || engine.delete_exchange_blocking(&name, if_unused)).await
    }

    /// Binds a queue, or an exchange (`to_exchange`), to an exchange (idempotent); the
    /// destination must exist.
    pub async fn bind_queue(self: &Arc<Self>, binding: Binding) -> Result<()> {
        let engine = self.clone();
        off_the_runtime(move || engine.bind_queue_blocking(binding)).await
    }

    /// Removes a binding; one that does not exist is not an error (as RabbitMQ).
    pub async fn unbind_queue(self: &Arc<Self>, binding: Binding) -> Result<()> {
        let engine = self.clone();
        off_the_runtime(move || engine.unbind_queue_blocking(&binding)).await
    }

    /// Removes every binding to `queue` (before the queue is deleted).
    pub async fn unbind_queue_everywhere(self: &Arc<Self>, queue: &str) -> Result<()> {
        let engine = self.clone();
        let queue = queue.to_string();
        off_the_runtime(move || engine.unbind_queue_everywhere_blocking(&queue)).await
    }
}

/// The headers exchange: `x-match` `all` (the default) or `any`; every other argument not
/// starting with `x-` must equal the message's header of that name (`all`) or one must (`any`).
/// `all-with-x` and `any-with-x` compare the `x-` arguments too (RabbitMQ 3.10's meaning).
fn headers_match(arguments: &BTreeMap<String, String>, headers: &BTreeMap<String, String>) -> bool {
    let matching = arguments.get("x-match").map_or("all", String::as_str);
    let any = matching.starts_with("any");
    let with_x = matching.ends_with("-with-x");
    let mut wanted = arguments
        .iter()
        .filter(|(name, _)| name.as_str() != "x-match" && (with_x || !name.starts_with("x-")));
    if any {
        wanted.any(|(name, value)| headers.get(name) == Some(value))
    } else {
        wanted.all(|(name, value)| headers.get(name) == Some(value))
    }
}

#[cfg(test)]
mod tests;
