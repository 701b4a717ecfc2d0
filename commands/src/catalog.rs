//! Products: SKUs and slugs unique across the catalogue, then plain dispatch.
//!
//! SKUs (a product's and its variants') share one namespace, because inventory is
//! kept per SKU; they are never released, so a SKU always means one thing. Slugs are
//! unique among products and freed when a product changes its slug.

use anyhow::Context;
use emporium_domain::EventMetadata;
use emporium_domain::catalog::{Product, ProductCommand, ProductError};
use sqlx::PgPool;
use uuid::Uuid;

use crate::dispatch::{CommandError, Committed, Dispatcher, Loading};
use crate::reservations::{self, Claim, Pending};

/// The unique-keys scope of SKUs (products' and variants').
pub const SKU_SCOPE: &str = "sku";
/// The unique-keys scope of product slugs.
pub const SLUG_SCOPE: &str = "product_slug";

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
pub struct Products {
    dispatcher: Dispatcher<Product>,
    pool: PgPool,
}

impl Products {
    /// Products over the event store in `pool`.
    #[must_use]
    pub fn new(pool: PgPool) -> Self {
        Self {
            dispatcher: Dispatcher::new(pool.clone(), Loading::Replay),
            pool,
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

        let mut claims: Vec<Pending> = Vec::with_capacity(keys.len());
        for (scope, key) in &keys {
            match reservations::claim(&self.pool, scope, key, &owner).await? {
                Claim::Pending { mut pending, .. } => {
                    if *scope == SKU_SCOPE && sku_used_elsewhere(&mut pending, key, &owner).await? {
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
                    reservations::release(&self.pool, SLUG_SCOPE, &old, &owner).await?;
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

async fn abandon(claims: Vec<Pending>) -> anyhow::Result<()> {
    for claim in claims {
        claim.abandon().await?;
    }
    Ok(())
}

/// Whether a committed event of another product introduced `sku`: closes the window
/// where a product's event committed and its claim did not.
async fn sku_used_elsewhere(pending: &mut Pending, sku: &str, owner: &str) -> anyhow::Result<bool> {
    let used: Option<i32> = sqlx::query_scalar(
        "SELECT 1 FROM events
          WHERE aggregate_type = 'product' AND aggregate_id <> $2
            AND ((event_type = 'ProductCreated' AND payload -> 'ProductCreated' ->> 'sku' = $1)
              OR (event_type = 'VariantAdded' AND payload -> 'VariantAdded' ->> 'sku' = $1))
          LIMIT 1",
    )
    .bind(sku)
    .bind(owner)
    .fetch_optional(&mut **pending.transaction())
    .await
    .context("look up a product using the sku")?;
    Ok(used.is_some())
}
