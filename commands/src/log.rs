//! The event log as a file: `emporium events export` / `import`, the way a shop moves
//! between stores (embedded SQLite and distributed PostgreSQL) by replay.
//!
//! # Format (JSON Lines)
//! ```text
//! {"header":{"format":"emporium-event-log","version":1}}
//! {"event":{"aggregate_type":"user","aggregate_id":"…","sequence":1,"event_type":"UserRegistered","event_version":"2.0","payload":{…},"metadata":{…},"event_id":"…","recorded_at":"…"}}
//! …
//! {"unique_key":{"scope":"user_email","key":"ada@example.com","owner_id":"…"}}
//! …
//! {"end":{"events":1234,"unique_keys":56}}
//! ```
//! Events come in the source store's commit order, which an import keeps (positions
//! are the target's, assigned in file order); aggregate sequences, event ids (read
//! models key rows on them) and record times are kept as they are. Each event carries
//! its own schema version, so an import into a newer build upcasts on load like any
//! stored event. The claims of `unique_keys` travel too: login finds an account by its
//! claimed e-mail. The `end` line makes a truncated file an error, not a smaller shop.
//!
//! Sealed fields (password and reset-token hashes) are exported as stored: the
//! aggregates need them to be rebuilt, so the file is as sensitive as the database
//! (it is created readable by its owner only).
//!
//! # Import
//! Into an empty store unless [`ImportOptions::allow_non_empty`]; the file is read
//! and checked whole before anything is written, then written in one transaction, so
//! a bad file or a refused row leaves the store as it was. The whole log is held in
//! memory, which suits the shops this moves today (the demo shop is ~10 MB).
//!
//! Export reads the log in position order. On PostgreSQL that is commit order once no
//! writer is in flight: export a stopped platform (the way a move goes anyway).

use std::collections::HashMap;
use std::io::{BufRead, Write};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::store::{EventStore, LoggedEvent, UniqueKey};

/// The `format` of the header line.
pub const FORMAT: &str = "emporium-event-log";
/// The version of the file format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// Events read from the store per query while exporting.
const PAGE: usize = 1_000;

/// One line of the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum Line {
    Header { format: String, version: u32 },
    Event(LoggedEvent),
    UniqueKey(UniqueKey),
    End { events: u64, unique_keys: u64 },
}

/// What an export or an import moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogSummary {
    /// Events.
    pub events: u64,
    /// Uniqueness claims.
    pub unique_keys: u64,
}

