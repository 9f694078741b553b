//! `omnibus serve`: bind the listeners, open the engine, serve until SIGINT or SIGTERM, then
//! drain in-flight requests and flush every partition to disk before exiting.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use omnibus_engine::Engine;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::config::ServerConfig;
use crate::listeners::ListenersFile;
use crate::signals::Signals;

/// How long in-flight requests get to finish after a stop signal. Long polls may be parked for
/// up to a minute; an operator stopping the broker should not wait that long.
const DRAIN_MS_MAX: u64 = 10_000;

pub async fn run(config: ServerConfig) -> anyhow::Result<()> {
    // Installed first: a SIGTERM that arrives while the engine recovers must still lead to an
    // orderly stop, not the default action (die without flushing).
    let mut signals = Signals::install().context("cannot install signal handlers")?;

    // Bound before the engine opens so a taken port fails in milliseconds, not after a long
    // recovery. Connections that arrive meanwhile wait in the listen backlog. Port 0 takes any
    // free port; the bound addresses are what we report below.
    let http_listener = bind("HTTP", &config.http.listen).await?;
    let http_address = local_address(&http_listener, &config.http.listen)?;
    let kafka = bind_door("Kafka", config.kafka_listen()).await?;
    let nats = bind_door("NATS", config.nats_listen()).await?;
    let amqp = bind_door("AMQP", config.amqp_listen()).await?;
    let redis = bind_door("Redis", config.redis_listen()).await?;

    // Before the engine opens, so nothing is recorded when metrics are off.
    omnibus_engine::metrics::set_recording(config.metrics.enabled);
    let engine = Engine::open(config.engine_config())
        .await
        .with_context(|| format!("cannot open data directory {}", config.data_dir.display()))?;

    // With the Redis door on, its keyspace is read before the ready line, as redis-server
    // loads its data before it serves: loaded on the first connection instead, a keyspace
    // of a million rows kept that client waiting a second, past redis-rs's 500 ms default.
    if redis.listener.is_some() {
        if let Err(error) = engine.keyspace().await {
            engine.shutdown().await.context("flushing data to disk")?;
            return Err(anyhow::Error::new(error).context("loading the Redis keyspace"));
        }
        // The rows read to build it are freed: give their pages back now.
        crate::release_freed_memory();
    }

    if let Err(error) = crate::webhooks::start(&engine, &config.alerts.webhooks) {
        engine.shutdown().await.context("flushing data to disk")?;
        return Err(error.context("starting the alarm webhooks"));
    }

    // After the engine opened, so the data folder exists and no other broker holds it.
    let listeners_file = match ListenersFile::write(
        &config.data_dir,
        http_address,
        kafka.address,
        nats.address,
        amqp.address,
        redis.address,
    )
    .await
    {
        Ok(file) => file,
        Err(error) => {
            engine.shutdown().await.context("flushing data to disk")?;
            return Err(error);
        }
    };

    let (stop_sender, stop_receiver) = watch::channel(false);
    let mut http_task = tokio::spawn(omnibus_http::serve(
        http_listener,
        Arc::clone(&engine),
        config.http_config(),
        stopped(stop_receiver.clone()),
    ));
    let shown = (
        shown(kafka.address),
        shown(nats.address),
        shown(amqp.address),
        shown(redis.address),
    );
    let mut kafka_task = spawn_door(kafka.listener, stopped(stop_receiver.clone()), |l, stop| {
        omnibus_kafka::serve(l, Arc::clone(&engine), config.kafka_config(), stop)
    });
    let mut nats_task = spawn_door(nats.listener, stopped(stop_receiver.clone()), |l, stop| {
        omnibus_nats::serve(l, Arc::clone(&engine), config.nats_config(), stop)
    });
    let mut amqp_task = spawn_door(amqp.listener, stopped(stop_receiver.clone()), |l, stop| {
        omnibus_amqp::serve(l, Arc::clone(&engine), config.amqp_config(), stop)
    });
    let mut redis_task = spawn_door(redis.listener, stopped(stop_receiver), |l, stop| {
        omnibus_redis::serve(l, Arc::clone(&engine), config.redis_config(), stop)
    });
    let (kafka_shown, nats_shown, amqp_shown, redis_shown) = shown;

    // A fixed, greppable line (not a tracing event) so scripts and tests can wait for it.
    // Its format is stable (scripts parse it); new fields go at the end. Written whole, in
    // one write: `eprintln!` writes each piece as it formats it (stderr is unbuffered), and
    // a script reading the log meanwhile saw a ready line without its last fields.
    let ready = format!(
        "omnibus ready: http={http_address} kafka={kafka_shown} data_dir={} nats={nats_shown} amqp={amqp_shown} redis={redis_shown}\n",
        config.data_dir.display()
    );
    let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), ready.as_bytes());

    let mut failure = None;
    tokio::select! {
        signal = signals.next() => info!("received {signal}; shutting down"),
        outcome = &mut http_task => failure = Some(listener_failure("HTTP", outcome)),
        outcome = &mut kafka_task => failure = Some(listener_failure("Kafka", outcome)),
        outcome = &mut nats_task => failure = Some(listener_failure("NATS", outcome)),
        outcome = &mut amqp_task => failure = Some(listener_failure("AMQP", outcome)),
        outcome = &mut redis_task => failure = Some(listener_failure("Redis", outcome)),
    }

    // Stop accepting; let the requests already running finish, within bounds.
    let _ = stop_sender.send(true);
    if failure.is_none() {
        // Every listener drains at once, within one deadline.
        tokio::join!(
            drain("HTTP", &mut http_task, &mut signals),
            drain_quietly("Kafka", &mut kafka_task),
            drain_quietly("NATS", &mut nats_task),
            drain_quietly("AMQP", &mut amqp_task),
            drain_quietly("Redis", &mut redis_task),
        );
    } else {
        http_task.abort();
        kafka_task.abort();
        nats_task.abort();
        amqp_task.abort();
        redis_task.abort();
    }
    // Nothing listens on those addresses any more.
    if let Err(error) = listeners_file.remove().await {
        warn!("{error:#}");
    }

    // Whatever happened above, acknowledged data goes to disk before we exit.
    engine
        .shutdown()
        .await
        .context("flushing data to disk at shutdown")?;
    info!("omnibus stopped: every partition flushed and synced");
    match failure {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// A front door's listener, bound before the engine opens; both `None` when it is `off`.
struct Door {
    listener: Option<TcpListener>,
    address: Option<SocketAddr>,
}

async fn bind_door(what: &str, listen: Option<&str>) -> anyhow::Result<Door> {
    let Some(listen) = listen else {
        return Ok(Door {
            listener: None,
            address: None,
        });
    };
    let listener = bind(what, listen).await?;
    let address = local_address(&listener, listen)?;
    Ok(Door {
        listener: Some(listener),
        address: Some(address),
    })
}

/// A door's address as the ready line shows it.
fn shown(address: Option<SocketAddr>) -> String {
    address.map_or_else(|| "off".to_string(), |address| address.to_string())
}

/// Resolves once a stop is asked for (or the sender is gone, which also means: stop).
async fn stopped(mut receiver: watch::Receiver<bool>) {
    let _ = receiver.wait_for(|stop| *stop).await;
}

/// Serves a door until `stop`. With its listener off, a task that only waits for the stop
/// stands in, so the shutdown needs no second path.
fn spawn_door<S, F>(
    listener: Option<TcpListener>,
    stop: S,
    serve: impl FnOnce(TcpListener, S) -> F,
) -> ListenerTask
where
    S: std::future::Future<Output = ()> + Send + 'static,
    F: std::future::Future<Output = std::io::Result<()>> + Send + 'static,
{
    match listener {
        Some(listener) => tokio::spawn(serve(listener, stop)),
        None => tokio::spawn(async move {
            stop.await;
            Ok(())
        }),
    }
}

async fn bind(what: &str, address: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen for {what} on {address}"))
}

fn local_address(listener: &TcpListener, configured: &str) -> anyhow::Result<SocketAddr> {
    listener
        .local_addr()
        .with_context(|| format!("cannot read the bound address of {configured}"))
}

type ListenerTask = tokio::task::JoinHandle<std::io::Result<()>>;

/// Why a listener that should run until shutdown ended early.
fn listener_failure(
    what: &str,
    outcome: Result<std::io::Result<()>, tokio::task::JoinError>,
) -> anyhow::Error {
    match outcome {
        Ok(Ok(())) => anyhow::anyhow!("the {what} listener stopped unexpectedly"),
        Ok(Err(error)) => anyhow::Error::new(error).context(format!("the {what} listener failed")),
        Err(error) => anyhow::Error::new(error).context(format!("the {what} listener crashed")),
    }
}

/// Waits for a listener's graceful shutdown, at most [`DRAIN_MS_MAX`]; a second signal cuts
/// the wait short.
async fn drain(what: &str, task: &mut ListenerTask, signals: &mut Signals) {
    let deadline = tokio::time::sleep(Duration::from_millis(DRAIN_MS_MAX));
    tokio::select! {
        outcome = &mut *task => report_drained(what, outcome),
        () = deadline => {
            warn!("{what} requests still running after {DRAIN_MS_MAX} ms; closing them");
            task.abort();
        }
        signal = signals.next() => {
            warn!("received {signal} again; not waiting for in-flight requests");
            task.abort();
        }
    }
}

/// As [`drain`], for a listener drained alongside one that watches the signals.
async fn drain_quietly(what: &str, task: &mut ListenerTask) {
    match tokio::time::timeout(Duration::from_millis(DRAIN_MS_MAX), &mut *task).await {
        Ok(outcome) => report_drained(what, outcome),
        Err(_) => {
            warn!("{what} requests still running after {DRAIN_MS_MAX} ms; closing them");
            task.abort();
        }
    }
}

fn report_drained(what: &str, outcome: Result<std::io::Result<()>, tokio::task::JoinError>) {
    match outcome {
        Ok(Ok(())) => info!("in-flight {what} requests finished"),
        Ok(Err(error)) => warn!("the {what} listener failed while draining: {error}"),
        Err(error) => warn!("the {what} listener crashed while draining: {error}"),
    }
}
