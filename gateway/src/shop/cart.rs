//! The viewer's cart: commands through `Dispatcher<Cart>`, answers from `carts` with
//! prices from `catalog_products`.
//!
//! A user's carts have deterministic ids: generation `n` of user `u` is a UUID
//! (version 8) derived from `u` and `n`, so "the user's cart" needs no lookup table
//! and two first uses at once open the same cart. Generation 0 is the first cart;
//! once it is checked out the next command opens generation 1, and so on.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use emporium_commands::CommandError;
use emporium_domain::cart::{CartCommand, CartError, CartOwner, CartStatus};
use emporium_domain::{Quantity, Sku};
use sha2::{Digest, Sha256};
use sqlx::types::Json;
use uuid::Uuid;

use super::{ProductRow, Shop};
use crate::error::ApiError;

/// The projection whose checkpoint a cart answer waits for.
const PROJECTION: &str = "carts";

/// Generations walked before giving up (a user with this many checked-out carts is
/// not a storefront customer).
const MAX_GENERATIONS: u32 = 10_000;

/// The id of generation `generation` of `user_id`'s cart.
pub(crate) fn cart_id(user_id: Uuid, generation: u32) -> Uuid {
    let mut hash = Sha256::new();
    hash.update(b"emporium.cart.v1");
    hash.update(user_id.as_bytes());
    hash.update(generation.to_be_bytes());
    let digest = hash.finalize();
    let mut bytes = [0_u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// A cart line with its product (absent when the product left the catalogue).
#[derive(Debug, Clone)]
pub(crate) struct CartLineRow {
    pub(crate) sku: String,
    pub(crate) quantity: i64,
    pub(crate) product: Option<ProductRow>,
}

/// A cart as the read model has it.
#[derive(Debug, Clone)]
pub(crate) struct CartState {
    pub(crate) cart_id: Uuid,
    pub(crate) currency: String,
    pub(crate) lines: Vec<CartLineRow>,
    pub(crate) updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, serde::Deserialize)]
struct LineJson {
    sku: String,
    product_id: Uuid,
    quantity: i64,
}

type CartDbRow = (Uuid, String, Json<Vec<LineJson>>, DateTime<Utc>);

fn cart_error(e: CommandError<CartError>) -> ApiError {
    match e {
        CommandError::Rejected(e) => match e {
            CartError::ItemNotInCart { .. } => ApiError::NotFound { what: "cart item" },
            CartError::QuantityLimitExceeded { max, .. } => ApiError::bad_input(
                "quantity",
                "quantity_max",
                format!("a line holds at most {max} units"),
            ),
            CartError::TooManyLines { max } => ApiError::bad_input(
                "sku",
                "cart_lines_max",
                format!("a cart holds at most {max} lines"),
            ),
            CartError::SkuProductMismatch { .. } => {
                ApiError::bad_input("sku", "sku_product", "the sku changed product")
            }
            other => ApiError::internal(anyhow::anyhow!("cart refused: {other}")),
        },
        CommandError::Conflict { .. } => ApiError::Conflict,
        CommandError::Unexpected(e) => ApiError::Internal(e),
    }
}

/// Validates a quantity from the client, naming the broken rule.
pub(crate) fn parse_quantity(raw: i64) -> Result<Quantity, ApiError> {
    Quantity::new(raw).map_err(|e| {
        let rule = if raw < 1 {
            "quantity_min"
        } else {
            "quantity_max"
        };
        ApiError::bad_input("quantity", rule, e)
    })
}

fn parse_sku(raw: &str) -> Result<Sku, ApiError> {
    Sku::parse(raw).map_err(|e| ApiError::bad_input("sku", "sku_format", e))
}

impl Shop {
    /// The user's open cart id, opening one when there is none. Returns the position
    /// of the opening event when one was recorded.
    async fn open_cart(&self, user_id: Uuid) -> Result<(Uuid, Option<i64>), ApiError> {
        let mut generation = 0;
        while generation < MAX_GENERATIONS {
            let id = cart_id(user_id, generation);
            let cart = self.carts.load(&id.to_string()).await.map_err(cart_error)?;
            match cart.status() {
                Some(CartStatus::Open) => return Ok((id, None)),
                Some(CartStatus::CheckedOut | CartStatus::Merged) => generation += 1,
                None => {
                    let command = CartCommand::OpenCart {
                        cart_id: id,
                        owner: CartOwner::User { user_id },
                        currency: self.currency,
                        at: self.clock.now(),
                    };
                    match self
                        .carts
                        .execute(&id.to_string(), command, &self.metadata(user_id))
                        .await
                    {
                        Ok(committed) => return Ok((id, committed.position)),
                        // Opened concurrently by another request: look again.
                        Err(
                            CommandError::Conflict { .. }
                            | CommandError::Rejected(CartError::AlreadyOpened),
                        ) => {}
                        Err(e) => return Err(cart_error(e)),
                    }
                }
            }
        }
        Err(ApiError::internal(anyhow::anyhow!(
            "user {user_id} has no openable cart"
        )))
    }

    /// Dispatches `command` to the user's open cart, waits for the `carts` read model
    /// and answers from it.
    async fn change_cart(
        &self,
        user_id: Uuid,
        command: impl FnOnce(DateTime<Utc>) -> CartCommand,
    ) -> Result<CartState, ApiError> {
        let (id, opened) = self.open_cart(user_id).await?;
        let committed = self
            .carts
            .execute_retrying(
                &id.to_string(),
                command(self.clock.now()),
                &self.metadata(user_id),
            )
            .await
            .map_err(cart_error)?;
        self.read_your_writes(PROJECTION, committed.position.or(opened))
            .await?;
        self.cart_state(id).await
    }

    /// The user's open cart (empty when they have none yet; nothing is written).
    ///
    /// # Errors
    /// When the read model cannot be read.
    pub(crate) async fn my_cart(&self, user_id: Uuid) -> Result<CartState, ApiError> {
        let id: Option<Uuid> = sqlx::query_scalar(
            "SELECT cart_id FROM carts WHERE user_id = $1 AND status = 'open'
             ORDER BY updated_at DESC LIMIT 1",
        )
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| ApiError::internal(anyhow::Error::from(e).context("find cart")))?;
        match id {
            Some(id) => self.cart_state(id).await,
            None => Ok(self.empty_cart(cart_id(user_id, 0))),
        }
    }

    fn empty_cart(&self, cart_id: Uuid) -> CartState {
        CartState {
            cart_id,
            currency: self.currency.code().to_owned(),
            lines: Vec::new(),
            updated_at: None,
        }
    }

    /// The cart from the read model, its lines' products in one more query.
    async fn cart_state(&self, id: Uuid) -> Result<CartState, ApiError> {
        let row: Option<CartDbRow> = sqlx::query_as(
            "SELECT cart_id, currency, lines, updated_at FROM carts WHERE cart_id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| ApiError::internal(anyhow::Error::from(e).context("read cart")))?;
        let Some((cart_id, currency, lines, updated_at)) = row else {
            return Ok(self.empty_cart(id));
        };
        let ids: Vec<Uuid> = lines.0.iter().map(|l| l.product_id).collect();
        let products: HashMap<Uuid, ProductRow> = self
            .products_by_id(&ids)
            .await?
            .into_iter()
            .map(|p| (p.product_id, p))
            .collect();
        let lines = lines
            .0
            .into_iter()
            .map(|l| CartLineRow {
                product: products.get(&l.product_id).cloned(),
                sku: l.sku,
                quantity: l.quantity,
            })
            .collect();
        Ok(CartState {
            cart_id,
            currency,
            lines,
            updated_at: Some(updated_at),
        })
    }

    /// Adds units of a published SKU (a product's or a variant's).
    ///
    /// # Errors
    /// `BAD_USER_INPUT` for a bad quantity or SKU, `NOT_FOUND` for a SKU not for sale.
    pub(crate) async fn add_to_cart(
        &self,
        user_id: Uuid,
        sku: &str,
        quantity: i64,
    ) -> Result<CartState, ApiError> {
        let quantity = parse_quantity(quantity)?;
        let sku = parse_sku(sku)?;
        let product: Option<(Uuid, String)> = sqlx::query_as(
            "SELECT p.product_id, p.currency
             FROM catalog_stock s JOIN catalog_products p ON p.product_id = s.product_id
             WHERE s.sku = $1 AND p.published",
        )
        .bind(sku.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| ApiError::internal(anyhow::Error::from(e).context("look up sku")))?;
        let (product_id, currency) = product.ok_or(ApiError::NotFound { what: "product" })?;
        if currency != self.currency.code() {
            return Err(ApiError::bad_input(
                "sku",
                "currency_mismatch",
                format!("sold in {currency}, carts are in {}", self.currency.code()),
            ));
        }
        self.change_cart(user_id, |at| CartCommand::AddItem {
            sku,
            product_id,
            quantity,
            at,
        })
        .await
    }

    /// Sets a line's quantity.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` for a bad quantity or SKU, `NOT_FOUND` for a SKU not in the cart.
    pub(crate) async fn update_cart_item(
        &self,
        user_id: Uuid,
        sku: &str,
        quantity: i64,
    ) -> Result<CartState, ApiError> {
        let quantity = parse_quantity(quantity)?;
        let sku = parse_sku(sku)?;
        self.change_cart(user_id, |at| CartCommand::ChangeItemQuantity {
            sku,
            quantity,
            at,
        })
        .await
    }

    /// Removes a line.
    ///
    /// # Errors
    /// `NOT_FOUND` for a SKU not in the cart.
    pub(crate) async fn remove_from_cart(
        &self,
        user_id: Uuid,
        sku: &str,
    ) -> Result<CartState, ApiError> {
        let sku = parse_sku(sku)?;
        self.change_cart(user_id, |at| CartCommand::RemoveItem { sku, at })
            .await
    }

    /// Removes every line.
    ///
    /// # Errors
    /// When the store or the read model fails.
    pub(crate) async fn clear_cart(&self, user_id: Uuid) -> Result<CartState, ApiError> {
        self.change_cart(user_id, |at| CartCommand::ClearCart { at })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cart_ids_are_deterministic_per_user_and_generation() {
        let user = Uuid::new_v4();
        assert_eq!(cart_id(user, 0), cart_id(user, 0));
        assert_ne!(cart_id(user, 0), cart_id(user, 1));
        assert_ne!(cart_id(user, 0), cart_id(Uuid::new_v4(), 0));
        assert_eq!(cart_id(user, 0).get_version_num(), 8);
    }

    #[test]
    fn quantities_name_the_rule() {
        for (raw, rule) in [
            (0, "quantity_min"),
            (-1, "quantity_min"),
            (1 << 31, "quantity_max"),
        ] {
            match parse_quantity(raw) {
                Err(ApiError::BadUserInput { rule: r, .. }) => assert_eq!(r, rule),
                other => panic!("{raw}: {other:?}"),
            }
        }
        assert!(parse_quantity(3).is_ok());
    }
}