/// Writes the store's log to `out` (see the module docs).
///
/// # Errors
/// When the store cannot be read or `out` cannot be written.
pub async fn export<S: EventStore>(store: &S, out: &mut impl Write) -> anyhow::Result<LogSummary> {
    let mut summary = LogSummary::default();
    write_line(
        out,
        &Line::Header {
            format: FORMAT.to_owned(),
            version: FORMAT_VERSION,
        },
    )?;
    let mut after = 0;
    loop {
        let page = store.read_log(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last
            .position
            .context("the store gave an event without position")?;
        for mut event in page {
            // The target assigns its own positions.
            event.position = None;
            write_line(out, &Line::Event(event))?;
            summary.events += 1;
        }
    }
    for key in store.unique_keys().await? {
        write_line(out, &Line::UniqueKey(key))?;
        summary.unique_keys += 1;
    }
    write_line(
        out,
        &Line::End {
            events: summary.events,
            unique_keys: summary.unique_keys,
        },
    )?;
    out.flush().context("flush the export")?;
    Ok(summary)
}

fn write_line(out: &mut impl Write, line: &Line) -> anyhow::Result<()> {
    serde_json::to_writer(&mut *out, line).context("write the export")?;
    out.write_all(b"\n").context("write the export")
}

/// How [`import`] treats the target store.
#[derive(Debug, Clone, Copy, Default)]
pub struct ImportOptions {
    /// Append to a store that already holds events or claims (their sequences must
    /// not collide; a collision fails the whole import).
    pub allow_non_empty: bool,
}

/// Why an import wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The target holds events or claims and appending was not asked for.
    #[error(
        "the event store is not empty; import into an empty store (or allow appending explicitly)"
    )]
    NotEmpty,
    /// A line is not what the format allows.
    #[error("line {line}: {reason}")]
    Malformed {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The file ends before its `end` line, or its counts disagree with its content.
    #[error("the file is incomplete: {0}")]
    Incomplete(String),
    /// The store failed (a sequence that collides in a non-empty store, say).
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Reads a log written by [`export`] into `store` (see the module docs).
///
/// # Errors
/// [`ImportError`]; nothing is written in any case.
pub async fn import<S: EventStore>(
    store: &S,
    input: impl BufRead,
    options: ImportOptions,
) -> Result<LogSummary, ImportError> {
    let (events, keys) = parse(input, options)?;
    if !options.allow_non_empty && !store.is_empty().await? {
        return Err(ImportError::NotEmpty);
    }
    store.import(&events, &keys).await?;
    Ok(LogSummary {
        events: events.len() as u64,
        unique_keys: keys.len() as u64,
    })
}

fn parse(
    input: impl BufRead,
    options: ImportOptions,
) -> Result<(Vec<LoggedEvent>, Vec<UniqueKey>), ImportError> {
    let malformed = |line: usize, reason: String| ImportError::Malformed { line, reason };
    let mut events = Vec::new();
    let mut keys = Vec::new();
    let mut header = false;
    let mut end = None;
    // The next sequence each aggregate must have, so a file with a hole or a repeat
    // is refused before anything is written.
    let mut next: HashMap<(String, String), i64> = HashMap::new();
    for (index, text) in input.lines().enumerate() {
        let n = index + 1;
        let text = text.with_context(|| format!("read line {n}"))?;
        if text.trim().is_empty() {
            continue;
        }
        if end.is_some() {
            return Err(malformed(n, "content after the end line".to_owned()));
        }
        let line: Line = serde_json::from_str(&text).map_err(|e| malformed(n, e.to_string()))?;
        match line {
            Line::Header { format, version } => {
                if header || n != 1 {
                    return Err(malformed(n, "the header must be the first line".to_owned()));
                }
                if format != FORMAT || version != FORMAT_VERSION {
                    return Err(malformed(
                        n,
                        format!(
                            "format {format} v{version}; this build reads {FORMAT} v{FORMAT_VERSION}"
                        ),
                    ));
                }
                header = true;
            }
            _ if !header => {
                return Err(malformed(
                    n,
                    "the file does not start with a header".to_owned(),
                ));
            }
            Line::Event(mut event) => {
                if !keys.is_empty() {
                    return Err(malformed(n, "an event after the unique keys".to_owned()));
                }
                let aggregate = (event.aggregate_type.clone(), event.aggregate_id.clone());
                let expected = next.get(&aggregate).copied();
                let fits = match expected {
                    Some(expected) => event.sequence == expected,
                    // Appending continues streams the store already has.
                    None => event.sequence == 1 || (options.allow_non_empty && event.sequence > 1),
                };
                if !fits {
                    return Err(malformed(
                        n,
                        format!(
                            "{} {} has sequence {} where {} was expected",
                            event.aggregate_type,
                            event.aggregate_id,
                            event.sequence,
                            expected.unwrap_or(1)
                        ),
                    ));
                }
                next.insert(aggregate, event.sequence + 1);
                event.position = None;
                events.push(event);
            }
            Line::UniqueKey(key) => keys.push(key),
            Line::End {
                events: e,
                unique_keys: k,
            } => end = Some((e, k)),
        }
    }
    if !header {
        return Err(ImportError::Incomplete("no header".to_owned()));
    }
    match end {
        None => Err(ImportError::Incomplete("no end line".to_owned())),
        Some((e, k)) if (e, k) != (events.len() as u64, keys.len() as u64) => {
            Err(ImportError::Incomplete(format!(
                "the end line counts {e} events and {k} unique keys, the file holds {} and {}",
                events.len(),
                keys.len()
            )))
        }
        Some(_) => Ok((events, keys)),
    }
}
