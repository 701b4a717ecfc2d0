//! W3C Trace Context: the `traceparent` (and `tracestate`) a client sends is accepted,
//! the gateway's operation becomes a child span of it (a new trace when the client
//! sent none or an invalid one), and every command dispatched while the request runs
//! carries the gateway span's `traceparent` in its `EventMetadata`. The event store
//! keeps it, the relay copies it into the NATS message headers and the envelope, so
//! one trace id spans gateway -> store -> bus -> projection.
//!
//! The context rides in a task-local set around the request's execution
//! ([`scope`]): async-graphql resolves a request's fields on the task that executes
//! it, so any resolver (and any service it calls) reaches it through [`current`]
//! without threading it through every signature. [`stamp`] fills a command's
//! metadata from it.

use emporium_domain::EventMetadata;
use std::future::Future;

/// The longest `tracestate` carried on (the W3C limit is 512 characters).
const MAX_TRACESTATE: usize = 512;

/// A W3C trace context: the trace, the span that is the parent of whatever this
/// process causes next, the flags, and the vendor state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    flags: u8,
    tracestate: Option<String>,
}

fn hex_bytes<const N: usize>(s: &str) -> Option<[u8; N]> {
    // Lower-case hex only, as the specification requires.
    if s.len() != N * 2 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0_u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[i * 2..i * 2 + 2], 16).ok()?;
    }
    Some(out)
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn random_span_id() -> [u8; 8] {
    // Never all zeros (invalid by the specification).
    fastrand::u64(1..).to_be_bytes()
}

impl TraceContext {
    /// Parses a `traceparent` header (and its `tracestate`); `None` when it is not a
    /// valid one, in which case the caller starts a new trace, as the specification
    /// asks.
    #[must_use]
    pub fn parse(traceparent: &str, tracestate: Option<&str>) -> Option<Self> {
        let traceparent = traceparent.trim();
        let mut parts = traceparent.splitn(5, '-');
        let version = hex_bytes::<1>(parts.next()?)?[0];
        let trace_id = hex_bytes::<16>(parts.next()?)?;
        let span_id = hex_bytes::<8>(parts.next()?)?;
        let flags = hex_bytes::<1>(parts.next()?)?[0];
        let rest = parts.next();
        // Version ff is invalid; version 00 has exactly four fields; a later version
        // may append fields, which are ignored.
        if version == 0xff || (version == 0 && rest.is_some()) {
            return None;
        }
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        let tracestate = tracestate
            .map(str::trim)
            .filter(|s| !s.is_empty() && s.len() <= MAX_TRACESTATE)
            .filter(|s| s.bytes().all(|b| (0x20..0x7f).contains(&b)))
            .map(ToOwned::to_owned);
        Some(Self {
            trace_id,
            span_id,
            flags: flags & 0x01,
            tracestate,
        })
    }

    /// A new trace (sampled), for a request that came without one.
    #[must_use]
    pub fn root() -> Self {
        Self {
            trace_id: *uuid::Uuid::new_v4().as_bytes(),
            span_id: random_span_id(),
            flags: 0x01,
            tracestate: None,
        }
    }

    /// The context of a new span under this one: same trace, flags and state, a new
    /// span id.
    #[must_use]
    pub fn child(&self) -> Self {
        Self {
            span_id: random_span_id(),
            ..self.clone()
        }
    }

    /// The context of the request's operation: a child of the caller's context when
    /// the headers carry a valid one, else a new trace.
    #[must_use]
    pub fn for_request(traceparent: Option<&str>, tracestate: Option<&str>) -> Self {
        traceparent
            .and_then(|tp| Self::parse(tp, tracestate))
            .map_or_else(Self::root, |parent| parent.child())
    }

