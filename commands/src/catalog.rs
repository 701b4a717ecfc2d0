//! Products: SKUs and slugs unique across the catalogue, then plain dispatch.
//!
//! SKUs (a product's and its variants') share one namespace, because inventory is
//! kept per SKU; they are never released, so a SKU always means one thing. Slugs are
//! unique among products and freed when a product changes its slug.

use emporium_domain::EventMetadata;
use emporium_domain::catalog::{Product, ProductCommand, ProductError};
use sqlx::PgPool;
use uuid::Uuid;

use crate::dispatch::{CommandError, Committed, Dispatcher, Loading};
use crate::reservations::Claim;
use crate::store::{EventStore, KeyLookup, PendingClaim, PgStore};

/// The unique-keys scope of SKUs (products' and variants').
pub const SKU_SCOPE: &str = "sku";
/// The unique-keys scope of product slugs.
pub const SLUG_SCOPE: &str = "product_slug";

/// Where committed events name a SKU (products' and variants' share one namespace).
pub const SKU_LOOKUP: KeyLookup = KeyLookup {
    aggregate_type: "product",
    fields: &[("ProductCreated", "sku"), ("VariantAdded", "sku")],
};

/// Why a product command failed. Nothing is recorded for any of them.
#[derive(Debug, thiserror::Error)]
pub enum ProductCommandError {
    /// Another product or variant uses the SKU.
    #[error("sku `{0}` is already in use")]
    SkuTaken(String),
    /// Another product uses the slug.
    #[error("slug `{0}` is already in use")]
    SlugTaken(String),
    /// The product aggregate refused.
    #[error(transparent)]
    Rejected(#[from] ProductError),
    /// The product changed concurrently.
    #[error("product {0} was changed concurrently; try again")]
    Conflict(Uuid),
    /// Infrastructure failed.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Commands to products.
#[derive(Debug)]
pub struct Products<S: EventStore = PgStore> {
    dispatcher: Dispatcher<Product, S>,
    store: S,
}

impl Products {
    /// Products over the PostgreSQL event store in `pool`.
    #[must_use]
    pub fn new(pool: PgPool) -> Self {
        Self::over(PgStore::new(pool))
    }
}

impl<S: EventStore> Products<S> {
    /// Products over `store`.
    #[must_use]
    pub fn over(store: S) -> Self {
        Self {
            dispatcher: Dispatcher::over(store.clone(), Loading::Replay),
            store,
        }
    }

    /// Executes a product command, claiming the SKUs and slug it introduces around
    /// it (see [`reservations`]).
    ///
    /// # Errors
    /// [`ProductCommandError`].
    #[tracing::instrument(skip_all, fields(product_id = %product_id))]
    pub async fn execute(
        &self,
        product_id: Uuid,
        command: ProductCommand,
        metadata: &EventMetadata,
    ) -> Result<Committed, ProductCommandError> {
        let owner = product_id.to_string();
        let mut keys: Vec<(&'static str, String)> = match &command {
            ProductCommand::CreateProduct { sku, slug, .. } => vec![
                (SKU_SCOPE, sku.as_str().to_owned()),
                (SLUG_SCOPE, slug.as_str().to_owned()),
            ],
            ProductCommand::AddVariant { sku, .. } => vec![(SKU_SCOPE, sku.as_str().to_owned())],
            ProductCommand::ChangeSlug { slug, .. } => vec![(SLUG_SCOPE, slug.as_str().to_owned())],
            _ => Vec::new(),
        };
        // One global order of claims, so two commands wanting overlapping keys
        // cannot deadlock.
        keys.sort();
        let old_slug = match &command {
            ProductCommand::ChangeSlug { .. } => self
                .load(product_id)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .state()
                .map(|s| s.slug.as_str().to_owned()),
            _ => None,
        };

        let mut claims: Vec<S::Pending> = Vec::with_capacity(keys.len());
        for (scope, key) in &keys {
            match self.store.claim(scope, key, &owner).await? {
                Claim::Pending { mut pending, .. } => {
                    // A product whose event committed while its claim did not (the
                    // process died in between) still owns the SKU.
                    if *scope == SKU_SCOPE
                        && pending
                            .introduced_elsewhere(&SKU_LOOKUP, key, &owner)
                            .await?
                    {
                        pending.abandon().await?;
                        abandon(claims).await?;
                        return Err(ProductCommandError::SkuTaken(key.clone()));
                    }
                    claims.push(pending);
                }
                Claim::TakenBy(_) => {
                    abandon(claims).await?;
                    return Err(if *scope == SKU_SCOPE {
                        ProductCommandError::SkuTaken(key.clone())
                    } else {
                        ProductCommandError::SlugTaken(key.clone())
                    });
                }
            }
        }

        match self.dispatcher.execute(&owner, command, metadata).await {
            Ok(committed) => {
                for claim in claims {
                    claim.confirm().await?;
                }
                if let (Some(old), true) = (old_slug, committed.events > 0) {
                    self.store.release(SLUG_SCOPE, &old, &owner).await?;
                }
                Ok(committed)
            }
            Err(e) => {
                abandon(claims).await?;
                Err(match e {
                    CommandError::Rejected(e) => ProductCommandError::Rejected(e),
                    CommandError::Conflict { .. } => ProductCommandError::Conflict(product_id),
                    CommandError::Unexpected(e) => ProductCommandError::Unexpected(e),
                })
            }
        }
    }

    /// The product's current state.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub async fn load(&self, product_id: Uuid) -> Result<Product, CommandError<ProductError>> {
        self.dispatcher.load(&product_id.to_string()).await
    }
}

async fn abandon<P: PendingClaim>(claims: Vec<P>) -> anyhow::Result<()> {
    for claim in claims {
        claim.abandon().await?;
    }
    Ok(())
}
