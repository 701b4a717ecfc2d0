//! The viewer's cart: commands through `Dispatcher<Cart>`, answers from `carts` with
//! prices from `catalog_products`.
//!
//! A user's carts have deterministic ids: generation `n` of user `u` is a UUID
//! (version 8) derived from `u` and `n`, so "the user's cart" needs no lookup table
//! and two first uses at once open the same cart. Generation 0 is the first cart;
//! once it is checked out the next command opens generation 1, and so on.

use chrono::{DateTime, SubsecRound as _, Utc};
use emporium_commands::CommandError;
use emporium_domain::cart::{Cart, CartCommand, CartError, CartOwner, CartStatus, GuestKey};
use emporium_domain::metadata::Actor;
use emporium_domain::{Aggregate as _, EventMetadata, Quantity, Sku};
use emporium_projections::args;
use sha2::{Digest, Sha256};
use sqlx::types::Json;
use uuid::Uuid;

use super::{ProductRow, Shop, guest};
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

/// Whose cart a request works on.
#[derive(Debug, Clone)]
pub(crate) enum Shopper {
    /// A signed-in user.
    User(Uuid),
    /// A guest holding a cart token (see [`guest`]). `fresh`: the token was minted
    /// by this request, so its first cart may be opened; an old token whose first
    /// cart does not exist was never minted and finds nothing.
    Guest {
        /// The token's key.
        key: GuestKey,
        /// Minted by this request.
        fresh: bool,
    },
}

impl Shopper {
    /// The id of the shopper's cart of `generation`.
    fn cart_id(&self, generation: u32) -> Uuid {
        match self {
            Self::User(user_id) => cart_id(*user_id, generation),
            Self::Guest { key, .. } => guest::cart_id(key, generation),
        }
    }

    fn owner(&self) -> CartOwner {
        match self {
            Self::User(user_id) => CartOwner::User { user_id: *user_id },
            Self::Guest { key, .. } => CartOwner::Guest {
                guest_key: key.clone(),
            },
        }
    }

    fn actor(&self) -> Actor {
        match self {
            Self::User(user_id) => Actor::User(*user_id),
            Self::Guest { key, .. } => Actor::Guest(key.as_str().to_owned()),
        }
    }

    /// Whether the shopper's first cart may be opened by this request.
    fn may_open_first(&self) -> bool {
        match self {
            Self::User(_) => true,
            Self::Guest { fresh, .. } => *fresh,
        }
    }
}

