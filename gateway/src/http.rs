//! The `/graphql` endpoint: the request-level limits and checks that run before any
//! GraphQL is parsed, then execution.
//!
//! POST: `application/json` only (415 otherwise: form-encoded, multipart and
//! `text/plain` bodies are what a cross-site form can send), a body of at most
//! `limits.max_body_bytes` (413), a single request or a batch of at most
//! `limits.max_batch`. GET: queries only (a mutation is 405), or GraphiQL outside
//! production. Then the bearer token (401 when present but not valid), the
//! per-caller rate limit (429 with `Retry-After`), and execution. An operation
//! refused by the login rate limit also turns the answer into a 429.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use async_graphql::http::GraphiQLSource;
use async_graphql::parser::types::OperationType;
use async_graphql::{BatchRequest, BatchResponse};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, FromRequestParts, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use crate::app::AppState;
use crate::auth::Viewer;
use crate::config::Environment;
use crate::error::{ApiError, retry_after_seconds};
use crate::graphql::RequestContext;
use crate::graphql::cache::Lookup;
use crate::ratelimit::Quota;

/// The client's address: the peer, or with `http.trust_forwarded_for` the
/// right-most `X-Forwarded-For` entry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientIp(pub(crate) IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
        if state.settings.http.trust_forwarded_for {
            let forwarded = parts
                .headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|s| s.trim().parse::<IpAddr>().ok())
                .next_back();
            if let Some(ip) = forwarded {
                return Ok(Self(ip));
            }
        }
        Ok(Self(peer))
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

fn bearer(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| ApiError::Unauthenticated)?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim()))
        }
        _ => Err(ApiError::Unauthenticated),
    }
}

/// `POST /graphql`.
pub(crate) async fn post(
    State(state): State<AppState>,
    ClientIp(client_ip): ClientIp,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if !is_json(&headers) {
        return ApiError::UnsupportedMediaType.into_response();
    }
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            let max = state.settings.limits.max_body_bytes;
            return ApiError::LimitExceeded {
                limit: "body_size",
                max,
                actual: max + 1,
            }
            .into_response();
        }
        Err(rejection) => return ApiError::BadRequest(rejection.body_text()).into_response(),
    };
    let batch: BatchRequest = match serde_json::from_slice(&body) {
        Ok(batch) => batch,
        Err(e) => {
            return ApiError::BadRequest(format!("invalid GraphQL request: {e}")).into_response();
        }
    };
    run(&state, client_ip, &headers, batch).await
}

/// `GET /graphql`: a query in the URL, or GraphiQL.
pub(crate) async fn get(
    State(state): State<AppState>,
    ClientIp(client_ip): ClientIp,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let Some(raw) = raw.filter(|q| !q.is_empty()) else {
        if state.settings.env == Environment::Production {
            return StatusCode::NOT_FOUND.into_response();
        }
        return Html(
            GraphiQLSource::build()
                .endpoint("/graphql")
                .subscription_endpoint("/graphql/ws")
                .finish(),
        )
        .into_response();
    };
    let request = match async_graphql::http::parse_query_string(&raw) {
        Ok(request) => request,
        Err(e) => return ApiError::BadRequest(e.to_string()).into_response(),
    };
    // Only reads over GET: a link or an <img> must never change anything.
    if let Ok(doc) = async_graphql::parser::parse_query(&request.query)
        && crate::limits::operation_type(&doc, request.operation_name.as_deref())
            .is_some_and(|ty| ty != OperationType::Query)
    {
        return ApiError::MethodNotAllowed.into_response();
    }
    run(&state, client_ip, &headers, BatchRequest::Single(request)).await
}

