//! The embedded mode as a newcomer runs it: the real `emporium serve` binary over a
//! data directory holding the demo shop, with no server configured.
//!
//! Measures:
//! - cold start to ready: from spawning `serve` over a seeded data directory until
//!   `/readyz` answers 200 and a products query answers with products (goal < 2 s),
//!   over `BENCH_STARTS` starts (default 5);
//! - idle RSS of the serve process (`VmRSS` in `/proc/<pid>/status`) one second after
//!   it is ready (goal < 150 MB), and again after the load below (with `VmHWM`);
//! - `addToCart` commands/s through GraphQL at 16 clients back to back for
//!   `BENCH_SECONDS` (default 10), each answered read-your-writes like the distributed
//!   figure of `benches/graphql.rs`.
//!
//! `cargo bench -p emporium-gateway --bench embedded` (or `./dev bench`). Knobs:
//! `BENCH_PRODUCTS` (the first start's demo seed, default 1000 as `serve` seeds),
//! `BENCH_STARTS`, `BENCH_SECONDS`, `BENCH_CLIENTS` (default 16). The data directory is
//! a temporary one, seeded by a first `serve` (its time is printed too); the load
//! generator runs in this process on one thread, the server in its own process.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

const LISTING: &str = "{ products(first: 20) { edges { node { sku name } } } }";
const ADD_TO_CART: &str =
    "mutation($sku: String!) { addToCart(sku: $sku, quantity: 1) { id itemCount } }";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A `serve` child, killed if the bench ends without stopping it.
struct Server(Option<Child>);

impl Server {
    fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("running")
    }

    fn pid(&self) -> u32 {
        self.0.as_ref().map_or(0, Child::id)
    }

    /// SIGTERM and wait: a clean stop.
    fn stop(mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.0.take() else {
            return Ok(());
        };
        let killed = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()?;
        if !killed.success() {
            bail!("kill failed");
        }
        let status = child.wait()?;
        if !status.success() {
            bail!("serve stopped with {status}");
        }
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `emporium serve` in development over `data`, no server named, rate limits off (the
/// load comes from one address).
fn serve(data: &Path, port: u16, products: usize) -> anyhow::Result<Server> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_emporium"));
    cmd.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    for (key, _) in std::env::vars() {
        if key.starts_with("EMPORIUM_") || key.ends_with("_URL") || key.starts_with("OTEL_") {
            cmd.env_remove(key);
        }
    }
    Ok(cmd
        .env("EMPORIUM_ENV", "development")
        .env("EMPORIUM_STORAGE__DATA_DIR", data)
        .env("EMPORIUM_LOG__FILTER", "warn")
        .env("EMPORIUM_LIMITS__RATE__ENABLED", "false")
        .args(["--port", &port.to_string(), "serve"])
        .args(["--seed-products", &products.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map(|child| Server(Some(child)))?)
}

/// `VmRSS` and `VmHWM` of `pid`, in MiB.
fn memory(pid: u32) -> anyhow::Result<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = |field: &str| -> anyhow::Result<f64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(field))
            .with_context(|| format!("{field} in /proc/{pid}/status"))?;
        let value: f64 = line.split_whitespace().nth(1).context("a value")?.parse()?;
        Ok(value / 1024.0)
    };
    Ok((kib("VmRSS:")?, kib("VmHWM:")?))
}

async fn graphql(
    client: &reqwest::Client,
    url: &str,
    query: &str,
    variables: Value,
    bearer: Option<&str>,
) -> anyhow::Result<Value> {
    let mut request = client
        .post(url)
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let body: Value = request.send().await?.json().await?;
    if let Some(errors) = body.get("errors") {
        bail!("{query}: {errors}");
    }
    Ok(body["data"].clone())
}

