//! Crash recovery of the real `omnibus` binary, driven over HTTP.
//!
//! One data directory lives through many cycles of: start `omnibus serve`, verify everything
//! the earlier cycles left behind, put the broker under a load of concurrent publishes, then
//! stop it abruptly (`kill -9`) at a random moment. After every restart:
//!
//! 1. every record whose publish was acknowledged (HTTP 200) is present at exactly the
//!    partition and offset the acknowledgement named, with the same value;
//! 2. no value appears twice anywhere (unacknowledged publishes may be lost, never doubled);
//! 3. offsets are dense: 0, 1, ... up to the high watermark;
//! 4. within a partition, one producer's records appear in the order it sent them;
//! 5. every stored value is one the test sent (nothing corrupt, nothing invented), in the
//!    partition it was sent to when the publish named one;
//! 6. what a reader saw after the previous restart is still there, unchanged (recovery never
//!    rewrites records it already served).
//!
//! The checks are cumulative: the set of acknowledged records grows over the whole run.
//! A second, smaller test does the same with SIGTERM and also wants exit status 0.
//!
//! Randomness (kill moments, batch shapes) comes from one printed seed; rerun a failure with
//! `OMNIBUS_CRASH_SEED=<seed>`. `OMNIBUS_CRASH_CYCLES=<n>` sets the number of kill cycles
//! (default 20; `scripts/crash-campaign.sh` runs 100). The last line printed is the summary:
//! `crash summary: crash_http [kill -9] cycles=<n> acknowledged=<n> lost=0 ...`. Only 127.0.0.1 is used; every wait is bounded; the server is killed when
//! its guard drops, even when an assertion fails.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::task::JoinSet;

mod broker;
mod ledger;
mod load;
#[path = "../support/ready.rs"]
mod ready;

use broker::*;
use ledger::*;
use load::*;

pub const BIN: &str = env!("CARGO_BIN_EXE_omnibus");
pub const STREAM: &str = "crash";
pub const PARTITIONS: u32 = 4;
/// Small segments, so that kills also land while a partition rolls to a new segment.
pub const SEGMENT_BYTES: u64 = 128 * 1024;
pub const PRODUCERS: usize = 4;
pub const BATCH_RECORDS_MAX: usize = 50;
/// Padding added to a value, so batches vary in size.
pub const PADDING_BYTES_MAX: usize = 200;
pub const KILL_CYCLES_DEFAULT: usize = 20;
/// A longer run starts over on a fresh data directory after this many cycles, so that the
/// full read-back after every restart stays cheap and the run time grows linearly.
pub const CYCLES_PER_DATA_DIR: usize = 20;
pub const TERM_CYCLES: usize = 3;
/// The load runs this long (a random pick, inclusive) before the server is stopped.
pub const STOP_DELAY_MS: (u64, u64) = (5, 400);

pub const READY_TIMEOUT: Duration = Duration::from_secs(20);
pub const READY_POLL: Duration = Duration::from_millis(50);
/// `omnibus serve` drains requests for at most 10 s after SIGTERM, then flushes.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(30);
pub const PRODUCER_STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// A producer never runs longer than this in one cycle, whatever happens to the stop signal.
pub const LOAD_TIME_MAX: Duration = Duration::from_secs(10);
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
pub const FETCH_REQUESTS_MAX: usize = 100_000;
pub const FAILURES_SHOWN_MAX: usize = 40;
/// Lost or replaced records listed one by one per partition; the rest are summarized.
pub const DETAILS_PER_PARTITION: usize = 3;
pub const LOG_TAIL_BYTES: u64 = 6 * 1024;

