//! `GET /graphql/ws`: GraphQL subscriptions over WebSocket, in the `graphql-ws`
//! protocol (`graphql-transport-ws`) or the older `subscriptions-transport-ws`.
//!
//! The access token comes in the `connection_init` payload, as `authorization`
//! (`"Bearer <token>"`) or `token`. Without a valid one the connection is refused
//! (closed with `UNAUTHENTICATED`, no `connection_ack`); with one, opening the
//! connection counts as one operation against the viewer's rate limit, and every
//! subscription on it ends with `UNAUTHENTICATED` when the token expires.

use async_graphql::Data;
use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::extract::{State, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};

use crate::app::AppState;
use crate::error::ApiError;
use crate::graphql::RequestContext;
use crate::graphql::live::SessionDeadline;
use crate::http::ClientIp;
use crate::ratelimit::Quota;

fn token(payload: &serde_json::Value) -> Option<&str> {
    let raw = ["authorization", "Authorization", "token"]
        .iter()
        .find_map(|key| payload.get(*key).and_then(serde_json::Value::as_str))?;
    let raw = raw.trim();
    let token = match raw.split_once(char::is_whitespace) {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        Some(_) => return None,
        None if raw.eq_ignore_ascii_case("bearer") => return None,
        None => raw,
    };
    (!token.is_empty()).then_some(token)
}

/// Upgrades to a WebSocket serving subscriptions.
pub(crate) async fn subscriptions(
    State(state): State<AppState>,
    ClientIp(client_ip): ClientIp,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    let schema = state.schema.clone();
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| {
            GraphQLWebSocket::new(socket, schema, protocol)
                .on_connection_init(move |payload| async move {
                    let token = token(&payload).ok_or(ApiError::Unauthenticated)?;
                    let (viewer, valid_for) = state.accounts.authenticate_for(token).await?;
                    state
                        .accounts
                        .limit(
                            "user",
                            &viewer.user_id.to_string(),
                            Quota::per_hour(state.settings.limits.rate.authenticated_per_hour),
                            1,
                        )
                        .await?;
                    let mut data = Data::default();
                    data.insert(SessionDeadline::after(valid_for));
                    data.insert(RequestContext {
                        viewer: Some(viewer),
                        client_ip,
                    });
                    Ok(data)
                })
                .serve()
        })
        .into_response()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::token;

    #[test]
    fn the_token_comes_from_the_init_payload() {
        assert_eq!(token(&json!({"authorization": "Bearer abc"})), Some("abc"));
        assert_eq!(
            token(&json!({"Authorization": "bearer  abc "})),
            Some("abc")
        );
        assert_eq!(token(&json!({"token": "abc"})), Some("abc"));
        assert_eq!(token(&json!({"authorization": "Basic abc"})), None);
        assert_eq!(token(&json!({"authorization": "Bearer "})), None);
        assert_eq!(token(&json!({})), None);
        assert_eq!(token(&json!(null)), None);
    }
}
