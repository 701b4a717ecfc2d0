//! What the tests that run `emporium serve` as a child process share: a free port,
//! the command with a clean environment, and GraphQL over a plain socket.

#![allow(dead_code)] // each test binary uses a part

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

/// A port nothing listens on right now.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// `emporium` run from the repository root, with no inherited `EMPORIUM_*`,
/// `*_URL` or `OTEL_*` variables.
pub(crate) fn emporium() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_emporium"));
    cmd.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    for (key, _) in std::env::vars() {
        if key.starts_with("EMPORIUM_") || key.ends_with("_URL") || key.starts_with("OTEL_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// One GraphQL POST with extra `headers`, over a plain socket.
pub(crate) fn graphql(port: u16, query: &str, variables: Value, headers: &[(&str, &str)]) -> Value {
    let body = json!({ "query": query, "variables": variables }).to_string();
    let extra: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    let request = format!(
        "POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    stream.write_all(request.as_bytes()).expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let (_, body) = response.split_once("\r\n\r\n").expect("http response");
    serde_json::from_str(body).unwrap_or_else(|_| panic!("json body: {body}"))
}
