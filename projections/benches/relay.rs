//! Relay throughput next to its ceiling, measured in the same run: raw async-nats
//! JetStream publishing of same-sized messages with 256 acks in flight.
//!
//! `cargo bench -p emporium-projections --bench relay` (PostgreSQL and NATS on
//! loopback; `BENCH_EVENTS` sets the event count, 20,000 by default). Each run uses a
//! fresh database and stream prefix and removes them afterwards.
#![allow(clippy::print_stdout)] // a benchmark reports on stdout

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use emporium_projections::bus::StreamLayout;
use emporium_projections::relay::{Relay, RelayConfig};
use emporium_projections::stream::{StreamSettings, events_stream_config};
use sqlx::Connection;
use sqlx::postgres::PgPoolOptions;
use uuid::Uuid;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let events: i64 = std::env::var("BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let base = std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let nats_url =
        std::env::var("TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned());
    let id = Uuid::new_v4().simple().to_string();
    let db_name = format!("emporium_bench_{id}");
    let (server, _) = base.rsplit_once('/').expect("url names a database");
    let mut admin = sqlx::PgConnection::connect(&base).await?;
    sqlx::query(&format!(r#"CREATE DATABASE "{db_name}""#))
        .execute(&mut admin)
        .await?;
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect(&format!("{server}/{db_name}"))
        .await?;
    emporium_commands::db::migrate(&pool).await?;
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                             payload, metadata)
         SELECT 'order', 'o-' || i, 1, 'OrderPlaced', '1',
                jsonb_build_object('order_id', 'o-' || i, 'total_minor', i * 100,
                                   'currency', 'EUR', 'lines', jsonb_build_array(
                                       jsonb_build_object('sku', 'SKU-' || (i % 97), 'quantity', 1))),
                jsonb_build_object('correlation_id', gen_random_uuid()::text,
                                   'causation_id', gen_random_uuid()::text,
                                   'actor', '{\"kind\":\"system\",\"id\":\"bench\"}',
                                   'occurred_at', now()::text)
         FROM generate_series(1, $1) AS i",
    )
    .bind(events)
    .execute(&pool)
    .await?;
    let client = emporium_projections::bus::connect(&nats_url, Duration::from_secs(5)).await?;
    let js = jetstream::new(client);

    // The ceiling: raw publishing, 256 acks in flight, same message size and headers.
    let raw_layout = StreamLayout::new(&format!("b{id}raw"))?;
    js.create_stream(events_stream_config(
        &raw_layout,
        &StreamSettings::default(),
    ))
    .await?;
    let sample: serde_json::Value = sqlx::query_scalar(
        "SELECT jsonb_build_object('payload', payload, 'metadata', metadata) FROM events LIMIT 1",
    )
    .fetch_one(&pool)
    .await?;
    let body = bytes_like_envelope(&sample);
    let started = Instant::now();
    let mut in_flight = VecDeque::with_capacity(256);
    for i in 0..events {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", format!("order:o-{i}:1"));
        let ack = js
            .publish_with_headers(
                raw_layout.subject("order", "OrderPlaced"),
                headers,
                body.clone().into(),
            )
            .await?;
        in_flight.push_back(ack);
        if in_flight.len() == 256 {
            in_flight.pop_front().expect("non-empty").await?;
        }
    }
    for ack in in_flight {
        ack.await?;
    }
    let raw = started.elapsed();

    // The relay: everything visible, from an empty stream.
    let layout = StreamLayout::new(&format!("b{id}"))?;
    let mut relay = Relay::new(
        pool.clone(),
        js.clone(),
        layout.clone(),
        RelayConfig::default(),
    );
    let started = Instant::now();
    let mut published = 0;
    while published < usize::try_from(events)? {
        published += relay.relay_once().await?;
    }
    let relayed = started.elapsed();

    #[allow(clippy::cast_precision_loss)]
    let rate = |d: Duration| events as f64 / d.as_secs_f64();
    println!("events: {events}, message body: {} bytes", body.len());
    println!(
        "raw async-nats publish (256 in flight): {:>9.0} events/s ({:.2?})",
        rate(raw),
        raw
    );
    println!(
        "relay (PostgreSQL -> JetStream):        {:>9.0} events/s ({:.2?})",
        rate(relayed),
        relayed
    );
    println!(
        "relay / raw: {:.2}",
        raw.as_secs_f64() / relayed.as_secs_f64()
    );

    js.delete_stream(raw_layout.stream_name()).await?;
    js.delete_stream(layout.stream_name()).await?;
    pool.close().await;
    sqlx::query(&format!(r#"DROP DATABASE "{db_name}" WITH (FORCE)"#))
        .execute(&mut admin)
        .await?;
    Ok(())
}

/// A body of the size the relay sends: the envelope around a stored event.
fn bytes_like_envelope(sample: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "event_id": Uuid::new_v4(),
        "aggregate_type": "order",
        "aggregate_id": "o-1",
        "sequence": 1,
        "position": 1,
        "transaction_id": 1000,
        "event_type": "OrderPlaced",
        "event_version": "1",
        "payload": sample["payload"],
        "metadata": sample["metadata"],
        "recorded_at": "2026-11-26T00:00:00Z",
    }))
    .expect("json")
}
