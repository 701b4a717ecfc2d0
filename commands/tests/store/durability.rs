//! kill -9 during a burst of commands on the embedded store: every acknowledged
//! command's event is there after a restart.

use std::collections::HashSet;
use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use emporium_commands::store::{EventStore as _, SqliteStore};

/// Acknowledgements to collect before the kill.
const ACKS_BEFORE_KILL: usize = 300;

#[tokio::test]
async fn every_acknowledged_command_survives_a_kill_9_mid_burst() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let mut acked: HashSet<(String, i64, i64)> = HashSet::new();
    // Two bursts on the same file: the second starts on what the first left.
    for round in 0..2 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_emporium-sqlite-burst"))
            .env("STORE", &path)
            .env("WRITERS", "4")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the burst");
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stdout).lines() {
                match line {
                    Ok(line) => lines.push(line),
                    Err(_) => break,
                }
            }
            lines
        });
        // Let it get going, then kill it while writers are mid-commit.
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut store_seen = 0;
        while store_seen < ACKS_BEFORE_KILL * (round + 1) {
            assert!(Instant::now() < deadline, "the burst never got going");
            assert!(
                child.try_wait().unwrap().is_none(),
                "the burst exited early"
            );
            std::thread::sleep(Duration::from_millis(20));
            // Count acknowledgements by what the child has committed so far: the
            // pipe is only read by the reader thread. The file is readable while the
            // child writes (WAL); the lock only keeps a second *store* out.
            store_seen = count_committed(&path).await;
        }
        child.kill().expect("SIGKILL");
        let status = child.wait().unwrap();
        assert!(!status.success(), "killed, not exited: {status:?}");
        let lines = reader.join().unwrap();
        assert!(lines.len() >= ACKS_BEFORE_KILL / 2, "{} acks", lines.len());
        for line in lines {
            let mut parts = line.split_whitespace();
            assert_eq!(parts.next(), Some("ack"), "{line}");
            let id = parts.next().unwrap().to_owned();
            let sequence: i64 = parts.next().unwrap().parse().unwrap();
            let position: i64 = parts.next().unwrap().parse().unwrap();
            acked.insert((id, sequence, position));
        }

        // Restart: the OS released the child's lock; every acknowledged event is
        // there, at the position it was acknowledged with.
        let store = SqliteStore::open(&path)
            .await
            .expect("reopen after kill -9");
        let log = store.read_log(0, 1_000_000).await.unwrap();
        let stored: HashSet<(String, i64, i64)> = log
            .iter()
            .map(|e| (e.aggregate_id.clone(), e.sequence, e.position.unwrap()))
            .collect();
        let missing: Vec<_> = acked.difference(&stored).collect();
        assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
        // And the log is whole: dense positions, every stream gap-free.
        for (i, event) in log.iter().enumerate() {
            assert_eq!(event.position, Some(i64::try_from(i).unwrap() + 1));
        }
        store.close().await;
    }
}

/// Events committed in the store file so far, read without taking the store.
async fn count_committed(path: &std::path::Path) -> usize {
    use sqlx::Connection as _;
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .read_only(true);
    let Ok(mut conn) = sqlx::SqliteConnection::connect_with(&options).await else {
        return 0;
    };
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&mut conn)
        .await
        .unwrap_or(0);
    let _ = conn.close().await;
    usize::try_from(count).unwrap_or(0)
}
