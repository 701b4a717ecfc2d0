//! CORS: which browser origins may call the API (`http.cors_allowed_origins`).
//!
//! None by default (production: a storefront on another origin must be named);
//! `config/development.toml` allows `http://localhost:*` and `http://127.0.0.1:*`.
//! An entry is an exact origin (`https://shop.example.com`, `http://localhost:3000`),
//! an origin with any port (`http://localhost:*`), or `*` for any origin. Credentials
//! are never allowed: tokens travel in the `Authorization` header, not in cookies, so
//! a foreign page cannot borrow a visitor's session either way.
//!
//! A disallowed origin gets no `Access-Control-Allow-*` headers, so the browser
//! refuses the response; the request itself is served like any other (CORS is the
//! browser's check, the API's own checks are in [`crate::http`]).

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// One allowed origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OriginRule {
    /// Any origin.
    Any,
    /// Exactly this origin.
    Exact(String),
    /// This scheme and host, any port (or none).
    AnyPort { scheme: String, host: String },
}

impl OriginRule {
    /// Parses a configured entry.
    ///
    /// # Errors
    /// A message naming what is wrong with it.
    pub(crate) fn parse(entry: &str) -> Result<Self, String> {
        let entry = entry.trim();
        if entry == "*" {
            return Ok(Self::Any);
        }
        let (scheme, rest) = entry
            .split_once("://")
            .ok_or_else(|| format!("`{entry}`: an origin is scheme://host[:port]"))?;
        if scheme != "http" && scheme != "https" {
            return Err(format!("`{entry}`: the scheme must be http or https"));
        }
        if rest.is_empty() || rest.contains(['/', '?', '#', '@']) || rest.ends_with(':') {
            return Err(format!(
                "`{entry}`: an origin has no path, query, user or trailing colon"
            ));
        }
        match rest.rsplit_once(':') {
            Some((host, "*")) if !host.is_empty() => Ok(Self::AnyPort {
                scheme: scheme.to_owned(),
                host: host.to_ascii_lowercase(),
            }),
            Some((_, port)) if port.parse::<u16>().is_err() => {
                Err(format!("`{entry}`: the port must be a number or *"))
            }
            _ => Ok(Self::Exact(entry.to_ascii_lowercase())),
        }
    }

    fn allows(&self, origin: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Exact(exact) => origin.eq_ignore_ascii_case(exact),
            Self::AnyPort { scheme, host } => {
                let Some(rest) = origin
                    .strip_prefix(scheme.as_str())
                    .and_then(|r| r.strip_prefix("://"))
                else {
                    return false;
                };
                let (h, port) = rest.rsplit_once(':').unwrap_or((rest, "0"));
                h.eq_ignore_ascii_case(host) && port.parse::<u16>().is_ok()
            }
        }
    }
}

/// The CORS layer for `entries` (already validated with [`OriginRule::parse`]);
/// `None` when no origin is allowed, so no layer runs at all.
pub(crate) fn layer(entries: &[String]) -> Option<CorsLayer> {
    let rules: Vec<OriginRule> = entries
        .iter()
        .filter_map(|e| OriginRule::parse(e).ok())
        .collect();
    if rules.is_empty() {
        return None;
    }
    let allow = AllowOrigin::predicate(move |origin: &HeaderValue, _| {
        origin
            .to_str()
            .is_ok_and(|o| rules.iter().any(|r| r.allows(o)))
    });
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([
                header::CONTENT_TYPE,
                header::AUTHORIZATION,
                HeaderName::from_static("traceparent"),
                HeaderName::from_static("tracestate"),
                // Guest carts travel in this header (see the shop's guest carts).
                HeaderName::from_static("x-cart-token"),
            ])
            .expose_headers([header::RETRY_AFTER])
            .max_age(Duration::from_secs(600)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_parse_and_match_origins() {
        let exact = OriginRule::parse("https://Shop.example.com").unwrap();
        assert!(exact.allows("https://shop.example.com"));
        assert!(!exact.allows("https://shop.example.com.evil.test"));
        assert!(!exact.allows("http://shop.example.com"));
        let local = OriginRule::parse("http://localhost:*").unwrap();
        assert!(local.allows("http://localhost:3000"));
        assert!(local.allows("http://localhost"));
        assert!(!local.allows("http://localhost.evil.test:3000"));
        assert!(!local.allows("https://localhost:3000"));
        assert!(
            OriginRule::parse("*")
                .unwrap()
                .allows("https://anything.test")
        );
        for bad in [
            "localhost:3000",
            "ftp://x.test",
            "https://x.test/path",
            "https://x.test:",
            "https://x.test:port",
            "https://",
        ] {
            assert!(OriginRule::parse(bad).is_err(), "{bad}");
        }
    }
}
