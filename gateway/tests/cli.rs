//! The `emporium` binary, run as a user would.

use std::process::Command;

fn emporium() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_emporium"));
    cmd.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    // Start from a clean slate: no inherited EMPORIUM_* or service URLs.
    for (key, _) in std::env::vars() {
        if key.starts_with("EMPORIUM_") || key.ends_with("_URL") {
            cmd.env_remove(key);
        }
    }
    cmd
}

#[test]
fn config_print_never_prints_a_secret() {
    let output = emporium()
        .args(["config", "print"])
        .env("EMPORIUM_AUTH__JWT_SECRET", "jwt-very-secret-value")
        .env(
            "DATABASE_URL",
            "postgres://shop:pg-password-123@db.internal:5432/shop",
        )
        .env(
            "EMPORIUM_NATS__URL",
            "nats://bus:nats-token-456@nats.internal:4222",
        )
        .env(
            "EMPORIUM_REDIS__URL",
            "redis://:redis-pass-789@cache:6379/0",
        )
        .output()
        .expect("run emporium");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(output.status.success(), "{stderr}");
    for secret in [
        "jwt-very-secret-value",
        "pg-password-123",
        "nats-token-456",
        "redis-pass-789",
    ] {
        assert!(
            !stdout.contains(secret),
            "secret {secret} printed:\n{stdout}"
        );
        assert!(
            !stderr.contains(secret),
            "secret {secret} logged:\n{stderr}"
        );
    }
    // The layers took effect: the redacted values still say where things point.
    assert!(
        stdout.contains("postgres://shop:***@db.internal:5432/shop"),
        "{stdout}"
    );
    assert!(
        stdout.contains("nats://bus:***@nats.internal:4222"),
        "{stdout}"
    );
    assert!(stdout.contains(r#"jwt_secret = "[redacted]""#), "{stdout}");
}

#[test]
fn flags_win_over_environment() {
    let output = emporium()
        .args(["--port", "9100", "config", "print"])
        .env("EMPORIUM_HTTP__PORT", "9000")
        .output()
        .expect("run emporium");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains("port = 9100"), "{stdout}");
}

#[test]
fn a_bad_setting_is_a_configuration_error() {
    let output = emporium()
        .args(["config", "print"])
        .env("EMPORIUM_HTTP__PORT", "not-a-port")
        .output()
        .expect("run emporium");
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("invalid configuration"), "{stderr}");
}

#[test]
fn production_refuses_the_development_signing_key() {
    let output = emporium()
        .args(["--env", "production", "config", "print"])
        .output()
        .expect("run emporium");
    assert_eq!(output.status.code(), Some(3));
}

#[test]
fn every_subcommand_has_help() {
    for sub in [
        vec![],
        vec!["serve"],
        vec!["relay"],
        vec!["project"],
        vec!["worker"],
        vec!["migrate"],
        vec!["seed"],
        vec!["config", "print"],
    ] {
        let mut args = sub.clone();
        args.push("--help");
        let output = emporium().args(&args).output().expect("run emporium");
        assert!(output.status.success(), "{sub:?}");
        let stdout = String::from_utf8(output.stdout).unwrap();
        assert!(stdout.contains("Usage: emporium"), "{sub:?}: {stdout}");
    }
}

mod relay {
    //! `emporium relay` as an operator runs it: a process that publishes what is
    //! committed and stops cleanly on SIGTERM.

    use std::time::{Duration, Instant};

    use chrono::Utc;
    use emporium_commands::{Dispatcher, Loading};
    use emporium_domain::inventory::{Inventory, InventoryCommand};
    use emporium_domain::metadata::Actor;
    use emporium_domain::{EventMetadata, Quantity, Sku};
    use emporium_tests::{TestDatabase, nats_url, unique_prefix};
    use uuid::Uuid;

    use super::emporium;

    fn meta() -> EventMetadata {
        EventMetadata::new(Uuid::new_v4(), Actor::System("test".into()), Utc::now())
    }

    /// Waits (bounded: the relay is another process) until the stream holds `n`
    /// messages.
    async fn wait_for_messages(js: &async_nats::jetstream::Context, stream: &str, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(mut s) = js.get_stream(stream).await
                && s.info().await.map(|i| i.state.messages).unwrap_or(0) >= n
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "stream {stream} never reached {n} messages"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[tokio::test]
    async fn relay_subcommand_publishes_committed_events_and_stops_on_sigterm() {
        let db = TestDatabase::create(4).await.unwrap();
        emporium_commands::db::migrate(db.pool()).await.unwrap();
        let inventory = Dispatcher::<Inventory>::new(db.pool().clone(), Loading::Replay);
        let track = InventoryCommand::TrackInventory {
            sku: Sku::parse("CLI-1").unwrap(),
            low_stock_threshold: 0,
            at: Utc::now(),
        };
        inventory.execute("CLI-1", track, &meta()).await.unwrap();

        let prefix = unique_prefix();
        let mut child = emporium()
            .arg("relay")
            .env("EMPORIUM_ENV", "test")
            .env("EMPORIUM_DATABASE__URL", db.url())
            .env("EMPORIUM_NATS__URL", nats_url())
            .env("EMPORIUM_NATS__STREAM_PREFIX", &prefix)
            .spawn()
            .expect("start emporium relay");

        let client = async_nats::connect(nats_url()).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let stream = emporium_projections::bus::StreamLayout::new(&prefix)
            .unwrap()
            .stream_name();
        wait_for_messages(&js, &stream, 1).await;
        let receive = InventoryCommand::ReceiveStock {
            quantity: Quantity::new(5).unwrap(),
            at: Utc::now(),
        };
        inventory.execute("CLI-1", receive, &meta()).await.unwrap();
        wait_for_messages(&js, &stream, 2).await;

        let pid = child.id().to_string();
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(killed.success());
        let status = child.wait().unwrap();
        assert!(status.success(), "relay exited with {status}");

        js.delete_stream(&stream).await.unwrap();
        db.drop_database().await.unwrap();
    }
}
