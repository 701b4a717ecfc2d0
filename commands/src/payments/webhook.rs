//! Stripe webhook signatures: `Stripe-Signature: t=<unix seconds>,v1=<hex>,v1=<hex>`.
//!
//! Stripe signs `"<t>.<raw body>"` with HMAC-SHA256 under the endpoint's secret and
//! sends one `v1` entry per active secret: while a secret is being rolled, the header
//! carries two. A delivery is genuine when **any** `v1` entry matches under **any**
//! configured secret (async-stripe keeps only the last `v1`, which breaks during
//! rotation; hence this module). Comparisons are constant-time (`hmac`'s
//! `verify_slice`), and every pair is checked, so timing does not tell which matched.
//!
//! The timestamp must lie within the tolerance (300 s by default) of `now`, which the
//! caller injects, in **either** direction: Stripe's libraries only refuse old
//! timestamps, but a future one is as suspect and the clocks involved are NTP-synced.
//! Verify the body exactly as received, before any parsing.

use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The tolerance Stripe recommends.
pub const DEFAULT_TOLERANCE: Duration = Duration::seconds(300);

/// Entries beyond this many are refused, so a crafted header cannot make us compute
/// thousands of MACs.
const MAX_SIGNATURES: usize = 16;

/// Why a delivery was refused. The webhook endpoint answers all of them with 400 and
/// changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// No `Stripe-Signature` header.
    #[error("missing Stripe-Signature header")]
    MissingHeader,
    /// The header is not `t=...,v1=...`.
    #[error("malformed Stripe-Signature header: {0}")]
    BadFormat(&'static str),
    /// No `v1` entry matches the body under any secret.
    #[error("no signature matches the payload")]
    NoMatchingSignature,
    /// The signature is genuine but too old (a replay) or too far in the future.
    #[error("signature timestamp {timestamp} is more than {tolerance_secs} s from now")]
    TimestampOutsideTolerance {
        /// The header's `t`.
        timestamp: i64,
        /// The tolerance.
        tolerance_secs: i64,
    },
}

/// An endpoint's signing secret (`whsec_...`), used as given as the HMAC key. Its
/// `Debug` is redacted.
#[derive(Clone)]
pub struct WebhookSecret(Vec<u8>);

impl WebhookSecret {
    /// A secret.
    #[must_use]
    pub fn new(secret: &str) -> Self {
        Self(secret.as_bytes().to_vec())
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"))
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(***)")
    }
}

/// Verifies `Stripe-Signature` headers against one or more secrets (more than one
/// while rotating our side).
#[derive(Debug, Clone)]
pub struct SignatureVerifier {
    secrets: Vec<WebhookSecret>,
    tolerance: Duration,
}

/// The header's parts.
struct Parsed {
    timestamp: i64,
    signatures: Vec<Vec<u8>>,
}