async fn run(
    state: &AppState,
    client_ip: IpAddr,
    headers: &HeaderMap,
    mut batch: BatchRequest,
) -> Response {
    let operations = match &batch {
        BatchRequest::Single(_) => 1,
        BatchRequest::Batch(requests) => requests.len(),
    };
    let limits = &state.settings.limits;
    if operations == 0 {
        return ApiError::BadRequest("empty batch".to_owned()).into_response();
    }
    if operations > limits.max_batch {
        return ApiError::LimitExceeded {
            limit: "batch",
            max: limits.max_batch,
            actual: operations,
        }
        .into_response();
    }
    let viewer: Option<Viewer> = match bearer(headers) {
        Ok(None) => None,
        Ok(Some(token)) => match state.accounts.authenticate(token).await {
            Ok(viewer) => Some(viewer),
            Err(e) => return e.into_response(),
        },
        Err(e) => return e.into_response(),
    };
    let cost = u32::try_from(operations).unwrap_or(u32::MAX);
    let limited = match &viewer {
        Some(v) => {
            state
                .accounts
                .limit(
                    "user",
                    &v.user_id.to_string(),
                    Quota::per_hour(limits.rate.authenticated_per_hour),
                    cost,
                )
                .await
        }
        None => {
            state
                .accounts
                .limit(
                    "anonymous",
                    &client_ip.to_string(),
                    Quota::per_hour(limits.rate.anonymous_per_hour),
                    cost,
                )
                .await
        }
    };
    if let Err(e) = limited {
        return e.into_response();
    }
    // A public catalogue query may be answered from the cache (after the rate limit,
    // which it still counts against).
    let cached = match &batch {
        BatchRequest::Single(request) => state.catalog_cache.lookup(request, viewer.as_ref()).await,
        BatchRequest::Batch(_) => Lookup::Bypass,
    };
    let pending = match cached {
        Lookup::Hit(body) => return json_response(StatusCode::OK, body, Some("hit")),
        Lookup::Miss(pending) => Some(pending),
        Lookup::Bypass => None,
    };
    let context = RequestContext { viewer, client_ip };
    let cart_token = headers
        .get("x-cart-token")
        .and_then(|v| v.to_str().ok())
        .map(|t| crate::graphql::CartToken(t.trim().to_owned()));
    for request in batch.iter_mut() {
        state.parsed.prepare(request);
        request.data.insert(context.clone());
        if let Some(token) = &cart_token {
            request.data.insert(token.clone());
        }
    }
    // The operation joins the caller's trace (W3C `traceparent`), and every command
    // it dispatches carries it into the event store and onto the bus.
    let (trace, span) = crate::telemetry::traces::request(
        "POST /graphql",
        headers.get("traceparent").and_then(|v| v.to_str().ok()),
        headers.get("tracestate").and_then(|v| v.to_str().ok()),
    );
    let response = crate::tracecontext::scope(trace, state.schema.execute_batch(batch)).await;
    let ok = match &response {
        BatchResponse::Single(r) => r.is_ok(),
        BatchResponse::Batch(rs) => rs.iter().all(async_graphql::Response::is_ok),
    };
    let http = match (pending, &response) {
        (Some(pending), BatchResponse::Single(single)) => match serde_json::to_vec(single) {
            Ok(body) => {
                let body = Bytes::from(body);
                state.catalog_cache.fill(pending, single, &body);
                if single.errors.is_empty() {
                    json_response(StatusCode::OK, body, Some("miss"))
                } else {
                    respond(&response)
                }
            }
            Err(_) => respond(&response),
        },
        _ => respond(&response),
    };
    span.end(
        vec![
            ("http.request.method", "POST".to_owned()),
            ("http.route", "/graphql".to_owned()),
            (
                "http.response.status_code",
                http.status().as_u16().to_string(),
            ),
            ("graphql.operations", operations.to_string()),
        ],
        ok,
    );
    http
}

/// A JSON answer; `cache` says whether the catalogue cache answered it
/// (`X-Catalog-Cache: hit`) or may answer it next time (`miss`).
fn json_response(status: StatusCode, body: Bytes, cache: Option<&'static str>) -> Response {
    let mut http = (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    if let Some(cache) = cache {
        http.headers_mut()
            .insert("x-catalog-cache", HeaderValue::from_static(cache));
    }
    http
}

/// 200 with the GraphQL response, or 429 with `Retry-After` when an operation was
/// rate limited.
fn respond(response: &BatchResponse) -> Response {
    let responses: Vec<&async_graphql::Response> = match response {
        BatchResponse::Single(r) => vec![r],
        BatchResponse::Batch(rs) => rs.iter().collect(),
    };
    let retry_after = responses
        .iter()
        .flat_map(|r| &r.errors)
        .filter_map(|e| e.extensions.as_ref())
        .filter(|ext| {
            ext.get("code")
                .is_some_and(|c| *c == async_graphql::Value::from("RATE_LIMITED"))
        })
        .filter_map(|ext| match ext.get("retryAfter") {
            Some(async_graphql::Value::Number(n)) => n.as_u64(),
            _ => None,
        })
        .max();
    let body = match serde_json::to_vec(response) {
        Ok(body) => body,
        Err(e) => return ApiError::internal(e).into_response(),
    };
    let status = if retry_after.is_some() {
        StatusCode::TOO_MANY_REQUESTS
    } else {
        StatusCode::OK
    };
    let mut http = (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    if let Some(seconds) = retry_after {
        let seconds = retry_after_seconds(std::time::Duration::from_secs(seconds));
        http.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    http
}