// ---------------------------------------------------------------------------------------------
// The tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
pub async fn acknowledged_records_survive_repeated_kill_9_under_load() {
    // Taken as given (a short smoke run of scripts/crash-campaign.sh asks for fewer than the
    // default), so the summary line's count is the count that ran.
    let cycles = match std::env::var("OMNIBUS_CRASH_CYCLES") {
        Ok(text) => match text.trim().parse::<usize>() {
            Ok(cycles) if cycles > 0 => cycles,
            _ => panic!("OMNIBUS_CRASH_CYCLES={text:?} is not a positive count"),
        },
        Err(_) => KILL_CYCLES_DEFAULT,
    };
    run_crash_test(StopMode::Kill, cycles).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
pub async fn acknowledged_records_survive_sigterm_under_load_and_exit_is_clean() {
    run_crash_test(StopMode::Term, TERM_CYCLES).await;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// SIGKILL: no chance to flush anything.
    Kill,
    /// SIGTERM: the broker drains, flushes and must exit 0.
    Term,
}

pub async fn run_crash_test(mode: StopMode, cycles: usize) {
    let seed = seed();
    let started = Instant::now();
    let name = match mode {
        StopMode::Kill => "kill -9",
        StopMode::Term => "SIGTERM",
    };
    println!(
        "crash_http [{name}]: seed={seed} cycles={cycles}, a fresh data directory every \
         {CYCLES_PER_DATA_DIR} cycles (rerun with OMNIBUS_CRASH_SEED={seed})"
    );
    let mut rng = StdRng::seed_from_u64(seed);
    let admin = http_client();
    let (mut acked, mut stored) = (0, 0);
    let mut first = 0;
    while first < cycles {
        let end = (first + CYCLES_PER_DATA_DIR).min(cycles);
        let mut run = Run {
            mode,
            seed,
            directory: tempfile::tempdir().expect("create a temp dir"),
            starts: 0,
        };
        let ledger = run_cycles(&mut run, &mut rng, &admin, first..end).await;
        acked += ledger.acked.len();
        stored += ledger.observed.iter().map(Vec::len).sum::<usize>();
        first = end;
    }
    // One line in the format every crash test prints (scripts/crash-campaign.sh collects
    // them). A lost acknowledged record fails the cycle it is found in, so reaching this
    // line means none was lost.
    println!(
        "crash summary: crash_http [{name}] cycles={cycles} acknowledged={acked} lost=0 \
         stored={stored} seed={seed} seconds={:.1}",
        started.elapsed().as_secs_f64()
    );
    assert!(
        acked > 0,
        "seed {seed}: no publish was ever acknowledged, so nothing was tested"
    );
}

/// Runs `cycles` on one fresh data directory; returns what was verified.
pub async fn run_cycles(
    run: &mut Run,
    rng: &mut StdRng,
    admin: &reqwest::Client,
    cycles: std::ops::Range<usize>,
) -> Ledger {
    let mode = run.mode;
    let seed = run.seed;
    let data_dir = run.directory.path().join("data");
    let mut ledger = Ledger::new();

    let mut server = run.start(&data_dir, admin, None).await;
    create_stream(admin, &server, true)
        .await
        .unwrap_or_else(|message| run.fail(None, &[message], &[&server.log]));

    for cycle in cycles {
        let delay = Duration::from_millis(rng.random_range(STOP_DELAY_MS.0..=STOP_DELAY_MS.1));

        // Load, then stop the server abruptly (or politely) in the middle of it.
        let stop = Arc::new(AtomicBool::new(false));
        let load_deadline = Instant::now() + LOAD_TIME_MAX;
        let mut producers = JoinSet::new();
        for producer in 0..PRODUCERS {
            producers.spawn(produce(Producer {
                client: http_client(),
                base: server.base(),
                producer,
                cycle,
                seed: producer_seed(seed, cycle, producer),
                stop: Arc::clone(&stop),
                deadline: load_deadline,
            }));
        }
        tokio::time::sleep(delay).await;
        let crashed_log = server.log.clone();
        let stop_failures = match mode {
            StopMode::Kill => server.kill_9(),
            StopMode::Term => server.terminate().await,
        };
        stop.store(true, Ordering::SeqCst);
        let reports = join_producers(&mut producers).await;
        drop(server);
        if !stop_failures.is_empty() {
            run.fail(Some(cycle), &stop_failures, &[&crashed_log]);
        }
        let reports = match reports {
            Ok(reports) => reports,
            Err(message) => run.fail(Some(cycle), &[message], &[&crashed_log]),
        };
        let load = ledger.record_load(mode, &reports);

        // Restart on the same data and check everything acknowledged so far.
        let restart = Instant::now();
        server = run.start(&data_dir, admin, Some(cycle)).await;
        let ready_ms = restart.elapsed().as_millis();
        let mut notes = warnings_in(&server.log);
        if load.turned_away > 0 {
            notes.push_str(&format!("; {} publishes answered 503", load.turned_away));
        }
        let mut failures = load.failures.clone();
        if let Err(message) = create_stream(admin, &server, false).await {
            failures.push(message);
        }
        let reading = Instant::now();
        let logs = match read_stream(admin, &server).await {
            Ok(logs) => logs,
            Err(message) => {
                failures.push(message);
                run.fail(Some(cycle), &failures, &[&crashed_log, &server.log]);
            }
        };
        let read_ms = reading.elapsed().as_millis();
        let verifying = Instant::now();
        let verified = ledger.verify(&logs, cycle);
        let verify_ms = verifying.elapsed().as_millis();
        failures.extend(verified.failures);
        if !failures.is_empty() {
            run.fail(Some(cycle), &failures, &[&crashed_log, &server.log]);
        }
        println!(
            "cycle {cycle:>3}: stopped after {:>3} ms; sent {:>5} records in {:>3} requests, \
             {:>5} acknowledged; restart: ready in {ready_ms} ms, read in {read_ms} ms, \
             checked in {verify_ms} ms: high watermarks {:?}, \
             {} unacknowledged present, {} unacknowledged lost{}",
            delay.as_millis(),
            load.records_sent,
            load.requests,
            load.records_acked,
            verified.high_watermarks,
            verified.unacked_present_this_cycle,
            load.records_sent
                .saturating_sub(load.records_acked + verified.unacked_present_this_cycle),
            notes,
        );
    }

    // Leave politely; the guard would SIGKILL otherwise.
    let final_log = server.log.clone();
    let failures = server.terminate().await;
    if !failures.is_empty() {
        run.fail(None, &failures, &[&final_log]);
    }
    ledger
}
