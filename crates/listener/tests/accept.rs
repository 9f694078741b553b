//! The shared accept loop over real sockets: the bound and its refusal, ids, the door's
//! counters, sessions on the door's threads, and a shutdown that waits for every session.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use omnibus_engine::metrics::{DoorCounters, DoorTraffic};
use omnibus_listener::{serve, threads, Accepted, Door};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// A session that says its id and its thread's name, echoes lines, ends with an error when
/// sent `fail`, and says `bye` when the listener stops — after `linger`, and then sets
/// `finished`.
fn session(
    linger: Duration,
    finished: Arc<AtomicBool>,
) -> impl FnMut(
    Accepted,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<()>> + Send>> {
    move |accepted: Accepted| {
        let finished = finished.clone();
        Box::pin(async move {
            let Accepted {
                stream,
                id,
                mut stopped,
                ..
            } = accepted;
            let (read, mut write) = stream.into_split();
            let thread = std::thread::current().name().unwrap_or("").to_string();
            write
                .write_all(format!("{id} {thread}\n").as_bytes())
                .await?;
            let mut lines = BufReader::new(read).lines();
            loop {
                tokio::select! {
                    line = lines.next_line() => match line? {
                        None => return Ok(()),
                        Some(line) if line == "fail" => {
                            return Err(std::io::Error::other("asked to fail"))
                        }
                        Some(line) => write.write_all(format!("{line}\n").as_bytes()).await?,
                    },
                    _ = stopped.changed() => {
                        tokio::time::sleep(linger).await;
                        finished.store(true, Ordering::SeqCst);
                        write.write_all(b"bye\n").await?;
                        return Ok(());
                    }
                }
            }
        })
    }
}

struct Running {
    address: std::net::SocketAddr,
    counters: Arc<DoorCounters>,
    shutdown: oneshot::Sender<()>,
    served: tokio::task::JoinHandle<()>,
    finished: Arc<AtomicBool>,
}

async fn start(configure: impl FnOnce(Door) -> Door, connections_max: usize) -> Running {
    start_lingering(configure, connections_max, Duration::ZERO).await
}

async fn start_lingering(
    configure: impl FnOnce(Door) -> Door,
    connections_max: usize,
    linger: Duration,
) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let counters = Arc::new(DoorCounters::default());
    let door = configure(Door::new("Test", connections_max, counters.clone()));
    let (shutdown, stop) = oneshot::channel::<()>();
    let finished = Arc::new(AtomicBool::new(false));
    let served = tokio::spawn(serve(
        listener,
        door,
        async move {
            let _ = stop.await;
        },
        session(linger, finished.clone()),
    ));
    Running {
        address,
        counters,
        shutdown,
        served,
        finished,
    }
}

/// Connects and reads the session's first line (`<id> <thread>`), or everything a refused
/// connection is sent before it closes.
async fn connect(address: std::net::SocketAddr) -> (BufReader<TcpStream>, String) {
    let mut stream = BufReader::new(TcpStream::connect(address).await.unwrap());
    let mut first = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_line(&mut first))
        .await
        .expect("the door answers within 10 s")
        .unwrap();
    (stream, first)
}

/// Waits (at most 10 s) for the counters to read `wanted`.
async fn counters_reach(
    counters: &DoorCounters,
    wanted: impl Fn(&DoorTraffic) -> bool,
) -> DoorTraffic {
    for _ in 0..1000 {
        let traffic = counters.snapshot();
        if wanted(&traffic) {
            return traffic;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the counters never got there: {:?}", counters.snapshot());
}

#[tokio::test]
async fn a_connection_past_the_bound_is_refused_with_the_protocols_words_until_one_closes() {
    let door = start(|door| door.refusal(b"-ERR full\r\n"), 2).await;
    let (first, hello) = connect(door.address).await;
    assert!(hello.starts_with("1 "), "{hello:?}");
    let (mut second, hello) = connect(door.address).await;
    assert!(hello.starts_with("2 "), "{hello:?}");

    let (mut refused, words) = connect(door.address).await;
    assert_eq!(words, "-ERR full\r\n");
    let mut rest = Vec::new();
    refused.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty(), "closed after the refusal");
    counters_reach(&door.counters, |t| t.connections_refused == 1).await;

    // The sessions in hand still work.
    second.get_mut().write_all(b"ping\n").await.unwrap();
    let mut echo = String::new();
    second.read_line(&mut echo).await.unwrap();
    assert_eq!(echo, "ping\n");

    // A closed session frees its slot: the next connection is taken, with the next id.
    drop(first);
    counters_reach(&door.counters, |t| t.connections_closed == 1).await;
    let (_third, hello) = connect(door.address).await;
    assert!(hello.starts_with("3 "), "{hello:?}");
    let traffic = door.counters.snapshot();
    assert_eq!(
        (traffic.connections_opened, traffic.connections_refused),
        (3, 1)
    );
}

#[tokio::test]
async fn without_refusal_words_a_connection_past_the_bound_is_closed_at_once() {
    let door = start(|door| door, 1).await;
    let (_first, hello) = connect(door.address).await;
    assert!(hello.starts_with("1 "), "{hello:?}");
    let (_refused, words) = connect(door.address).await;
    assert_eq!(words, "", "closed without a byte");
    counters_reach(&door.counters, |t| t.connections_refused == 1).await;
}

#[tokio::test]
async fn a_session_ending_with_an_error_counts_one() {
    let door = start(|door| door, 4).await;
    let (mut connection, _) = connect(door.address).await;
    connection.get_mut().write_all(b"fail\n").await.unwrap();
    let mut rest = Vec::new();
    connection.read_to_end(&mut rest).await.unwrap();
    let traffic = counters_reach(&door.counters, |t| t.connections_closed == 1).await;
    assert_eq!(traffic.errors, 1);

    // A session that ends cleanly counts none.
    let (connection, _) = connect(door.address).await;
    drop(connection);
    let traffic = counters_reach(&door.counters, |t| t.connections_closed == 2).await;
    assert_eq!(traffic.errors, 1);
}

#[tokio::test]
async fn shutdown_tells_every_session_and_waits_for_them_to_end() {
    let door = start_lingering(|door| door, 4, Duration::from_millis(200)).await;
    let (mut first, _) = connect(door.address).await;
    let (mut second, _) = connect(door.address).await;
    door.shutdown.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), door.served)
        .await
        .expect("serve returns once its sessions end")
        .unwrap();
    assert!(
        door.finished.load(Ordering::SeqCst),
        "serve returned before its sessions finished"
    );
    for connection in [&mut first, &mut second] {
        let mut rest = String::new();
        connection.read_to_string(&mut rest).await.unwrap();
        assert_eq!(rest, "bye\n");
    }
    assert!(
        TcpStream::connect(door.address).await.is_err(),
        "the listener is closed"
    );
}

#[tokio::test]
async fn sessions_are_handed_to_the_doors_threads_in_turn() {
    let handles = threads("door-test", 2).unwrap();
    let door = start(move |door| door.threads(handles), 4).await;
    let mut seen = Vec::new();
    let mut open = Vec::new();
    for _ in 0..4 {
        let (mut connection, hello) = connect(door.address).await;
        seen.push(hello.trim_end().to_string());
        // The socket works from there.
        connection.get_mut().write_all(b"ping\n").await.unwrap();
        let mut echo = String::new();
        connection.read_line(&mut echo).await.unwrap();
        assert_eq!(echo, "ping\n");
        open.push(connection);
    }
    assert_eq!(
        seen,
        [
            "1 door-test-1",
            "2 door-test-0",
            "3 door-test-1",
            "4 door-test-0"
        ]
    );
}
