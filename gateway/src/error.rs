//! The one error type of the API.
//!
//! Every error a client sees carries a stable `extensions.code`; the message is for
//! humans and may change. Internal failures are logged with their cause chain and
//! shown only as `INTERNAL`.

use std::time::Duration;

use async_graphql::{ErrorExtensions, Value};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Why a request or a field failed, as the client is told.
/// Deliberately not `Display`: async-graphql converts any `Display` type into an
/// error without extensions, so the only way into a GraphQL error is the `From`
/// below, which sets `extensions.code`.
#[derive(Debug)]
pub enum ApiError {
    /// No valid access token, or an invalid, expired or revoked token.
    Unauthenticated,
    /// Wrong e-mail or password (which one is never said).
    InvalidCredentials,
    /// Signed in, but the role does not allow it.
    Forbidden,
    /// Missing, or owned by someone else (the two look the same).
    NotFound {
        /// What was looked for (`order`, `address`).
        what: &'static str,
    },
    /// An argument broke a rule.
    BadUserInput {
        /// The argument or input field.
        field: &'static str,
        /// The rule's stable name (`password_min_length`).
        rule: &'static str,
        /// Explanation for humans.
        message: String,
    },
    /// Another account holds the e-mail address.
    EmailTaken,
    /// A verification or reset token that is unknown, used or expired.
    InvalidToken,
    /// Too many requests; retry after the given time.
    RateLimited {
        /// How long until the window resets.
        retry_after: Duration,
    },
    /// The request's shape exceeds a configured limit.
    LimitExceeded {
        /// Which limit (`depth`, `complexity`, `aliases`, `directives`, `batch`,
        /// `body_size`).
        limit: &'static str,
        /// The configured maximum.
        max: usize,
        /// What the request had (at least).
        actual: usize,
    },
    /// The request is not a GraphQL request this endpoint accepts (malformed JSON,
    /// an empty batch).
    BadRequest(String),
    /// A POST whose body is not `application/json` (form posts and `text/plain` are
    /// what cross-site forms can send).
    UnsupportedMediaType,
    /// A mutation or subscription over GET.
    MethodNotAllowed,
    /// The target changed concurrently; retrying may succeed.
    Conflict,
    /// A unique value (a SKU, a slug) that something else holds; code `CONFLICT`
    /// with the input `field`.
    Taken {
        /// The argument or input field.
        field: &'static str,
        /// Explanation for humans.
        message: String,
    },
    /// The object's state does not allow the operation (an order's status machine,
    /// an archived product, a category with children); code `FAILED_PRECONDITION`
    /// with the `rule`.
    Precondition {
        /// The rule's stable name (`order_transition`).
        rule: &'static str,
        /// Explanation for humans.
        message: String,
    },
    /// A business refusal with its own stable code (`OUT_OF_STOCK`,
    /// `PAYMENT_DECLINED`, `COUPON_*`, `ORDER_NOT_CANCELLABLE`, ...) and details for
    /// the client (`declineCode`, `orderId`, `sku`).
    Refused {
        /// The stable code.
        code: &'static str,
        /// For humans.
        message: String,
        /// Extra `extensions` entries.
        details: Vec<(&'static str, String)>,
    },
    /// Anything else. The cause is logged, never shown.
    Internal(anyhow::Error),
}

/// Whole seconds, rounded up, at least 1 (the `Retry-After` header's unit).
pub(crate) fn retry_after_seconds(d: Duration) -> u64 {
    (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
}

impl ApiError {
    /// An internal failure.
    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        Self::Internal(e.into())
    }

    /// A broken input rule.
    pub fn bad_input(field: &'static str, rule: &'static str, message: impl ToString) -> Self {
        Self::BadUserInput {
            field,
            rule,
            message: message.to_string(),
        }
    }

    /// The message for humans (never an internal detail).
    #[must_use]
    pub fn message(&self) -> String {
        match self {
            Self::Unauthenticated => "authentication required".to_owned(),
            Self::InvalidCredentials => "invalid e-mail or password".to_owned(),
            Self::Forbidden => "not allowed".to_owned(),
            Self::NotFound { what } => format!("{what} not found"),
            Self::BadUserInput { field, message, .. } => format!("{field}: {message}"),
            Self::EmailTaken => "an account with this e-mail address already exists".to_owned(),
            Self::InvalidToken => "the token is invalid, already used or expired".to_owned(),
            Self::RateLimited { retry_after } => format!(
                "too many requests; retry in {} s",
                retry_after_seconds(*retry_after)
            ),
            Self::LimitExceeded { limit, max, actual } => {
                format!("{limit} limit exceeded: {actual} > {max}")
            }
            Self::BadRequest(why) => format!("bad request: {why}"),
            Self::UnsupportedMediaType => "requests must be application/json".to_owned(),
            Self::MethodNotAllowed => "mutations are only accepted over POST".to_owned(),
            Self::Conflict => "changed concurrently; try again".to_owned(),
            Self::Taken { field, message } => format!("{field}: {message}"),
            Self::Precondition { message, .. } => message.clone(),
            Self::Refused { message, .. } => message.clone(),
            Self::Internal(_) => "internal error".to_owned(),
        }
    }

    /// The stable `extensions.code`.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::InvalidCredentials => "INVALID_CREDENTIALS",
            Self::Forbidden => "FORBIDDEN",
            Self::NotFound { .. } => "NOT_FOUND",
            Self::BadUserInput { .. } => "BAD_USER_INPUT",
            Self::EmailTaken => "EMAIL_TAKEN",
            Self::InvalidToken => "INVALID_TOKEN",
            Self::RateLimited { .. } => "RATE_LIMITED",
            Self::LimitExceeded { .. } => "LIMIT_EXCEEDED",
            Self::BadRequest(_) => "BAD_REQUEST",
            Self::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::Conflict | Self::Taken { .. } => "CONFLICT",
            Self::Precondition { .. } => "FAILED_PRECONDITION",
            Self::Refused { code, .. } => code,
            Self::Internal(_) => "INTERNAL",
        }
    }

    /// The HTTP status when the error answers the whole request.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::LimitExceeded {
                limit: "body_size", ..
            } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn log(&self) {
        if let Self::Internal(e) = self {
            tracing::error!(error = %format!("{e:#}"), "internal error");
        }
    }

    /// As a GraphQL error with `extensions.code` (and the rule's details).
    #[must_use]
    pub fn to_graphql(&self) -> async_graphql::Error {
        self.log();
        async_graphql::Error::new(self.message()).extend_with(|_, ext| {
            ext.set("code", self.code());
            match self {
                Self::BadUserInput { field, rule, .. } => {
                    ext.set("field", *field);
                    ext.set("rule", *rule);
                }
                Self::Taken { field, .. } => {
                    ext.set("field", *field);
                    ext.set("rule", "unique");
                }
                Self::Precondition { rule, .. } => {
                    ext.set("rule", *rule);
                }
                Self::RateLimited { retry_after } => {
                    ext.set("retryAfter", retry_after_seconds(*retry_after));
                }
                Self::LimitExceeded { limit, max, .. } => {
                    ext.set("limit", *limit);
                    ext.set("max", Value::from(*max as u64));
                }
                Self::Refused { details, .. } => {
                    for (key, value) in details {
                        ext.set(*key, value.as_str());
                    }
                }
                _ => {}
            }
        })
    }

    /// As a GraphQL server error (for extension hooks).
    #[must_use]
    pub fn to_server_error(&self) -> async_graphql::ServerError {
        self.to_graphql()
            .into_server_error(async_graphql::Pos::default())
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(e: ApiError) -> Self {
        e.to_graphql()
    }
}

/// A request-level error: the status, `Retry-After` when rate limited, and a
/// GraphQL-shaped body (`{"errors": [{"message", "extensions": {"code"}}]}`).
impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let retry_after = match &self {
            Self::RateLimited { retry_after } => Some(retry_after_seconds(*retry_after)),
            _ => None,
        };
        let mut error = serde_json::to_value(self.to_server_error()).unwrap_or_default();
        // A request-level error has no position in the document.
        if let Some(obj) = error.as_object_mut() {
            obj.remove("locations");
        }
        let body = serde_json::json!({ "errors": [error] });
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if status == StatusCode::METHOD_NOT_ALLOWED {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Bearer error="invalid_token""#),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internals_are_never_shown() {
        let e = ApiError::internal(anyhow::anyhow!("connection to 10.0.0.7 refused"));
        let shown = serde_json::to_string(&e.to_server_error()).unwrap();
        assert!(!shown.contains("10.0.0.7"), "{shown}");
        assert!(shown.contains(r#""code":"INTERNAL""#), "{shown}");
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_seconds(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_seconds(Duration::from_secs(60)), 60);
        assert_eq!(retry_after_seconds(Duration::from_millis(59_001)), 60);
    }
}
