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