fn parse(header: &str) -> Result<Parsed, WebhookError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    let mut v1_entries = 0usize;
    for item in header.split(',') {
        let Some((key, value)) = item.trim().split_once('=') else {
            return Err(WebhookError::BadFormat("an entry is not key=value"));
        };
        match key {
            "t" => {
                if timestamp.is_some() {
                    return Err(WebhookError::BadFormat("more than one timestamp"));
                }
                let t = value
                    .parse::<i64>()
                    .map_err(|_| WebhookError::BadFormat("timestamp is not an integer"))?;
                timestamp = Some(t);
            }
            "v1" => {
                v1_entries += 1;
                if v1_entries > MAX_SIGNATURES {
                    return Err(WebhookError::BadFormat("too many signatures"));
                }
                // An entry that is not hex cannot match; it is skipped, not fatal, as
                // in Stripe's own libraries.
                if let Ok(bytes) = hex::decode(value) {
                    signatures.push(bytes);
                }
            }
            // Other schemes (v0 is Stripe's test scheme) are ignored.
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(WebhookError::BadFormat("no timestamp"))?;
    if v1_entries == 0 {
        return Err(WebhookError::BadFormat("no v1 signature"));
    }
    Ok(Parsed {
        timestamp,
        signatures,
    })
}

impl SignatureVerifier {
    /// A verifier with the default 300 s tolerance.
    #[must_use]
    pub fn new(secrets: Vec<WebhookSecret>) -> Self {
        Self {
            secrets,
            tolerance: DEFAULT_TOLERANCE,
        }
    }

    /// The same verifier with another tolerance.
    #[must_use]
    pub fn with_tolerance(self, tolerance: Duration) -> Self {
        Self { tolerance, ..self }
    }

    /// Checks that `payload` (the raw body) was signed by Stripe at a time within the
    /// tolerance of `now`, and returns that time.
    ///
    /// # Errors
    /// [`WebhookError`]: a missing or malformed header, no matching signature, or a
    /// timestamp outside the tolerance (checked after the signature, so a forged
    /// header is reported as forged).
    pub fn verify(
        &self,
        payload: &[u8],
        header: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<DateTime<Utc>, WebhookError> {
        let header = header.ok_or(WebhookError::MissingHeader)?;
        let Parsed {
            timestamp,
            signatures,
        } = parse(header)?;
        let mut matched = false;
        for secret in &self.secrets {
            let mut mac = secret.mac();
            mac.update(timestamp.to_string().as_bytes());
            mac.update(b".");
            mac.update(payload);
            for signature in &signatures {
                // No short-circuit: every pair is compared in constant time.
                matched |= mac.clone().verify_slice(signature).is_ok();
            }
        }
        if !matched {
            return Err(WebhookError::NoMatchingSignature);
        }
        let outside = || WebhookError::TimestampOutsideTolerance {
            timestamp,
            tolerance_secs: self.tolerance.num_seconds(),
        };
        let signed_at = DateTime::<Utc>::from_timestamp(timestamp, 0).ok_or_else(outside)?;
        if (now - signed_at).abs() > self.tolerance {
            return Err(outside());
        }
        Ok(signed_at)
    }
}

/// A `Stripe-Signature` header for `payload` signed with `secret` at `timestamp`, as
/// Stripe would send it: for tests of webhook endpoints and for the offline mode.
#[must_use]
pub fn signature_header(payload: &[u8], secret: &WebhookSecret, timestamp: i64) -> String {
    let mut mac = secret.mac();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(payload);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    const SECRET: &str = "whsec_test_current";
    const OLD_SECRET: &str = "whsec_test_previous";
    const BODY: &[u8] = br#"{"id":"evt_1","type":"payment_intent.succeeded"}"#;

    /// The signature, computed here independently of the code under test.
    fn v1(secret: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        let mut signed = format!("{timestamp}.").into_bytes();
        signed.extend_from_slice(body);
        mac.update(&signed);
        hex::encode(mac.finalize().into_bytes())
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
    }

    fn t() -> i64 {
        now().timestamp()
    }

    fn verifier() -> SignatureVerifier {
        SignatureVerifier::new(vec![WebhookSecret::new(SECRET)])
    }

    #[test]
    fn a_genuine_signature_is_accepted() {
        let header = format!("t={},v1={}", t(), v1(SECRET, t(), BODY));
        assert_eq!(verifier().verify(BODY, Some(&header), now()), Ok(now()));
        // Entries may be spaced, and unknown schemes are ignored.
        let header = format!("t={}, v0=abc, v1={}", t(), v1(SECRET, t(), BODY));
        assert!(verifier().verify(BODY, Some(&header), now()).is_ok());
    }

    #[test]
    fn any_of_several_v1_signatures_may_match() {
        // Stripe rolling its secret: the first v1 is under the old secret (unknown to
        // us), only the second matches.
        let header = format!(
            "t={},v1={},v1={}",
            t(),
            v1(OLD_SECRET, t(), BODY),
            v1(SECRET, t(), BODY)
        );
        assert!(verifier().verify(BODY, Some(&header), now()).is_ok());
        // And the other way round: we still hold the old secret, Stripe signs with both.
        let ours = SignatureVerifier::new(vec![
            WebhookSecret::new("whsec_unrelated"),
            WebhookSecret::new(OLD_SECRET),
        ]);
        assert!(ours.verify(BODY, Some(&header), now()).is_ok());
        // A non-hex entry does not spoil a matching one.
        let header = format!("t={},v1=zz,v1={}", t(), v1(SECRET, t(), BODY));
        assert!(verifier().verify(BODY, Some(&header), now()).is_ok());
    }

    #[test]
    fn a_tampered_body_or_wrong_secret_is_refused() {
        let header = format!("t={},v1={}", t(), v1(SECRET, t(), BODY));
        assert_eq!(
            verifier().verify(br#"{"id":"evt_2"}"#, Some(&header), now()),
            Err(WebhookError::NoMatchingSignature)
        );
        let forged = format!("t={},v1={}", t(), v1("whsec_attacker", t(), BODY));
        assert_eq!(
            verifier().verify(BODY, Some(&forged), now()),
            Err(WebhookError::NoMatchingSignature)
        );
        // A signature for another timestamp does not carry over.
        let shifted = format!("t={},v1={}", t() + 1, v1(SECRET, t(), BODY));
        assert_eq!(
            verifier().verify(BODY, Some(&shifted), now()),
            Err(WebhookError::NoMatchingSignature)
        );
        let truncated = format!("t={},v1={}", t(), &v1(SECRET, t(), BODY)[..62]);
        assert_eq!(
            verifier().verify(BODY, Some(&truncated), now()),
            Err(WebhookError::NoMatchingSignature)
        );
        assert_eq!(
            SignatureVerifier::new(vec![]).verify(BODY, Some(&header), now()),
            Err(WebhookError::NoMatchingSignature)
        );
    }

    #[test]
    fn timestamps_outside_the_tolerance_are_refused() {
        let at = |ts: i64| format!("t={ts},v1={}", v1(SECRET, ts, BODY));
        let expired = t() - 301;
        assert_eq!(
            verifier().verify(BODY, Some(&at(expired)), now()),
            Err(WebhookError::TimestampOutsideTolerance {
                timestamp: expired,
                tolerance_secs: 300
            })
        );
        assert!(verifier().verify(BODY, Some(&at(t() - 300)), now()).is_ok());
        assert!(verifier().verify(BODY, Some(&at(t() + 300)), now()).is_ok());
        assert!(matches!(
            verifier().verify(BODY, Some(&at(t() + 301)), now()),
            Err(WebhookError::TimestampOutsideTolerance { .. })
        ));
        let lenient = verifier().with_tolerance(Duration::seconds(3_600));
        assert!(lenient.verify(BODY, Some(&at(expired)), now()).is_ok());
        // Far outside chrono's range: refused, not a panic.
        assert!(matches!(
            verifier().verify(BODY, Some(&at(i64::MAX)), now()),
            Err(WebhookError::TimestampOutsideTolerance { .. })
        ));
    }

    #[test]
    fn malformed_headers_are_refused() {
        let sig = v1(SECRET, t(), BODY);
        assert_eq!(
            verifier().verify(BODY, None, now()),
            Err(WebhookError::MissingHeader)
        );
        for (header, why) in [
            (String::new(), "an entry is not key=value"),
            (format!("v1={sig}"), "no timestamp"),
            (format!("t={}", t()), "no v1 signature"),
            (format!("t={},v0={sig}", t()), "no v1 signature"),
            (format!("t=soon,v1={sig}"), "timestamp is not an integer"),
            (
                format!("t={0},t={0},v1={sig}", t()),
                "more than one timestamp",
            ),
            (format!("t={},{sig}", t()), "an entry is not key=value"),
        ] {
            assert_eq!(
                verifier().verify(BODY, Some(&header), now()),
                Err(WebhookError::BadFormat(why)),
                "{header}"
            );
        }
        let many = format!("t={}{}", t(), ",v1=00".repeat(MAX_SIGNATURES + 1));
        assert_eq!(
            verifier().verify(BODY, Some(&many), now()),
            Err(WebhookError::BadFormat("too many signatures"))
        );
    }

    #[test]
    fn signature_header_signs_as_stripe_does() {
        let secret = WebhookSecret::new(SECRET);
        assert_eq!(
            signature_header(BODY, &secret, t()),
            format!("t={},v1={}", t(), v1(SECRET, t(), BODY))
        );
        assert_eq!(format!("{secret:?}"), "WebhookSecret(***)");
    }
}
