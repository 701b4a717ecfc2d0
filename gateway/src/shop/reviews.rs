//! Product reviews: a product's approved reviews from `product_reviews`; writing and
//! voting through `Dispatcher<Review>` (aggregate id `Review::id_for(product, user)`,
//! so one review per user per product is structural), answered from the read model
//! once the `reviews` projection has applied the change.
//!
//! The command layer's part of the review rules (see `catalog/review/mod.rs`) is done
//! here: the aggregate id is built from the same product and author the command
//! carries, the product must be for sale, and `verified_purchase` is computed from the
//! author's paid, shipped or delivered orders in the `orders` read model; no input
//! carries it.

use chrono::{DateTime, Utc};
use emporium_commands::CommandError;
use emporium_domain::catalog::{
    Rating, Review, ReviewBody, ReviewCommand, ReviewError, ReviewTitle,
};
use emporium_projections::args;
use emporium_projections::sql::Backend;
use uuid::Uuid;

use super::Shop;
use crate::error::ApiError;

/// The projection whose checkpoint a review answer waits for.
const PROJECTION: &str = "reviews";

/// The most reviews one page shows.
pub(crate) const MAX_PAGE: i64 = 100;

/// An order of `$1` (the user) in a status that proves a purchase; `$2` (the
/// product, hyphenated text) must be one of its lines' products.
const BOUGHT: &str = "SELECT EXISTS (
     SELECT 1 FROM orders
     WHERE customer_id = $1 AND status IN ('paid', 'shipped', 'delivered')
       AND ";

