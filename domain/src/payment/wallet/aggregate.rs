//! The wallet state and its decisions.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::card::{CardBrand, CardExpiry, Last4};
use super::command::WalletCommand;
use super::error::WalletError;
use super::event::WalletEvent;
use crate::aggregate::Aggregate;

/// A user's saved payment methods.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Wallet {
    methods: BTreeMap<Uuid, SavedPaymentMethod>,
    default_method: Option<Uuid>,
}

/// A saved card, as much of it as may be kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedPaymentMethod {
    brand: CardBrand,
    last4: Last4,
    expiry: CardExpiry,
}

impl SavedPaymentMethod {
    /// The network.
    #[must_use]
    pub fn brand(&self) -> CardBrand {
        self.brand
    }
    /// Last four digits.
    #[must_use]
    pub fn last4(&self) -> Last4 {
        self.last4
    }
    /// Expiry.
    #[must_use]
    pub fn expiry(&self) -> CardExpiry {
        self.expiry
    }
}

impl Wallet {
    /// How many methods one wallet may hold.
    pub const MAX_METHODS: usize = 20;

    /// The saved methods, by id.
    pub fn methods(&self) -> impl Iterator<Item = (&Uuid, &SavedPaymentMethod)> {
        self.methods.iter()
    }
    /// One saved method.
    #[must_use]
    pub fn method(&self, payment_method_id: Uuid) -> Option<&SavedPaymentMethod> {
        self.methods.get(&payment_method_id)
    }
    /// The default method, if any.
    #[must_use]
    pub fn default_method(&self) -> Option<Uuid> {
        self.default_method
    }

    fn not_expired(expiry: CardExpiry, at: DateTime<Utc>) -> Result<(), WalletError> {
        if expiry.is_expired_at(at) {
            Err(WalletError::CardExpired {
                month: expiry.month(),
                year: expiry.year(),
            })
        } else {
            Ok(())
        }
    }

    fn find(&self, payment_method_id: Uuid) -> Result<&SavedPaymentMethod, WalletError> {
        self.methods
            .get(&payment_method_id)
            .ok_or(WalletError::PaymentMethodNotFound { payment_method_id })
    }

    fn add(
        &self,
        payment_method_id: Uuid,
        method: SavedPaymentMethod,
        make_default: bool,
        at: DateTime<Utc>,
    ) -> Result<Vec<WalletEvent>, WalletError> {
        if let Some(existing) = self.methods.get(&payment_method_id) {
            return if *existing == method {
                Ok(Vec::new())
            } else {
                Err(WalletError::PaymentMethodConflict { payment_method_id })
            };
        }
        Self::not_expired(method.expiry, at)?;
        if self.methods.len() >= Self::MAX_METHODS {
            return Err(WalletError::TooManyPaymentMethods {
                max: Self::MAX_METHODS,
            });
        }
        let mut events = vec![WalletEvent::PaymentMethodAdded {
            payment_method_id,
            brand: method.brand,
            last4: method.last4,
            expiry: method.expiry,
            at,
        }];
        if make_default || self.default_method.is_none() {
            events.push(WalletEvent::DefaultPaymentMethodSet {
                payment_method_id,
                at,
            });
        }
        Ok(events)
    }
}

impl Aggregate for Wallet {
    const TYPE: &'static str = "wallet";
    type Command = WalletCommand;
    type Event = WalletEvent;
    type Error = WalletError;

    fn handle(&self, command: WalletCommand) -> Result<Vec<WalletEvent>, WalletError> {
        match command {
            WalletCommand::AddPaymentMethod {
                payment_method_id,
                brand,
                last4,
                expiry,
                make_default,
                at,
            } => self.add(
                payment_method_id,
                SavedPaymentMethod {
                    brand,
                    last4,
                    expiry,
                },
                make_default,
                at,
            ),
            WalletCommand::RemovePaymentMethod {
                payment_method_id,
                at,
            } => {
                self.find(payment_method_id)?;
                Ok(vec![WalletEvent::PaymentMethodRemoved {
                    payment_method_id,
                    was_default: self.default_method == Some(payment_method_id),
                    at,
                }])
            }
            WalletCommand::SetDefaultPaymentMethod {
                payment_method_id,
                at,
            } => {
                let method = self.find(payment_method_id)?;
                if self.default_method == Some(payment_method_id) {
                    return Ok(Vec::new());
                }
                Self::not_expired(method.expiry, at)?;
                Ok(vec![WalletEvent::DefaultPaymentMethodSet {
                    payment_method_id,
                    at,
                }])
            }
        }
    }

    fn apply(&mut self, event: &WalletEvent) {
        match event {
            WalletEvent::PaymentMethodAdded {
                payment_method_id,
                brand,
                last4,
                expiry,
                ..
            } => {
                self.methods.insert(
                    *payment_method_id,
                    SavedPaymentMethod {
                        brand: *brand,
                        last4: *last4,
                        expiry: *expiry,
                    },
                );
            }
            WalletEvent::DefaultPaymentMethodSet {
                payment_method_id, ..
            } => self.default_method = Some(*payment_method_id),
            WalletEvent::PaymentMethodRemoved {
                payment_method_id, ..
            } => {
                self.methods.remove(payment_method_id);
                if self.default_method == Some(*payment_method_id) {
                    self.default_method = None;
                }
            }
        }
    }
}