/// Polls (a measurement: the first answer is what is timed) until `/readyz` is 200
/// and the listing answers with products; the time since `spawned`.
async fn ready(client: &reqwest::Client, port: u16, spawned: Instant) -> anyhow::Result<Duration> {
    let base = format!("http://127.0.0.1:{port}");
    let deadline = spawned + Duration::from_secs(120);
    loop {
        if Instant::now() > deadline {
            bail!("not ready within 120 s");
        }
        let readyz = client.get(format!("{base}/readyz")).send().await;
        if readyz.is_ok_and(|r| r.status().is_success()) {
            let listing =
                graphql(client, &format!("{base}/graphql"), LISTING, json!({}), None).await;
            if listing.is_ok_and(|d| {
                d["products"]["edges"]
                    .as_array()
                    .is_some_and(|e| !e.is_empty())
            }) {
                return Ok(spawned.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() -> anyhow::Result<()> {
    let products: usize = env_or("BENCH_PRODUCTS", 1_000);
    let starts: usize = env_or("BENCH_STARTS", 5);
    let seconds: u64 = env_or("BENCH_SECONDS", 10);
    let clients: usize = env_or("BENCH_CLIENTS", 16);
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("data");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .timeout(Duration::from_secs(30))
        .build()?;

    // The first start seeds the demo shop; it announces the login once the read
    // models hold it.
    eprintln!(
        "first start: seeding {products} products into {}",
        data.display()
    );
    let seeding = Instant::now();
    let mut first = serve(&data, free_port()?, products)?;
    let stdout = first.child().stdout.take().context("stdout")?;
    let mut seeded = None;
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        if line.starts_with("seeded") {
            seeded = Some(line.clone());
        }
        if line.starts_with("demo login:") {
            break;
        }
    }
    let seeded = seeded.context("serve did not seed")?;
    let seed_time = seeding.elapsed();
    first.stop()?;
    println!("\n## embedded mode, demo shop of {products} products");
    println!(
        "first start (seed while serving, read models caught up): {:.1} s; {seeded}",
        seed_time.as_secs_f64()
    );

    let mut times = Vec::new();
    let mut last = None;
    for i in 0..starts {
        let port = free_port()?;
        let spawned = Instant::now();
        let child = serve(&data, port, products)?;
        let took = rt.block_on(ready(&client, port, spawned))?;
        times.push(took);
        if i + 1 == starts {
            last = Some((child, port));
        } else {
            child.stop()?;
        }
    }
    times.sort_unstable();
    println!(
        "cold start to ready (/readyz 200 and a products query answered), {starts} starts: \
         min {:.0} ms, median {:.0} ms, max {:.0} ms (goal < 2000 ms: {})",
        ms(times[0]),
        ms(times[times.len() / 2]),
        ms(times[times.len() - 1]),
        if times[times.len() / 2] < Duration::from_secs(2) {
            "met"
        } else {
            "missed"
        }
    );

    let (child, port) = last.context("a start")?;
    let pid = child.pid();
    rt.block_on(async { tokio::time::sleep(Duration::from_secs(1)).await });
    let (idle_rss, _) = memory(pid)?;
    println!(
        "idle RSS 1 s after ready: {idle_rss:.1} MiB (goal < 150 MB: {})",
        if idle_rss * 1.048_576 < 150.0 {
            "met"
        } else {
            "missed"
        }
    );

    let url = format!("http://127.0.0.1:{port}/graphql");
    let outcome = rt.block_on(async {
        let listing = graphql(&client, &url, LISTING, json!({}), None).await?;
        let skus: Arc<Vec<String>> = Arc::new(
            listing["products"]["edges"]
                .as_array()
                .context("edges")?
                .iter()
                .filter_map(|e| e["node"]["sku"].as_str().map(ToOwned::to_owned))
                .collect(),
        );
        let mut tokens = Vec::new();
        for i in 0..clients {
            let data = graphql(
                &client,
                &url,
                "mutation($i: RegisterInput!) { register(input: $i) { accessToken } }",
                json!({ "i": { "email": format!("bench{i}@example.com"), "password": "correct horse battery", "firstName": "Bench" } }),
                None,
            )
            .await?;
            tokens.push(data["register"]["accessToken"].as_str().context("token")?.to_owned());
        }
        let started = Instant::now();
        let deadline = started + Duration::from_secs(seconds);
        let tasks: Vec<_> = tokens
            .into_iter()
            .enumerate()
            .map(|(c, token)| {
                let client = client.clone();
                let url = url.clone();
                let skus = Arc::clone(&skus);
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    let mut failed = 0usize;
                    let mut first_error = None;
                    let mut n = c;
                    while Instant::now() < deadline {
                        let t = Instant::now();
                        let answer = graphql(&client, &url, ADD_TO_CART, json!({ "sku": skus[n % skus.len()] }), Some(&token)).await;
                        match answer {
                            Ok(_) => latencies.push(t.elapsed()),
                            Err(e) => {
                                failed += 1;
                                first_error.get_or_insert_with(|| format!("{e:#}"));
                            }
                        }
                        n += 1;
                    }
                    (latencies, failed, first_error)
                })
            })
            .collect();
        let mut latencies = Vec::new();
        let mut failed = 0;
        for task in tasks {
            let (l, f, error) = task.await?;
            latencies.extend(l);
            failed += f;
            if let Some(error) = error {
                eprintln!("a failed addToCart: {error}");
            }
        }
        anyhow::Ok((latencies, failed, started.elapsed()))
    });
    let (mut latencies, failed, elapsed) = outcome?;
    latencies.sort_unstable();
    let pct = |p: f64| {
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let i = ((latencies.len().saturating_sub(1)) as f64 * p).round() as usize;
        latencies.get(i).copied().map_or(0.0, ms)
    };
    #[allow(clippy::cast_precision_loss)]
    let rate = latencies.len() as f64 / elapsed.as_secs_f64();
    println!(
        "addToCart, {clients} clients back to back for {seconds} s: {rate:.1}/s ({} ok, {failed} failed), \
         p50 {:.1} ms, p99 {:.1} ms",
        latencies.len(),
        pct(0.50),
        pct(0.99)
    );
    let (rss, hwm) = memory(pid)?;
    println!("after the load: RSS {rss:.1} MiB, peak (VmHWM) {hwm:.1} MiB");
    child.stop()?;
    Ok(())
}
