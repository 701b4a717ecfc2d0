//! The GraphQL schema. Only this crate knows GraphQL: it builds its own types from
//! domain and read-model types.

use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};

/// The schema type served at `/graphql`.
pub type ApiSchema = Schema<QueryRoot, EmptyMutation, EmptySubscription>;

/// Root of every query.
#[derive(Debug, Default)]
pub struct QueryRoot;

#[Object]
impl QueryRoot {
    /// The platform's version.
    async fn version(&self) -> &'static str {
        env!("CARGO_PKG_VERSION")
    }
}

/// Builds the schema; introspection is off in production.
#[must_use]
pub fn build_schema(introspection: bool) -> ApiSchema {
    let builder = Schema::build(QueryRoot, EmptyMutation, EmptySubscription);
    let builder = if introspection {
        builder
    } else {
        builder.disable_introspection()
    };
    builder.finish()
}

/// The SDL, as exported to `schemas/graphql/schema.graphql`.
#[must_use]
pub fn sdl() -> String {
    build_schema(true).sdl()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    #[test]
    fn committed_sdl_matches_the_schema() {
        let path =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schemas/graphql/schema.graphql");
        let generated = super::sdl();
        if std::env::var_os("UPDATE_SCHEMAS").is_some() {
            std::fs::write(&path, &generated).expect("write sdl");
            return;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "schemas/graphql/schema.graphql drifted from the code; rerun with UPDATE_SCHEMAS=1 and review the diff"
        );
    }
}
