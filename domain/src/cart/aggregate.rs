//! The cart aggregate: decisions over one cart's lines.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::command::CartCommand;
use super::error::CartError;
use super::event::CartEvent;
use super::values::{CartLine, CartOwner, CartStatus, CheckedOutLine};
use crate::{Aggregate, Currency, Money, Quantity, Sku};

/// One shopping cart. `Default` is the state before it is opened.
#[derive(Default, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Cart {
    /// `None` until `CartOpened`.
    state: Option<OpenedCart>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct OpenedCart {
    id: Uuid,
    owner: CartOwner,
    currency: Currency,
    /// One entry per SKU, so a SKU can never appear on two lines.
    lines: BTreeMap<Sku, Line>,
    status: CartStatus,
    /// Set once a guest cart is marked merged.
    merged_into: Option<Uuid>,
    /// Guest carts already merged into this one, so a retried merge adds nothing.
    merged_guest_carts: BTreeSet<Uuid>,
    opened_at: DateTime<Utc>,
    /// When an event last changed the cart. Absent from older snapshots.
    #[serde(default)]
    updated_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Line {
    product_id: Uuid,
    quantity: Quantity,
    /// Where the line stands in the order lines were added: a new SKU goes last, a
    /// SKU already in the cart keeps its place (as the `carts` read model orders
    /// them). Absent from older snapshots: 0, so their lines keep SKU order among
    /// themselves and every later line comes after them.
    #[serde(default)]
    added: u64,
}

impl Cart {
    /// The most distinct SKUs one cart holds.
    pub const MAX_LINES: usize = 100;

    /// The cart id, once opened.
    #[must_use]
    pub fn id(&self) -> Option<Uuid> {
        self.state.as_ref().map(|s| s.id)
    }

    /// Whose cart.
    #[must_use]
    pub fn owner(&self) -> Option<&CartOwner> {
        self.state.as_ref().map(|s| &s.owner)
    }

    /// The checkout currency.
    #[must_use]
    pub fn currency(&self) -> Option<Currency> {
        self.state.as_ref().map(|s| s.currency)
    }

    /// Where the cart is in its life; `None` before it is opened.
    #[must_use]
    pub fn status(&self) -> Option<CartStatus> {
        self.state.as_ref().map(|s| s.status)
    }

    /// When it was opened.
    #[must_use]
    pub fn opened_at(&self) -> Option<DateTime<Utc>> {
        self.state.as_ref().map(|s| s.opened_at)
    }

    /// The user cart a merged guest cart's lines went to.
    #[must_use]
    pub fn merged_into(&self) -> Option<Uuid> {
        self.state.as_ref().and_then(|s| s.merged_into)
    }

    /// Whether this (user) cart has received the lines of the guest cart
    /// `guest_cart_id`.
    #[must_use]
    pub fn has_merged(&self, guest_cart_id: Uuid) -> bool {
        self.state
            .as_ref()
            .is_some_and(|c| c.merged_guest_carts.contains(&guest_cart_id))
    }

    /// The lines, in SKU order.
    #[must_use]
    pub fn lines(&self) -> Vec<CartLine> {
        self.state
            .iter()
            .flat_map(|s| s.lines.iter())
            .map(|(sku, line)| line.to_cart_line(sku))
            .collect()
    }

    /// The lines in the order they were added (a SKU added again keeps its place),
    /// as the `carts` read model and the API list them.
    #[must_use]
    pub fn lines_as_added(&self) -> Vec<CartLine> {
        let mut lines: Vec<(u64, CartLine)> = self
            .state
            .iter()
            .flat_map(|s| s.lines.iter())
            .map(|(sku, line)| (line.added, line.to_cart_line(sku)))
            .collect();
        // Stable: equal ordinals (lines from before ordinals) stay in SKU order.
        lines.sort_by_key(|(added, _)| *added);
        lines.into_iter().map(|(_, line)| line).collect()
    }

    /// When an event last changed the cart (its opening, a line change, its
    /// closing); `None` before it is opened.
    #[must_use]
    pub fn updated_at(&self) -> Option<DateTime<Utc>> {
        self.state
            .as_ref()
            .map(|s| s.updated_at.unwrap_or(s.opened_at))
    }

    /// One line.
    #[must_use]
    pub fn line(&self, sku: &Sku) -> Option<CartLine> {
        self.state
            .as_ref()
            .and_then(|s| s.lines.get(sku))
            .map(|line| line.to_cart_line(sku))
    }
}

impl Line {
    fn to_cart_line(&self, sku: &Sku) -> CartLine {
        CartLine {
            sku: sku.clone(),
            product_id: self.product_id,
            quantity: self.quantity,
        }
    }
}

impl Aggregate for Cart {
    const TYPE: &'static str = "cart";
    type Command = CartCommand;
    type Event = CartEvent;
    type Error = CartError;

    fn handle(&self, command: CartCommand) -> Result<Vec<CartEvent>, CartError> {
        match (&self.state, command) {
            (
                None,
                CartCommand::OpenCart {
                    cart_id,
                    owner,
                    currency,
                    at,
                },
            ) => Ok(vec![CartEvent::CartOpened {
                cart_id,
                owner,
                currency,
                opened_at: at,
            }]),
            (Some(_), CartCommand::OpenCart { .. }) => Err(CartError::AlreadyOpened),
            (None, _) => Err(CartError::NotOpened),
            (Some(cart), command) => cart.decide(command),
        }
    }

    fn apply(&mut self, event: &CartEvent) {
        if let CartEvent::CartOpened {
            cart_id,
            owner,
            currency,
            opened_at,
        } = event
        {
            self.state = Some(OpenedCart {
                id: *cart_id,
                owner: owner.clone(),
                currency: *currency,
                lines: BTreeMap::new(),
                status: CartStatus::Open,
                merged_into: None,
                merged_guest_carts: BTreeSet::new(),
                opened_at: *opened_at,
                updated_at: Some(*opened_at),
            });
        } else if let Some(cart) = &mut self.state {
            cart.evolve(event);
        }
        // Any other event before `CartOpened` cannot have been emitted by `handle`;
        // an event is a fact, so it is ignored rather than failed on.
    }
}

impl OpenedCart {
    /// Decides a command for an opened cart.
    fn decide(&self, command: CartCommand) -> Result<Vec<CartEvent>, CartError> {
        use CartCommand as C;
        use CartEvent as E;
        match self.status {
            CartStatus::Open => {}
            CartStatus::CheckedOut => return Err(CartError::AlreadyCheckedOut),
            CartStatus::Merged => {
                let into_cart_id = self.merged_into.unwrap_or_default();
                // Marking it merged into the same cart again is a harmless retry.
                return match command {
                    C::MarkMerged {
                        into_cart_id: again,
                        ..
                    } if again == into_cart_id => Ok(vec![]),
                    _ => Err(CartError::AlreadyMerged { into_cart_id }),
                };
            }
        }
        match command {
            C::OpenCart { .. } => Err(CartError::AlreadyOpened),
            C::AddItem {
                sku,
                product_id,
                quantity,
                at,
            } => {
                let line_quantity = match self.lines.get(&sku) {
                    Some(line) => {
                        if line.product_id != product_id {
                            return Err(CartError::SkuProductMismatch { sku });
                        }
                        let sum = i64::from(line.quantity.get()) + i64::from(quantity.get());
                        match Quantity::new(sum) {
                            Ok(total) => total,
                            Err(_) => {
                                return Err(CartError::QuantityLimitExceeded {
                                    sku,
                                    max: Quantity::MAX,
                                });
                            }
                        }
                    }
                    None => {
                        if self.lines.len() >= Cart::MAX_LINES {
                            return Err(CartError::TooManyLines {
                                max: Cart::MAX_LINES,
                            });
                        }
                        quantity
                    }
                };
                Ok(vec![E::ItemAddedToCart {
                    sku,
                    product_id,
                    quantity,
                    line_quantity,
                    added_at: at,
                }])
            }
            C::ChangeItemQuantity { sku, quantity, at } => {
                let line = self.existing_line(&sku)?;
                if line.quantity == quantity {
                    return Ok(vec![]);
                }
                Ok(vec![E::ItemQuantityChanged {
                    product_id: line.product_id,
                    previous_quantity: line.quantity,
                    sku,
                    quantity,
                    changed_at: at,
                }])
            }
            C::RemoveItem { sku, at } => {
                let line = self.existing_line(&sku)?;
                Ok(vec![E::ItemRemovedFromCart {
                    product_id: line.product_id,
                    sku,
                    removed_at: at,
                }])
            }
            C::ClearCart { at } => {
                if self.lines.is_empty() {
                    return Ok(vec![]);
                }
                Ok(vec![E::CartCleared { cleared_at: at }])
            }
            C::MergeGuestCart {
                guest_cart_id,
                lines,
                at,
            } => self.merge(guest_cart_id, lines, at),
            C::MarkMerged { into_cart_id, at } => {
                if !matches!(self.owner, CartOwner::Guest { .. }) {
                    return Err(CartError::NotAGuestCart);
                }
                if into_cart_id == self.id {
                    return Err(CartError::CannotMergeIntoItself);
                }
                Ok(vec![E::CartMergedInto {
                    into_cart_id,
                    merged_at: at,
                }])
            }
            C::CheckOut { prices, at } => self.check_out(&prices, at),
        }
    }

    fn existing_line(&self, sku: &Sku) -> Result<&Line, CartError> {
        self.lines
            .get(sku)
            .ok_or_else(|| CartError::ItemNotInCart { sku: sku.clone() })
    }

    fn merge(
        &self,
        guest_cart_id: Uuid,
        guest_lines: Vec<CartLine>,
        at: DateTime<Utc>,
    ) -> Result<Vec<CartEvent>, CartError> {
        if !matches!(self.owner, CartOwner::User { .. }) {
            return Err(CartError::NotAUserCart);
        }
        if guest_cart_id == self.id {
            return Err(CartError::CannotMergeIntoItself);
        }
        if self.merged_guest_carts.contains(&guest_cart_id) {
            return Ok(vec![]);
        }
        // Sum per SKU in u64 (no overflow for any number of lines), starting from this
        // cart's lines, then cap at the quantity bound.
        let mut merged: BTreeMap<Sku, (Uuid, u64)> = BTreeMap::new();
        for CartLine {
            sku,
            product_id,
            quantity,
        } in guest_lines
        {
            let existing_product = self
                .lines
                .get(&sku)
                .map(|line| line.product_id)
                .or_else(|| merged.get(&sku).map(|(product, _)| *product));
            if existing_product.is_some_and(|product| product != product_id) {
                return Err(CartError::SkuProductMismatch { sku });
            }
            let base = self
                .lines
                .get(&sku)
                .map_or(0, |line| u64::from(line.quantity.get()));
            let entry = merged.entry(sku).or_insert((product_id, base));
            entry.1 += u64::from(quantity.get());
        }
        let new_lines = merged
            .keys()
            .filter(|sku| !self.lines.contains_key(*sku))
            .count();
        if self.lines.len() + new_lines > Cart::MAX_LINES {
            return Err(CartError::TooManyLines {
                max: Cart::MAX_LINES,
            });
        }
        let lines = merged
            .into_iter()
            .map(|(sku, (product_id, total))| CartLine {
                sku,
                product_id,
                quantity: capped_quantity(total),
            })
            .collect();
        Ok(vec![CartEvent::GuestCartMerged {
            guest_cart_id,
            lines,
            merged_at: at,
        }])
    }

    fn check_out(
        &self,
        prices: &BTreeMap<Sku, Money>,
        at: DateTime<Utc>,
    ) -> Result<Vec<CartEvent>, CartError> {
        if self.lines.is_empty() {
            return Err(CartError::EmptyCart);
        }
        let mut lines = Vec::with_capacity(self.lines.len());
        for (sku, line) in &self.lines {
            let unit_price = *prices
                .get(sku)
                .ok_or_else(|| CartError::MissingPrice { sku: sku.clone() })?;
            if unit_price.currency() != self.currency {
                return Err(CartError::PriceCurrencyMismatch {
                    sku: sku.clone(),
                    expected: self.currency,
                    found: unit_price.currency(),
                });
            }
            if unit_price.is_negative() {
                return Err(CartError::NegativePrice { sku: sku.clone() });
            }
            // The currency is checked above, so overflow is the only possible failure.
            let line_total = unit_price
                .checked_mul(i64::from(line.quantity.get()))
                .map_err(|_| CartError::TotalOverflow)?;
            lines.push(CheckedOutLine {
                sku: sku.clone(),
                product_id: line.product_id,
                quantity: line.quantity,
                unit_price,
                line_total,
            });
        }
        let subtotal = Money::sum(self.currency, lines.iter().map(|l| l.line_total))
            .map_err(|_| CartError::TotalOverflow)?;
        Ok(vec![CartEvent::CartCheckedOut {
            owner: self.owner.clone(),
            lines,
            subtotal,
            currency: self.currency,
            checked_out_at: at,
        }])
    }

    /// Folds every event but `CartOpened` into the cart.
    fn evolve(&mut self, event: &CartEvent) {
        match event {
            // Opening is folded by `Cart::apply`; a second one cannot be emitted.
            CartEvent::CartOpened { .. } => {}
            CartEvent::ItemAddedToCart {
                sku,
                product_id,
                line_quantity,
                added_at,
                ..
            } => {
                self.set_line(sku, *product_id, *line_quantity);
                self.updated_at = Some(*added_at);
            }
            CartEvent::ItemQuantityChanged {
                sku,
                quantity,
                changed_at,
                ..
            } => {
                if let Some(line) = self.lines.get_mut(sku) {
                    line.quantity = *quantity;
                }
                self.updated_at = Some(*changed_at);
            }
            CartEvent::ItemRemovedFromCart {
                sku, removed_at, ..
            } => {
                self.lines.remove(sku);
                self.updated_at = Some(*removed_at);
            }
            CartEvent::CartCleared { cleared_at } => {
                self.lines.clear();
                self.updated_at = Some(*cleared_at);
            }
            CartEvent::GuestCartMerged {
                guest_cart_id,
                lines,
                merged_at,
            } => {
                for line in lines {
                    self.set_line(&line.sku, line.product_id, line.quantity);
                }
                self.merged_guest_carts.insert(*guest_cart_id);
                self.updated_at = Some(*merged_at);
            }
            CartEvent::CartMergedInto {
                into_cart_id,
                merged_at,
            } => {
                self.status = CartStatus::Merged;
                self.merged_into = Some(*into_cart_id);
                self.updated_at = Some(*merged_at);
            }
            CartEvent::CartCheckedOut { checked_out_at, .. } => {
                self.status = CartStatus::CheckedOut;
                self.updated_at = Some(*checked_out_at);
            }
        }
    }

    /// Sets a line's quantity (and product); a new SKU goes after every line the
    /// cart holds (at most [`Cart::MAX_LINES`] to look at).
    fn set_line(&mut self, sku: &Sku, product_id: Uuid, quantity: Quantity) {
        if let Some(line) = self.lines.get_mut(sku) {
            line.product_id = product_id;
            line.quantity = quantity;
            return;
        }
        let added = self.lines.values().map(|l| l.added + 1).max().unwrap_or(0);
        self.lines.insert(
            sku.clone(),
            Line {
                product_id,
                quantity,
                added,
            },
        );
    }
}

/// A summed quantity, capped at [`Quantity::MAX`].
fn capped_quantity(total: u64) -> Quantity {
    let capped = total.clamp(1, u64::from(Quantity::MAX));
    // Every sum has at least one positive term and is capped, so `capped` is in
    // `1..=Quantity::MAX` and neither conversion can fail.
    match i64::try_from(capped).map(Quantity::new) {
        Ok(Ok(quantity)) => quantity,
        _ => unreachable!("{capped} is within 1..=Quantity::MAX"),
    }
}
