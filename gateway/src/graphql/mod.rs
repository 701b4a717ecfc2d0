//! The GraphQL schema. Only this crate knows GraphQL: it builds its own types from
//! domain and read-model types.
//!
//! Each area adds its own `#[derive(Default)]` query and mutation objects to the
//! merged roots below.

mod account;
mod addresses;
pub(crate) mod cache;
mod checkout;
mod customer;
pub mod guard;
pub(crate) mod live;
mod loaders;
pub(crate) mod parsed;
mod payments;
mod shop;
mod staff;

use std::net::IpAddr;
use std::sync::Arc;

use async_graphql::{Context, MergedObject, MergedSubscription, Object, Schema};

use crate::auth::{Accounts, Viewer};
use crate::config::LimitSettings;
use crate::error::ApiError;
use crate::limits::Guardrails;
use crate::shop::Shop;

/// The schema type served at `/graphql`.
pub type ApiSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// Root of every query.
#[derive(Debug, Default, MergedObject)]
pub struct QueryRoot(
    MetaQuery,
    account::AccountQuery,
    shop::ShopQuery,
    customer::CustomerQuery,
    BackOfficeQuery,
    payments::PaymentsQuery,
    checkout::CheckoutQuery,
);

/// Root of every mutation.
#[derive(Debug, Default, MergedObject)]
pub struct MutationRoot(
    account::AccountMutation,
    shop::ShopMutation,
    customer::CustomerMutation,
    BackOfficeMutation,
    payments::PaymentsMutation,
    checkout::CheckoutMutation,
);

/// The address book and the staff back office (one entry in each root).
#[derive(Debug, Default, MergedObject)]
pub struct BackOfficeQuery(addresses::AddressQuery, staff::StaffQuery);

/// Address-book and staff back-office mutations.
#[derive(Debug, Default, MergedObject)]
pub struct BackOfficeMutation(addresses::AddressMutation, staff::StaffMutation);

pub(crate) use cache::CatalogCache;
pub(crate) use shop::CartToken;
/// Root of every subscription (served over WebSocket at `/graphql/ws`).
#[derive(Debug, Default, MergedSubscription)]
pub struct SubscriptionRoot(live::LiveSubscription);

/// Queries about the platform itself.
#[derive(Debug, Default)]
pub struct MetaQuery;

#[Object]
impl MetaQuery {
    /// The platform's version.
    async fn version(&self) -> &'static str {
        env!("CARGO_PKG_VERSION")
    }
}

/// What the HTTP layer knows about the caller, attached to every request.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The signed-in user, if a valid access token came with the request.
    pub viewer: Option<Viewer>,
    /// The client's address (for per-address limits).
    pub client_ip: IpAddr,
}

/// Reaching the request's caller and the services from a resolver.
pub(crate) trait ContextExt {
    /// The request's context.
    fn request_context(&self) -> Result<&RequestContext, ApiError>;
    /// The signed-in viewer.
    ///
    /// # Errors
    /// `UNAUTHENTICATED` for an anonymous request.
    fn viewer(&self) -> Result<&Viewer, ApiError> {
        self.request_context()?
            .viewer
            .as_ref()
            .ok_or(ApiError::Unauthenticated)
    }
    /// The account service.
    fn accounts(&self) -> Result<&Arc<Accounts>, ApiError>;
    /// The storefront services.
    fn shop(&self) -> Result<&Arc<Shop>, ApiError>;
}

impl ContextExt for Context<'_> {
    fn request_context(&self) -> Result<&RequestContext, ApiError> {
        self.data::<RequestContext>()
            .map_err(|_| ApiError::internal(anyhow::anyhow!("request context missing")))
    }

    fn accounts(&self) -> Result<&Arc<Accounts>, ApiError> {
        self.data::<Arc<Accounts>>()
            .map_err(|_| ApiError::internal(anyhow::anyhow!("account service missing")))
    }

    fn shop(&self) -> Result<&Arc<Shop>, ApiError> {
        self.data::<Arc<Shop>>()
            .map_err(|_| ApiError::internal(anyhow::anyhow!("shop service missing")))
    }
}

/// How the schema is built.
#[derive(Debug, Clone, Default)]
pub struct SchemaOptions {
    /// Serve `__schema` and `__type`.
    pub introspection: bool,
    /// Suggest similar names in validation errors.
    pub suggestions: bool,
    /// Shape limits.
    pub limits: LimitSettings,
}

/// Builds the schema over the services (absent for SDL export).
#[must_use]
pub fn build_schema(
    options: &SchemaOptions,
    accounts: Option<Arc<Accounts>>,
    shop: Option<Arc<Shop>>,
) -> ApiSchema {
    let mut builder = Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot::default(),
    )
    .extension(Guardrails::new(options.limits.clone()));
    if !options.introspection {
        builder = builder.disable_introspection();
    }
    if !options.suggestions {
        builder = builder.disable_suggestions();
    }
    if let Some(accounts) = accounts {
        builder = builder.data(accounts);
    }
    if let Some(shop) = shop {
        builder = builder.data(Arc::new(crate::staff::Staff::new(Arc::clone(&shop))));
        builder = builder.data(loaders::product_loader(Arc::clone(&shop)));
        builder = builder.data(shop);
    }
    builder.finish()
}

/// The SDL, as exported to `schemas/graphql/schema.graphql`.
#[must_use]
pub fn sdl() -> String {
    build_schema(
        &SchemaOptions {
            introspection: true,
            ..SchemaOptions::default()
        },
        None,
        None,
    )
    .sdl()
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
