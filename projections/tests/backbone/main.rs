//! The relay against real PostgreSQL and NATS: each test has its own database and its
//! own stream prefix, steps the relay with `relay_once()` where it can, and breaks
//! things for real (open transactions, rollbacks, kill -9, a deleted stream, a crashed
//! nats-server that lost its tail).

mod both_backends;
mod both_backends_accounts;
mod both_backends_catalog;
mod embedded;
mod feed;
mod framework;
mod helpers;
mod parity;
mod read_models;
mod rows;
mod support;

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use helpers::{PATIENCE, TestBackbone, spawn_backbone, spawn_backbone_on};
use sqlx::Connection;
use tokio::sync::oneshot;
use uuid::Uuid;

#[tokio::test]
async fn out_of_order_commits_are_never_skipped() {
    let app = spawn_backbone().await;
    let mut relay = app.relay();

    // A takes position 1 and stays open; B takes position 2 and commits first.
    let mut a = app.pool.begin().await.unwrap();
    TestBackbone::insert_event(&mut a, "a", 1).await;
    let mut b = app.pool.begin().await.unwrap();
    TestBackbone::insert_event(&mut b, "b", 1).await;
    b.commit().await.unwrap();

    // B is committed but sits above A's horizon: publishing it now would let a
    // checkpoint pass A's event. The relay must wait.
    assert_eq!(relay.relay_once().await.unwrap(), 0);
    assert!(app.stream_messages().await.is_empty());

    a.commit().await.unwrap();
    app.relay_until_caught_up(&mut relay).await;
    let messages = app.assert_stream_matches_store().await;
    let ids: Vec<&str> = messages.iter().map(|m| m.message_id.as_str()).collect();
    assert_eq!(ids, ["order:a:1", "order:b:1"]);
    assert_eq!(
        messages
            .iter()
            .map(|m| m.envelope.position)
            .collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(
        messages[0].envelope.payload,
        serde_json::json!({"aggregate": "a", "sequence": 1})
    );
    app.teardown().await;
}

#[tokio::test]
async fn concurrent_writers_with_rollbacks_reach_the_stream_exactly() {
    let app = spawn_backbone().await;
    let mut relay = app.relay();

    let writers: Vec<_> = (0..8)
        .map(|task| {
            let pool = app.pool.clone();
            tokio::spawn(async move {
                let mut rng = fastrand::Rng::with_seed(task);
                let aggregate = format!("w{task}");
                let mut next_sequence = 1_i64;
                let mut rolled_back = Vec::new();
                for _ in 0..50 {
                    let mut tx = pool.begin().await.unwrap();
                    let events = rng.i64(1..=3);
                    let mut ids = Vec::new();
                    for k in 0..events {
                        ids.push(
                            TestBackbone::insert_event(&mut tx, &aggregate, next_sequence + k)
                                .await,
                        );
                        tokio::time::sleep(Duration::from_micros(rng.u64(0..2_000))).await;
                    }
                    if rng.u8(0..5) == 0 {
                        tx.rollback().await.unwrap();
                        rolled_back.extend(ids);
                    } else {
                        tx.commit().await.unwrap();
                        next_sequence += events;
                    }
                }
                rolled_back
            })
        })
        .collect();

    // Relay while the writers race.
    let mut rolled_back = Vec::new();
    let mut published = 0;
    for writer in writers {
        while !writer.is_finished() {
            published += relay.relay_once().await.unwrap();
            tokio::task::yield_now().await;
        }
        rolled_back.extend(writer.await.unwrap());
    }
    // Whether anything could be published while the writers ran depends on every
    // transaction on this PostgreSQL (the horizon is cluster-wide), so it is only logged.
    tracing::debug!(published, "published while writers ran");
    assert!(!rolled_back.is_empty(), "some transactions rolled back");

    app.relay_until_caught_up(&mut relay).await;
    let messages = app.assert_stream_matches_store().await;
    let rolled_back: HashSet<Uuid> = rolled_back.into_iter().collect();
    assert!(
        messages
            .iter()
            .all(|m| !rolled_back.contains(&m.envelope.event_id)),
        "an event of a rolled-back transaction reached the stream"
    );
    app.teardown().await;
}

fn spawn_relay_process(app: &TestBackbone, nats_url: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_emporium-relay"))
        .env("DATABASE_URL", &app.database_url)
        .env("NATS_URL", nats_url)
        .env("STREAM_PREFIX", &app.prefix)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the relay process")
}

#[tokio::test]
async fn relay_process_killed_at_random_points_publishes_each_event_once() {
    let app = spawn_backbone().await;
    app.append(2_000).await;

    // Writers keep committing while relay processes come and go.
    let writer = {
        let pool = app.pool.clone();
        tokio::spawn(async move {
            let mut conn = pool.acquire().await.unwrap();
            for i in 0..400 {
                let mut tx = conn.begin().await.unwrap();
                TestBackbone::insert_event(&mut tx, &format!("k{i}"), 1).await;
                TestBackbone::insert_event(&mut tx, &format!("k{i}"), 2).await;
                tx.commit().await.unwrap();
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };

    let mut rng = fastrand::Rng::new();
    let mut lengths = Vec::new();
    for _ in 0..24 {
        let mut child = spawn_relay_process(&app, &helpers::nats_url());
        // A random point in the process's life: starting, standing by, mid-batch.
        tokio::time::sleep(Duration::from_millis(rng.u64(20..400))).await;
        child.kill().expect("SIGKILL the relay");
        child.wait().expect("reap the relay");
        lengths.push(app.stream_messages().await.len());
    }
    writer.await.unwrap();
    assert!(
        lengths.last() > lengths.first(),
        "the killed relays made progress: {lengths:?}"
    );

    let mut relay = app.relay();
    app.relay_until_caught_up(&mut relay).await;
    app.assert_stream_matches_store().await;
    app.teardown().await;
}

#[tokio::test]
async fn deleted_stream_is_rebuilt_from_the_store_in_the_same_order() {
    let app = spawn_backbone().await;
    let mut relay = app.relay();
    app.append(50).await;
    app.relay_until_caught_up(&mut relay).await;
    let before = app.assert_stream_matches_store().await;

    app.jetstream
        .delete_stream(app.layout.stream_name())
        .await
        .expect("delete the stream");
    app.append(10).await;
    app.relay_until_caught_up(&mut relay).await;
    let after = app.assert_stream_matches_store().await;
    assert_eq!(after.len(), 60);
    for (old, new) in before.iter().zip(&after) {
        assert_eq!(
            (old.sequence, &old.message_id, old.envelope.event_id),
            (new.sequence, &new.message_id, new.envelope.event_id)
        );
    }
    app.teardown().await;
}

#[tokio::test]
async fn a_stream_of_another_event_store_is_refused_not_silently_skipped() {
    let first = spawn_backbone().await;
    let mut relay = first.relay();
    first.append(5).await;
    first.relay_until_caught_up(&mut relay).await;

    // A second database (the first reset, say) behind the same stream prefix.
    let second = spawn_backbone().await;
    second.append(3).await;
    let stranger = emporium_projections::relay::Relay::new(
        second.pool.clone(),
        first.jetstream.clone(),
        first.layout.clone(),
        helpers::test_config(),
    );
    let error = stranger
        .read_head()
        .await
        .expect_err("a foreign stream is refused");
    assert!(format!("{error:#}").contains("never recorded"), "{error:#}");
    assert_eq!(
        first.stream_messages().await.len(),
        5,
        "nothing was published"
    );

    first.teardown().await;
    second.teardown().await;
}

#[tokio::test]
async fn deleted_stream_is_recreated_by_a_running_relay() {
    let app = spawn_backbone().await;
    let (stop, stopped) = oneshot::channel::<()>();
    let running = tokio::spawn(app.relay().run(async {
        let _ = stopped.await;
    }));
    app.append(30).await;
    app.wait_until_published().await;

    app.jetstream
        .delete_stream(app.layout.stream_name())
        .await
        .expect("delete the stream");
    app.append(5).await;
    // The probe in wait_until_published would recreate the stream itself; wait for the
    // running relay to do it instead.
    let deadline = Instant::now() + PATIENCE;
    while app.stream_messages().await.len() < 35 {
        assert!(
            Instant::now() < deadline,
            "the relay did not rebuild the stream"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.assert_stream_matches_store().await;
    stop.send(()).unwrap();
    running.await.unwrap().unwrap();
    app.teardown().await;
}

#[tokio::test]
async fn two_relays_one_active_and_a_standby_takes_over() {
    let app = spawn_backbone().await;
    let first = app.relay();
    let second = app.relay();

    let lock = first
        .try_lock()
        .await
        .unwrap()
        .expect("the first relay locks");
    assert!(
        second.try_lock().await.unwrap().is_none(),
        "the lock is exclusive"
    );
    lock.release().await.unwrap();
    let lock = second
        .try_lock()
        .await
        .unwrap()
        .expect("free once released");
    lock.release().await.unwrap();

    // Both run at once; writes flow through whichever is active.
    let (stop_first, first_stopped) = oneshot::channel::<()>();
    let (stop_second, second_stopped) = oneshot::channel::<()>();
    let first = tokio::spawn(first.run(async {
        let _ = first_stopped.await;
    }));
    app.append(100).await;
    app.wait_until_published().await;
    let second = tokio::spawn(second.run(async {
        let _ = second_stopped.await;
    }));
    app.append(100).await;
    app.wait_until_published().await;
    let holders: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(holders, 1, "exactly one relay holds the lock");

    // The active one (the first) dies; the standby takes over.
    first.abort();
    let _ = first.await;
    drop(stop_first);
    app.append(100).await;
    app.wait_until_published().await;

    app.assert_stream_matches_store().await;
    stop_second.send(()).unwrap();
    second.await.unwrap().unwrap();
    app.teardown().await;
}

#[tokio::test]
async fn a_long_open_transaction_delays_publication_but_loses_nothing() {
    let app = spawn_backbone().await;
    let (stop, stopped) = oneshot::channel::<()>();
    let running = tokio::spawn(app.relay().run(async {
        let _ = stopped.await;
    }));

    let mut held = app.pool.begin().await.unwrap();
    TestBackbone::insert_event(&mut held, "held", 1).await;
    app.append(20).await;
    // Hold it open for seconds while the relay polls a hundred times over.
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        assert!(
            app.stream_messages().await.is_empty(),
            "nothing may pass the open transaction"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    held.commit().await.unwrap();
    app.wait_until_published().await;
    let messages = app.assert_stream_matches_store().await;
    assert_eq!(messages.len(), 21);
    assert_eq!(messages[0].message_id, "order:held:1");

    stop.send(()).unwrap();
    running.await.unwrap().unwrap();
    app.teardown().await;
}

#[tokio::test]
async fn a_transaction_of_another_database_does_not_hold_publication_back() {
    let app = spawn_backbone().await;
    let mut relay = app.relay();
    // Another database on the same server, with a transaction holding an xid older
    // than the event's: it cannot write this database's events.
    let other = emporium_tests::TestDatabase::create(1).await.unwrap();
    let mut elsewhere = other.pool().begin().await.unwrap();
    let _: i64 = sqlx::query_scalar("SELECT pg_current_xact_id()::text::bigint")
        .fetch_one(&mut *elsewhere)
        .await
        .unwrap();
    app.append(3).await;
    assert_eq!(
        relay.relay_once().await.unwrap(),
        3,
        "published past the other database's open transaction"
    );
    // One of this database, younger than those events, still holds back what
    // commits after it.
    let mut held = app.pool.begin().await.unwrap();
    TestBackbone::insert_event(&mut held, "held", 1).await;
    app.append(2).await;
    assert_eq!(
        relay.relay_once().await.unwrap(),
        0,
        "nothing passes `held`"
    );
    held.commit().await.unwrap();
    app.relay_until_caught_up(&mut relay).await;
    let messages = app.assert_stream_matches_store().await;
    assert_eq!(messages.len(), 6);
    assert_eq!(messages[3].message_id, "order:held:1");
    elsewhere.rollback().await.unwrap();
    other.drop_database().await.unwrap();
    app.teardown().await;
}

/// A relay that would poll only once an hour, so whatever it publishes after its
/// first rounds it publishes because it was woken.
fn sleepy_relay(app: &TestBackbone) -> emporium_projections::relay::Relay {
    emporium_projections::relay::Relay::new(
        app.pool.clone(),
        app.jetstream.clone(),
        app.layout.clone(),
        emporium_projections::relay::RelayConfig {
            poll_interval: Duration::from_secs(3_600),
            verify_interval: Duration::from_secs(3_600),
            ..helpers::test_config()
        },
    )
}

/// Waits until the stream holds `count` messages, calling `nudge` between looks.
async fn wait_for_stream_len(app: &TestBackbone, count: usize, nudge: impl AsyncFn()) {
    let deadline = Instant::now() + PATIENCE;
    while app.stream_messages().await.len() < count {
        assert!(
            Instant::now() < deadline,
            "the relay did not publish {count} events"
        );
        nudge().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_relay_woken_in_process_publishes_without_waiting_for_its_poll() {
    let app = spawn_backbone().await;
    let relay = sleepy_relay(&app);
    let wake = relay.wake_handle();
    let (stop, stopped) = oneshot::channel::<()>();
    let running = tokio::spawn(relay.run(async {
        let _ = stopped.await;
    }));
    // Its first rounds run at once; then it sleeps on its hour-long poll.
    app.append(1).await;
    wait_for_stream_len(&app, 1, async || wake.wake()).await;

    for round in 1..=3 {
        app.append(5).await;
        wake.wake();
        wait_for_stream_len(&app, 1 + 5 * round, async || {}).await;
    }
    app.assert_stream_matches_store().await;
    stop.send(()).unwrap();
    running.await.unwrap().unwrap();
    app.teardown().await;
}

#[tokio::test]
async fn a_relay_woken_over_postgres_publishes_without_waiting_for_its_poll() {
    let app = spawn_backbone().await;
    let (stop, stopped) = oneshot::channel::<()>();
    let running = tokio::spawn(sleepy_relay(&app).run(async {
        let _ = stopped.await;
    }));
    let notify = async || {
        emporium_projections::relay::wake_over_postgres(&app.pool)
            .await
            .expect("notify");
    };
    app.append(1).await;
    wait_for_stream_len(&app, 1, &notify).await;
    // Another process's writer: NOTIFY on the wake channel (repeated, as the relay's
    // listener may still be connecting when the first one is sent).
    for round in 1..=3 {
        app.append(5).await;
        wait_for_stream_len(&app, 1 + 5 * round, &notify).await;
    }
    app.assert_stream_matches_store().await;
    stop.send(()).unwrap();
    running.await.unwrap().unwrap();
    app.teardown().await;
}

/// A nats-server of the test's own (the shared one must not be disturbed), on a free
/// port with its own store directory.
struct OwnNats {
    port: u16,
    store: std::path::PathBuf,
    child: Option<Child>,
}

impl OwnNats {
    fn binary() -> Option<std::path::PathBuf> {
        let path = std::env::var_os("NATS_SERVER_BIN")
            .map_or_else(|| "/usr/sbin/nats-server".into(), std::path::PathBuf::from);
        path.exists().then_some(path)
    }

    fn start_new() -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let store = std::env::temp_dir().join(format!("emporium-nats-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&store).ok()?;
        let mut server = Self {
            port,
            store,
            child: None,
        };
        server.start();
        Some(server)
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn start(&mut self) {
        let child = Command::new(Self::binary().expect("nats-server"))
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(&self.store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server");
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL nats-server");
            child.wait().expect("reap nats-server");
        }
    }

    /// Waits (bounded) until the server answers on its port.
    async fn wait_ready(&self) {
        let deadline = Instant::now() + PATIENCE;
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "nats-server did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for OwnNats {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[tokio::test]
#[allow(clippy::print_stderr)] // a skipped test says so
async fn nats_crash_mid_publish_and_a_lost_tail_are_repaired_from_the_store() {
    let Some(mut nats) = OwnNats::start_new() else {
        eprintln!("skipped: no nats-server binary (set NATS_SERVER_BIN)");
        return;
    };
    nats.wait_ready().await;
    let app = spawn_backbone_on(&nats.url()).await;
    let mut relay = app.relay();
    app.append(100).await;
    app.relay_until_caught_up(&mut relay).await;

    // What reached the disk: a copy of the store taken while the server is down.
    nats.kill();
    let synced = nats.store.with_extension("synced");
    copy_dir(&nats.store, &synced);
    nats.start();
    nats.wait_ready().await;

    // Crash the server while a running relay publishes a large backlog.
    app.append(3_000).await;
    let (stop, stopped) = oneshot::channel::<()>();
    let running = tokio::spawn(app.relay().run(async {
        let _ = stopped.await;
    }));
    let deadline = Instant::now() + PATIENCE;
    while app.stream_messages().await.len() <= 100 {
        assert!(
            Instant::now() < deadline,
            "the relay did not start publishing"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    nats.kill();
    // The unsynced tail vanishes with the crash: the stream is back to 100 messages.
    std::fs::remove_dir_all(&nats.store).unwrap();
    copy_dir(&synced, &nats.store);
    std::fs::remove_dir_all(&synced).unwrap();
    nats.start();
    nats.wait_ready().await;

    app.wait_until_published().await;
    app.assert_stream_matches_store().await;
    stop.send(()).unwrap();
    running.await.unwrap().unwrap();
    app.teardown().await;
}

/// Every node of an `EXPLAIN (FORMAT JSON)` plan, depth first.
fn plan_nodes(node: &serde_json::Value, out: &mut Vec<serde_json::Value>) {
    out.push(node.clone());
    if let Some(children) = node.get("Plans").and_then(serde_json::Value::as_array) {
        for child in children {
            plan_nodes(child, out);
        }
    }
}

/// The plan PostgreSQL uses for `sql` once it switched the prepared statement to a
/// generic plan (sqlx prepares every statement; after five executions PostgreSQL may
/// stop planning for the actual cursor).
async fn generic_plan(
    conn: &mut sqlx::PgConnection,
    sql: &str,
    types: &str,
    args: &str,
) -> Vec<serde_json::Value> {
    sqlx::raw_sql("SET plan_cache_mode = force_generic_plan")
        .execute(&mut *conn)
        .await
        .expect("force generic plans");
    sqlx::raw_sql(&format!("PREPARE probe({types}) AS {sql}"))
        .execute(&mut *conn)
        .await
        .expect("prepare");
    let plan: serde_json::Value =
        sqlx::query_scalar(&format!("EXPLAIN (FORMAT JSON) EXECUTE probe({args})"))
            .fetch_one(&mut *conn)
            .await
            .expect("explain");
    sqlx::raw_sql("DEALLOCATE probe")
        .execute(&mut *conn)
        .await
        .expect("deallocate");
    let mut nodes = Vec::new();
    plan_nodes(&plan[0]["Plan"], &mut nodes);
    nodes
}

#[tokio::test]
async fn the_relays_reads_walk_the_commit_order_index_even_under_a_generic_plan() {
    let app = spawn_backbone().await;
    // Enough events that a sequential scan is a real cost, as in a shop's store.
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type,
                             event_version, payload, metadata)
         SELECT 'cart', g::text, 1, 'CartOpened', '1', '{}', '{}'
         FROM generate_series(1, 20000) AS g",
    )
    .execute(&app.pool)
    .await
    .expect("seed events");
    sqlx::query("ANALYZE events")
        .execute(&app.pool)
        .await
        .expect("analyze");
    let mut conn = app.pool.acquire().await.expect("connection");
    // A cursor past every event: what the probe sees when the relay is caught up.
    let caught_up = "'999999999', 0";
    for (name, sql, types, args) in [
        (
            "pending probe",
            emporium_projections::relay::PENDING_PROBE.to_owned(),
            "text, bigint",
            caught_up.to_owned(),
        ),
        (
            "batch read",
            emporium_projections::relay::read_visible_sql().to_owned(),
            "text, bigint, bigint",
            format!("{caught_up}, 256"),
        ),
    ] {
        let nodes = generic_plan(&mut conn, &sql, types, &args).await;
        let on_events: Vec<&serde_json::Value> = nodes
            .iter()
            .filter(|n| n["Relation Name"] == "events")
            .collect();
        assert!(
            !on_events.is_empty(),
            "{name}: no scan of events in {nodes:#?}"
        );
        for node in on_events {
            assert_eq!(
                node["Index Name"], "events_commit_order",
                "{name} must walk the commit-order index, not {node:#?}"
            );
        }
    }
    drop(conn);
    app.teardown().await;
}