    /// A context from its parts (the span an exporter started).
    #[must_use]
    pub fn from_parts(
        trace_id: [u8; 16],
        span_id: [u8; 8],
        flags: u8,
        tracestate: Option<String>,
    ) -> Self {
        Self {
            trace_id,
            span_id,
            flags: flags & 0x01,
            tracestate,
        }
    }

    /// The trace id's bytes.
    #[must_use]
    pub fn trace_id_bytes(&self) -> [u8; 16] {
        self.trace_id
    }

    /// The span id's bytes.
    #[must_use]
    pub fn span_id_bytes(&self) -> [u8; 8] {
        self.span_id
    }

    /// The trace flags (bit 0: sampled).
    #[must_use]
    pub fn flags(&self) -> u8 {
        self.flags
    }

    /// The `traceparent` header value naming this span as the parent.
    #[must_use]
    pub fn traceparent(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            hex(&self.trace_id),
            hex(&self.span_id),
            self.flags
        )
    }

    /// The `tracestate` header value, if any.
    #[must_use]
    pub fn tracestate(&self) -> Option<&str> {
        self.tracestate.as_deref()
    }

    /// The trace id, 32 lower-case hex digits.
    #[must_use]
    pub fn trace_id(&self) -> String {
        hex(&self.trace_id)
    }

    /// The span id, 16 lower-case hex digits.
    #[must_use]
    pub fn span_id(&self) -> String {
        hex(&self.span_id)
    }
}

tokio::task_local! {
    static CURRENT: TraceContext;
}

/// Runs `f` with `context` as the current trace context.
pub async fn scope<F: Future>(context: TraceContext, f: F) -> F::Output {
    CURRENT.scope(context, f).await
}

/// The trace context of the request being served, if any.
#[must_use]
pub fn current() -> Option<TraceContext> {
    CURRENT.try_with(Clone::clone).ok()
}

/// `metadata` with the current request's `traceparent`/`tracestate` (unchanged
/// outside a request, or when it already carries a trace).
#[must_use]
pub fn stamp(mut metadata: EventMetadata) -> EventMetadata {
    if metadata.traceparent.is_none()
        && let Some(context) = current()
    {
        metadata.traceparent = Some(context.traceparent());
        metadata.tracestate = context.tracestate.clone();
    }
    metadata
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_a_valid_traceparent_and_makes_a_child_in_the_same_trace() {
        let parent = TraceContext::parse(VALID, Some("rojo=00f067aa0ba902b7")).unwrap();
        assert_eq!(parent.traceparent(), VALID);
        let child = parent.child();
        assert_eq!(child.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(child.span_id(), parent.span_id());
        assert_eq!(child.tracestate(), Some("rojo=00f067aa0ba902b7"));
        assert!(child.traceparent().ends_with("-01"));
    }

    #[test]
    fn refuses_malformed_traceparents() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        ] {
            assert!(TraceContext::parse(bad, None).is_none(), "{bad}");
        }
        // A later version may carry more fields.
        assert!(
            TraceContext::parse(
                "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future",
                None
            )
            .is_some()
        );
    }

    #[test]
    fn a_request_without_a_valid_parent_starts_a_new_trace() {
        let a = TraceContext::for_request(Some("garbage"), None);
        let b = TraceContext::for_request(None, None);
        assert_ne!(a.trace_id(), b.trace_id());
        assert!(TraceContext::parse(&a.traceparent(), None).is_some());
    }

    #[tokio::test]
    async fn commands_in_a_scope_carry_its_traceparent() {
        use chrono::Utc;
        use emporium_domain::metadata::Actor;
        let context = TraceContext::parse(VALID, None).unwrap().child();
        let expected = context.traceparent();
        let metadata = EventMetadata::new(uuid::Uuid::nil(), Actor::System("t".into()), Utc::now());
        let stamped = scope(context, async { stamp(metadata.clone()) }).await;
        assert_eq!(stamped.traceparent.as_deref(), Some(expected.as_str()));
        assert_eq!(stamp(metadata).traceparent, None);
    }
}
