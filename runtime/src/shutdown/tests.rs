//! The drain sequence on a paused clock with a real listener: health goes NOT_SERVING first,
//! the listener keeps accepting through the grace period, then stops; in-flight work
//! finishes; work past the drain timeout is aborted.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

use super::*;

/// What happened, and when (on the paused clock).
#[derive(Clone, Default)]
struct Journal(Arc<Mutex<Vec<(&'static str, Instant)>>>);

impl Journal {
    fn note(&self, what: &'static str) {
        self.0.lock().unwrap().push((what, Instant::now()));
    }

    fn when(&self, what: &str) -> Option<Instant> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .find(|(w, _)| *w == what)
            .map(|(_, at)| *at)
    }

    fn count(&self, what: &str) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(w, _)| *w == what)
            .count()
    }
}

/// A server that notes each connection it accepts, until the token is cancelled.
async fn accepting(
    listener: TcpListener,
    cancel: CancellationToken,
    journal: Journal,
) -> Result<(), String> {
    loop {
        tokio::select! {
            () = cancel.cancelled() => {
                journal.note("stopped accepting");
                return Ok(());
            }
            accepted = listener.accept() => {
                accepted.map_err(|e| e.to_string())?;
                journal.note("accepted");
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn health_goes_first_then_grace_then_listeners_stop_and_work_finishes() {
    let drain = Drain {
        grace: Duration::from_secs(5),
        timeout: Duration::from_secs(30),
    };
    let journal = Journal::default();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut tasks: Tasks<String> = Tasks::new();
    tasks.spawn(accepting(listener, tasks.token().clone(), journal.clone()));
    // An in-flight stream: it ignores the stop signal and needs 8 s more to finish.
    let stream_journal = journal.clone();
    tasks.spawn(async move {
        tokio::time::sleep(Duration::from_secs(8)).await;
        stream_journal.note("stream finished");
        Ok(())
    });

    let health = journal.clone();
    let started = Instant::now();
    let draining = tokio::spawn(tasks.drain(drain, async move { health.note("not serving") }));

    // A client arriving during the grace period is still accepted.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _client = TcpStream::connect(addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(
        journal.count("accepted"),
        1,
        "accepted during the grace period"
    );

    draining.await.unwrap();
    let not_serving = journal.when("not serving").unwrap();
    let stopped = journal.when("stopped accepting").unwrap();
    let finished = journal.when("stream finished").unwrap();
    let accepted = journal.when("accepted").unwrap();
    assert_eq!(not_serving, started, "health flips before anything else");
    assert!(not_serving < accepted && accepted < stopped);
    assert!(stopped - not_serving >= drain.grace, "grace respected");
    assert!(
        finished > stopped,
        "in-flight work outlived the listener and finished"
    );
    // The listener is gone: a new client is refused.
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
}

/// Drops its flag when the task holding it is aborted.
struct Aborted(Arc<AtomicBool>);

impl Drop for Aborted {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[tokio::test(start_paused = true)]
async fn work_past_the_drain_timeout_is_aborted() {
    let drain = Drain {
        grace: Duration::ZERO,
        timeout: Duration::from_secs(3),
    };
    let mut tasks: Tasks<String> = Tasks::new();
    let aborted = Arc::new(AtomicBool::new(false));
    let guard = Aborted(Arc::clone(&aborted));
    tasks.spawn(async move {
        let _guard = guard;
        std::future::pending::<()>().await;
        Ok(())
    });
    let started = Instant::now();
    tasks.drain(drain, async {}).await;
    let waited = started.elapsed();
    assert!(
        waited >= drain.timeout && waited < drain.timeout + Duration::from_secs(1),
        "{waited:?}"
    );
    assert!(aborted.load(Ordering::SeqCst), "the stuck task was aborted");
}

#[tokio::test]
async fn the_first_failure_ends_the_wait() {
    let mut tasks: Tasks<String> = Tasks::new();
    tasks.spawn(async { Ok(()) });
    tasks.spawn(async { Err("metrics listener failed".to_owned()) });
    let failed = tasks.wait_for_failure(|join| join.to_string()).await;
    assert_eq!(failed, Err("metrics listener failed".to_owned()));
}

#[tokio::test]
async fn a_panicked_task_is_reported_through_the_callback() {
    let mut tasks: Tasks<String> = Tasks::new();
    tasks.spawn(async { panic!("boom") });
    let failed = tasks
        .wait_for_failure(|join| format!("panicked: {}", join.is_panic()))
        .await;
    assert_eq!(failed, Err("panicked: true".to_owned()));
}

#[tokio::test]
async fn clean_tasks_end_the_wait_with_ok() {
    let mut tasks: Tasks<String> = Tasks::new();
    tasks.spawn(async { Ok(()) });
    assert_eq!(
        tasks.wait_for_failure(|join| join.to_string()).await,
        Ok(())
    );
}

/// H7: what in-flight streams depend on (the pool source, the scrapers, flow control) keeps
/// running through the grace period and the drain, and stops only after the servers are
/// done; the old sequence stopped it with the listeners.
#[tokio::test(start_paused = true)]
async fn h7_background_work_outlives_the_servers_and_stops_last() {
    let drain = Drain {
        grace: Duration::from_secs(5),
        timeout: Duration::from_secs(30),
    };
    let journal = Journal::default();
    let mut tasks: Tasks<String> = Tasks::new();
    let stream_journal = journal.clone();
    tasks.spawn(async move {
        // An in-flight stream that needs 12 s: past the grace, within the timeout.
        tokio::time::sleep(Duration::from_secs(12)).await;
        stream_journal.note("stream finished");
        Ok(())
    });
    let background = tasks.background_token().clone();
    let servers = tasks.token().clone();
    let scraper_journal = journal.clone();
    tasks.spawn_background(async move {
        loop {
            tokio::select! {
                () = background.cancelled() => {
                    scraper_journal.note("scraper stopped");
                    return Ok(());
                }
                () = tokio::time::sleep(Duration::from_millis(500)) => {
                    if servers.is_cancelled() {
                        scraper_journal.note("scraped after the listeners stopped");
                    }
                }
            }
        }
    });
    let started = Instant::now();
    tasks.drain(drain, async {}).await;
    let finished = journal.when("stream finished").unwrap();
    let stopped = journal.when("scraper stopped").unwrap();
    assert!(
        journal.count("scraped after the listeners stopped") > 0,
        "the scraper kept working while streams drained"
    );
    assert!(stopped >= finished, "background stops after the servers");
    assert!(stopped - started < drain.grace + drain.timeout);
}

/// H7: background work that ignores its token is aborted after a bounded wait, so a drain
/// always ends.
#[tokio::test(start_paused = true)]
async fn h7_stuck_background_work_is_aborted_after_the_servers() {
    let mut tasks: Tasks<String> = Tasks::new();
    let aborted = Arc::new(AtomicBool::new(false));
    let guard = Aborted(Arc::clone(&aborted));
    tasks.spawn_background(async move {
        let _guard = guard;
        std::future::pending::<()>().await;
        Ok(())
    });
    let started = Instant::now();
    let drain = Drain {
        grace: Duration::ZERO,
        timeout: Duration::from_secs(3),
    };
    tasks.drain(drain, async {}).await;
    assert!(aborted.load(Ordering::SeqCst));
    assert!(started.elapsed() <= BACKGROUND_STOP_TIMEOUT + Duration::from_secs(1));
}

#[tokio::test]
async fn a_failing_background_task_ends_the_wait() {
    let mut tasks: Tasks<String> = Tasks::new();
    tasks.spawn(std::future::pending());
    tasks.spawn_background(async { Err("pool watch failed".to_owned()) });
    let failed = tasks.wait_for_failure(|join| join.to_string()).await;
    assert_eq!(failed, Err("pool watch failed".to_owned()));
}