/// A cart line with its product (absent when the product left the catalogue).
#[derive(Debug, Clone)]
pub(crate) struct CartLineRow {
    pub(crate) sku: String,
    pub(crate) quantity: i64,
    pub(crate) product: Option<std::sync::Arc<ProductRow>>,
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

/// A cart as [`Shop::cart_state`] reads it.
#[derive(Debug, sqlx::FromRow)]
struct CartRow {
    cart_id: Uuid,
    currency: String,
    updated_at: DateTime<Utc>,
    lines: Json<Vec<LineJson>>,
}

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

/// Records how long a phase of a cart change took (`emporium_cart_change_seconds`,
/// by phase) and returns when the next phase starts.
fn phase(name: &'static str, since: std::time::Instant) -> std::time::Instant {
    let now = std::time::Instant::now();
    metrics::histogram!("emporium_cart_change_seconds", "phase" => name)
        .record((now - since).as_secs_f64());
    now
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
    fn cart_metadata(&self, shopper: &Shopper) -> EventMetadata {
        EventMetadata::new(Uuid::new_v4(), shopper.actor(), self.clock.now())
    }

    async fn load_cart(&self, id: Uuid) -> Result<Cart, ApiError> {
        self.carts.load(&id.to_string()).await.map_err(cart_error)
    }

    /// The shopper's open cart id, opening one when there is none, and remembers it.
    /// Returns the position of the opening event when one was recorded.
    ///
    /// # Errors
    /// `NOT_FOUND` (cart) for a guest token that was never minted.
    async fn open_cart(&self, shopper: &Shopper) -> Result<(Uuid, Option<i64>), ApiError> {
        let mut generation = 0;
        while generation < MAX_GENERATIONS {
            let id = shopper.cart_id(generation);
            let cart = self.load_cart(id).await?;
            match cart.status() {
                Some(CartStatus::Open) => {
                    self.open_carts.insert(shopper.cart_id(0), id);
                    return Ok((id, None));
                }
                Some(CartStatus::CheckedOut | CartStatus::Merged) => generation += 1,
                None if generation == 0 && !shopper.may_open_first() => {
                    return Err(ApiError::NotFound { what: "cart" });
                }
                None => {
                    let command = CartCommand::OpenCart {
                        cart_id: id,
                        owner: shopper.owner(),
                        currency: self.currency,
                        at: self.clock.now(),
                    };
                    match self
                        .carts
                        .execute(&id.to_string(), command, &self.cart_metadata(shopper))
                        .await
                    {
                        Ok(committed) => {
                            self.open_carts.insert(shopper.cart_id(0), id);
                            return Ok((id, committed.position));
                        }
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
            "shopper has no openable cart"
        )))
    }

    /// Dispatches `command` to the shopper's open cart and answers with the cart as
    /// the command left it: the aggregate's state right after the commit, with its
    /// lines' products from the catalogue. Nothing waits for the `carts` read model;
    /// the position is remembered so the shopper's next cart read waits for it
    /// ([`Shop::my_cart`]).
    async fn change_cart(
        &self,
        shopper: &Shopper,
        command: impl FnOnce(DateTime<Utc>) -> CartCommand,
    ) -> Result<CartState, ApiError> {
        let started = std::time::Instant::now();
        let remembered = self.open_carts.get(&shopper.cart_id(0));
        let (mut id, mut opened) = match remembered {
            Some(id) => (id, None),
            None => self.open_cart(shopper).await?,
        };
        let open = phase("open", started);
        let command = command(self.clock.now());
        let mut result = self
            .carts
            .execute_retrying_with_state(
                &id.to_string(),
                command.clone(),
                &self.cart_metadata(shopper),
            )
            .await;
        // The cart (remembered, or found a moment ago) was closed meanwhile (checked
        // out, merged into the user's cart): the refusal is decided on the stored
        // cart, so nothing was recorded; the change goes to the shopper's open cart,
        // found as a first change would find it (once).
        if matches!(
            result,
            Err(CommandError::Rejected(
                CartError::NotOpened
                    | CartError::AlreadyCheckedOut
                    | CartError::AlreadyMerged { .. }
            ))
        ) {
            self.open_carts.remove(&shopper.cart_id(0));
            let (reopened, just_opened) = self.open_cart(shopper).await?;
            id = reopened;
            opened = opened.or(just_opened);
            result = self
                .carts
                .execute_retrying_with_state(&id.to_string(), command, &self.cart_metadata(shopper))
                .await;
        }
        // An opening recorded before a refusal still counts as this shopper's write.
        if let Some(position) = opened {
            self.remember_cart_write(shopper, position);
        }
        let (committed, cart) = result.map_err(cart_error)?;
        if let Some(position) = committed.position {
            self.remember_cart_write(shopper, position);
        }
        if committed.position.or(opened).is_some() {
            self.nudge_relay();
        }
        let commanded = phase("command", open);
        let state = self.cart_from_aggregate(id, &cart).await;
        phase("answer", commanded);
        state
    }

    /// Remembers `position` as the shopper's latest cart write (positions only grow).
    fn remember_cart_write(&self, shopper: &Shopper, position: i64) {
        use std::sync::atomic::{AtomicI64, Ordering};
        let slot = self
            .cart_writes
            .get_or_insert_with(&shopper.cart_id(0), || {
                Ok::<_, std::convert::Infallible>(std::sync::Arc::new(AtomicI64::new(0)))
            });
        let Ok(slot) = slot;
        slot.fetch_max(position, Ordering::AcqRel);
    }

    /// Waits until `carts` has applied the shopper's latest cart change made through
    /// this process, so a cart read after a cart change sees it.
    async fn after_cart_writes(&self, shopper: &Shopper) -> Result<(), ApiError> {
        let position = self
            .cart_writes
            .get(&shopper.cart_id(0))
            .map(|slot| slot.load(std::sync::atomic::Ordering::Acquire));
        self.read_your_writes(PROJECTION, position.filter(|p| *p > 0))
            .await
    }

    /// The cart as `cart` (its state right after a command) has it, answered as the
    /// read model would answer it once it has applied the command: lines in the order
    /// they were added, times in microseconds.
    async fn cart_from_aggregate(&self, id: Uuid, cart: &Cart) -> Result<CartState, ApiError> {
        let lines = cart.lines_as_added();
        let mut ids: Vec<Uuid> = lines.iter().map(|l| l.product_id).collect();
        ids.sort_unstable();
        ids.dedup();
        let products = self.products_for_lines(&ids).await?;
        Ok(CartState {
            cart_id: id,
            currency: cart.currency().unwrap_or(self.currency).code().to_owned(),
            lines: lines
                .into_iter()
                .map(|l| CartLineRow {
                    product: products.get(&l.product_id).cloned(),
                    sku: l.sku.as_str().to_owned(),
                    quantity: i64::from(l.quantity.get()),
                })
                .collect(),
            updated_at: cart.updated_at().map(|at| at.trunc_subsecs(6)),
        })
    }

    /// The shopper's open cart (empty when they have none yet; nothing is written).
    ///
    /// # Errors
    /// `NOT_FOUND` for a guest token that was never minted; when the read model
    /// cannot be read.
    pub(crate) async fn my_cart(&self, shopper: &Shopper) -> Result<CartState, ApiError> {
        self.after_cart_writes(shopper).await?;
        let user_id = match shopper {
            Shopper::User(user_id) => *user_id,
            Shopper::Guest { .. } => return self.guest_cart(shopper).await,
        };
        let id: Option<Uuid> = self
            .read
            .scalar_optional(
                "SELECT cart_id FROM carts WHERE user_id = $1 AND status = 'open'
                 ORDER BY updated_at DESC LIMIT 1",
                args![user_id],
            )
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

    /// The cart from the read model with its lines' products (the products from
    /// the catalogue rows cache while the catalogue is unchanged, see `rows.rs`).
    async fn cart_state(&self, id: Uuid) -> Result<CartState, ApiError> {
        let row: Option<CartRow> = self
            .read
            .fetch_optional(
                "SELECT cart_id, currency, updated_at, lines FROM carts WHERE cart_id = $1",
                args![id],
            )
            .await
            .map_err(|e| ApiError::internal(anyhow::Error::from(e).context("read cart")))?;
        let Some(row) = row else {
            return Ok(self.empty_cart(id));
        };
        let mut ids: Vec<Uuid> = row.lines.0.iter().map(|l| l.product_id).collect();
        ids.sort_unstable();
        ids.dedup();
        let products = self.products_for_lines(&ids).await?;
        let lines = row
            .lines
            .0
            .into_iter()
            .map(|l| CartLineRow {
                product: products.get(&l.product_id).cloned(),
                sku: l.sku,
                quantity: l.quantity,
            })
            .collect();
        Ok(CartState {
            cart_id: row.cart_id,
            currency: row.currency,
            lines,
            updated_at: Some(row.updated_at.trunc_subsecs(6)),
        })
    }

    /// Adds units of a published SKU (a product's or a variant's).
    ///
    /// # Errors
    /// `BAD_USER_INPUT` for a bad quantity or SKU, `NOT_FOUND` for a SKU not for sale.
    pub(crate) async fn add_to_cart(
        &self,
        shopper: &Shopper,
        sku: &str,
        quantity: i64,
    ) -> Result<CartState, ApiError> {
        let quantity = parse_quantity(quantity)?;
        let sku = parse_sku(sku)?;
        let product = self.sku_product(sku.as_str()).await?;
        let (product_id, currency) = product.ok_or(ApiError::NotFound { what: "product" })?;
        if currency != self.currency.code() {
            return Err(ApiError::bad_input(
                "sku",
                "currency_mismatch",
                format!("sold in {currency}, carts are in {}", self.currency.code()),
            ));
        }
        self.change_cart(shopper, |at| CartCommand::AddItem {
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
        shopper: &Shopper,
        sku: &str,
        quantity: i64,
    ) -> Result<CartState, ApiError> {
        let quantity = parse_quantity(quantity)?;
        let sku = parse_sku(sku)?;
        self.change_cart(shopper, |at| CartCommand::ChangeItemQuantity {
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
        shopper: &Shopper,
        sku: &str,
    ) -> Result<CartState, ApiError> {
        let sku = parse_sku(sku)?;
        self.change_cart(shopper, |at| CartCommand::RemoveItem { sku, at })
            .await
    }

    /// Removes every line.
    ///
    /// # Errors
    /// When the store or the read model fails.
    pub(crate) async fn clear_cart(&self, shopper: &Shopper) -> Result<CartState, ApiError> {
        self.change_cart(shopper, |at| CartCommand::ClearCart { at })
            .await
    }
}

impl Shop {
    /// A guest's open cart, found through the aggregate (the token's first cart must
    /// exist); empty when every cart of the token is closed.
    async fn guest_cart(&self, shopper: &Shopper) -> Result<CartState, ApiError> {
        let mut generation = 0;
        while generation < MAX_GENERATIONS {
            let id = shopper.cart_id(generation);
            match self.load_cart(id).await?.status() {
                Some(CartStatus::Open) => return self.cart_state(id).await,
                Some(CartStatus::CheckedOut | CartStatus::Merged) => generation += 1,
                None if generation == 0 => return Err(ApiError::NotFound { what: "cart" }),
                None => return Ok(self.empty_cart(id)),
            }
        }
        Err(ApiError::internal(anyhow::anyhow!(
            "guest has no openable cart"
        )))
    }

    /// Merges the cart of the guest token `token` into the user's open cart and
    /// closes the guest cart. Idempotent: merging a guest cart already merged into
    /// one of the user's carts answers the user's cart and records nothing.
    ///
    /// The guest cart is closed first, then its lines are merged: a closed cart
    /// accepts no change, so the lines it holds once closed are exactly the lines
    /// that move, and a line the guest adds at the same moment either lands before
    /// the close (and moves) or after it (in the guest's next cart), never nowhere.
    /// Before closing anything the merge is decided against the user's cart, so a
    /// refusal (too many lines) leaves both carts as they were. Each step is
    /// idempotent: a retry after a crash between them finishes the merge.
    ///
    /// # Errors
    /// `NOT_FOUND` (cart) for a token that names no cart, or whose cart was merged
    /// into someone else's or checked out; `BAD_USER_INPUT` when the user's cart
    /// cannot take the guest's lines.
    pub(crate) async fn merge_guest_cart(
        &self,
        user_id: Uuid,
        token: &str,
    ) -> Result<CartState, ApiError> {
        let guest = Shopper::Guest {
            key: guest::key_for(token)?,
            fresh: false,
        };
        let user = Shopper::User(user_id);
        // The guest's latest cart: the open one, else the last closed one.
        let mut latest: Option<(Uuid, Cart)> = None;
        for generation in 0..MAX_GENERATIONS {
            let id = guest.cart_id(generation);
            let cart = self.load_cart(id).await?;
            match cart.status() {
                None => break,
                Some(CartStatus::Open) => {
                    latest = Some((id, cart));
                    break;
                }
                Some(_) => latest = Some((id, cart)),
            }
        }
        let (guest_cart_id, guest_cart) = latest.ok_or(ApiError::NotFound { what: "cart" })?;
        let metadata = self.metadata(user_id);
        let (into, opened, closed) = match guest_cart.status() {
            Some(CartStatus::Open) => {
                let (user_cart_id, opened) = self.open_cart(&user).await?;
                // Refused before anything is written.
                self.load_cart(user_cart_id)
                    .await?
                    .handle(CartCommand::MergeGuestCart {
                        guest_cart_id,
                        lines: guest_cart.lines(),
                        at: self.clock.now(),
                    })
                    .map_err(|e| cart_error(CommandError::Rejected(e)))?;
                let closed = self
                    .carts
                    .execute_retrying(
                        &guest_cart_id.to_string(),
                        CartCommand::MarkMerged {
                            into_cart_id: user_cart_id,
                            at: self.clock.now(),
                        },
                        &metadata,
                    )
                    .await
                    .map_err(|e| match e {
                        // Merged into someone else's cart a moment ago.
                        CommandError::Rejected(CartError::AlreadyMerged { .. }) => {
                            ApiError::NotFound { what: "cart" }
                        }
                        e => cart_error(e),
                    })?;
                (user_cart_id, opened, closed.position)
            }
            // Closed already: a repeat (or a retry after a crash) when it went to one
            // of this user's carts; otherwise it names nothing this user may merge.
            Some(CartStatus::Merged) => {
                let into = guest_cart
                    .merged_into()
                    .ok_or(ApiError::NotFound { what: "cart" })?;
                if self.load_cart(into).await?.owner() != Some(&CartOwner::User { user_id }) {
                    return Err(ApiError::NotFound { what: "cart" });
                }
                (into, None, None)
            }
            _ => return Err(ApiError::NotFound { what: "cart" }),
        };
        // The guest cart is closed: its lines are final.
        let lines = self.load_cart(guest_cart_id).await?.lines();
        let mut target = (into, self.load_cart(into).await?);
        let mut opened = opened;
        if !target.1.has_merged(guest_cart_id) && target.1.status() != Some(CartStatus::Open) {
            // The user checked that cart out before the lines reached it: they go to
            // the user's open cart instead (once: that cart remembers them too).
            let (open, just_opened) = self.open_cart(&user).await?;
            opened = opened.or(just_opened);
            target = (open, self.load_cart(open).await?);
        }
        let merged = if target.1.has_merged(guest_cart_id) {
            None
        } else {
            self.carts
                .execute_retrying(
                    &target.0.to_string(),
                    CartCommand::MergeGuestCart {
                        guest_cart_id,
                        lines,
                        at: self.clock.now(),
                    },
                    &metadata,
                )
                .await
                .map_err(cart_error)?
                .position
        };
        if merged.is_none() && closed.is_none() && opened.is_none() {
            // A repeat: nothing recorded.
            return self.my_cart(&user).await;
        }
        self.read_your_writes(PROJECTION, merged.or(closed).or(opened))
            .await?;
        self.after_cart_writes(&user).await?;
        self.cart_state(target.0).await
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