/// A review as the storefront shows it (the author is not named).
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct ReviewRow {
    pub(crate) review_id: Uuid,
    pub(crate) product_id: Uuid,
    pub(crate) rating: i32,
    pub(crate) title: String,
    pub(crate) body: String,
    pub(crate) verified_purchase: bool,
    pub(crate) status: String,
    pub(crate) helpful_votes: i64,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "review_id, product_id, rating, title, body, verified_purchase, status,
    helpful_votes, created_at, updated_at";

fn read_error(e: sqlx::Error, what: &'static str) -> ApiError {
    ApiError::internal(anyhow::Error::from(e).context(what))
}

fn command_error(e: CommandError<ReviewError>) -> ApiError {
    match e {
        CommandError::Rejected(ReviewError::AlreadyWritten) => ApiError::bad_input(
            "productId",
            "review_already_written",
            "you have already reviewed this product",
        ),
        CommandError::Rejected(ReviewError::AuthorCannotVote) => ApiError::bad_input(
            "reviewId",
            "own_review",
            "an author cannot vote for their own review",
        ),
        CommandError::Rejected(ReviewError::NotWritten | ReviewError::NotApproved) => {
            ApiError::NotFound { what: "review" }
        }
        CommandError::Rejected(other) => ApiError::internal(anyhow::Error::from(other)),
        CommandError::Conflict { .. } => ApiError::Conflict,
        CommandError::Unexpected(e) => ApiError::Internal(e),
    }
}

impl Shop {
    /// A product's approved reviews, newest first.
    ///
    /// # Errors
    /// When the read model cannot be read.
    pub(crate) async fn product_reviews(
        &self,
        product_id: Uuid,
        first: i64,
    ) -> Result<Vec<ReviewRow>, ApiError> {
        self.read
            .fetch_all(
                &format!(
                    "SELECT {COLUMNS} FROM product_reviews
                     WHERE product_id = $1 AND status = 'approved'
                     ORDER BY created_at DESC, review_id DESC
                     LIMIT $2"
                ),
                args![product_id, first.clamp(1, MAX_PAGE)],
            )
            .await
            .map_err(|e| read_error(e, "read reviews"))
    }

    async fn review_by(&self, product_id: Uuid, author_id: Uuid) -> Result<ReviewRow, ApiError> {
        self.read
            .fetch_optional(
                &format!(
                    "SELECT {COLUMNS} FROM product_reviews WHERE product_id = $1 AND author_id = $2"
                ),
                args![product_id, author_id],
            )
            .await
            .map_err(|e| read_error(e, "read review"))?
            .ok_or(ApiError::NotFound { what: "review" })
    }

    /// Whether the user has a paid, shipped or delivered order with the product.
    pub(super) async fn bought(&self, user_id: Uuid, product_id: Uuid) -> Result<bool, ApiError> {
        // jsonb containment on PostgreSQL; SQLite looks through the lines.
        let line = match self.read.backend() {
            Backend::Postgres => {
                "lines @> jsonb_build_array(jsonb_build_object('product_id', $2)))"
            }
            Backend::Sqlite => {
                "EXISTS (SELECT 1 FROM json_each(lines) WHERE value ->> 'product_id' = $2))"
            }
        };
        self.read
            .scalar_optional(
                &format!("{BOUGHT}{line}"),
                args![user_id, product_id.to_string()],
            )
            .await
            .map(|bought| bought.unwrap_or(false))
            .map_err(|e| read_error(e, "check purchases"))
    }

    /// Writes the user's review of a product for sale; it awaits moderation.
    ///
    /// # Errors
    /// `NOT_FOUND` for a product not for sale; `BAD_USER_INPUT` for a rating, title or
    /// body out of bounds, or a second review of the same product.
    pub(crate) async fn write_review(
        &self,
        user_id: Uuid,
        product_id: Uuid,
        rating: i64,
        title: &str,
        body: &str,
    ) -> Result<ReviewRow, ApiError> {
        let rating = Rating::new(rating)
            .map_err(|e| ApiError::bad_input("rating", "rating_range", e.to_string()))?;
        let title = ReviewTitle::parse(title)
            .map_err(|e| ApiError::bad_input("title", "review_title", e.to_string()))?;
        let body = ReviewBody::parse(body)
            .map_err(|e| ApiError::bad_input("body", "review_body", e.to_string()))?;
        let published: Option<bool> = self
            .read
            .scalar_optional(
                "SELECT published FROM catalog_products WHERE product_id = $1",
                args![product_id],
            )
            .await
            .map_err(|e| read_error(e, "find product"))?;
        if published != Some(true) {
            return Err(ApiError::NotFound { what: "product" });
        }
        let verified_purchase = self.bought(user_id, product_id).await?;
        let committed = self
            .reviews
            .execute(
                &Review::id_for(product_id, user_id),
                ReviewCommand::WriteReview {
                    product_id,
                    author_id: user_id,
                    rating,
                    title,
                    body,
                    verified_purchase,
                    at: self.clock.now(),
                },
                &self.metadata(user_id),
            )
            .await
            .map_err(command_error)?;
        self.read_your_writes(PROJECTION, committed.position)
            .await?;
        self.review_by(product_id, user_id).await
    }

    /// Records the user's helpful vote on an approved review (a repeat changes
    /// nothing).
    ///
    /// # Errors
    /// `NOT_FOUND` for a review that is missing or not shown; `BAD_USER_INPUT` for the
    /// author's own review.
    pub(crate) async fn mark_review_helpful(
        &self,
        user_id: Uuid,
        review_id: Uuid,
    ) -> Result<ReviewRow, ApiError> {
        let target: Option<(Uuid, Uuid)> = self
            .read
            .fetch_optional(
                "SELECT product_id, author_id FROM product_reviews
                 WHERE review_id = $1 AND status = 'approved'",
                args![review_id],
            )
            .await
            .map_err(|e| read_error(e, "find review"))?;
        let (product_id, author_id) = target.ok_or(ApiError::NotFound { what: "review" })?;
        let position = match self
            .reviews
            .execute_retrying(
                &Review::id_for(product_id, author_id),
                ReviewCommand::MarkReviewHelpful {
                    voter_id: user_id,
                    at: self.clock.now(),
                },
                &self.metadata(user_id),
            )
            .await
        {
            Ok(committed) => committed.position,
            Err(CommandError::Rejected(ReviewError::AlreadyVoted)) => None,
            Err(e) => return Err(command_error(e)),
        };
        self.read_your_writes(PROJECTION, position).await?;
        self.review_by(product_id, author_id).await
    }
}
