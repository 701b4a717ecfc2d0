//! The rules, their configuration and their verdict.

use chrono::Duration;
use serde::{Deserialize, Serialize};

use crate::{CountryCode, Currency, Money};

/// Orders seen in the recent windows for one subject, **not counting** the order
/// being assessed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowCounts {
    /// Orders in the last hour.
    pub last_hour: u32,
    /// Orders in the last 24 hours (the last hour included).
    pub last_day: u32,
}

/// Recent order counts per subject.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Velocity {
    /// By the customer (user or guest customer record).
    pub user: WindowCounts,
    /// By the e-mail address.
    pub email: WindowCounts,
    /// From the client's IP address, when known.
    pub ip: Option<WindowCounts>,
    /// With the card's fingerprint, when known (before the card is entered it is not).
    pub card: Option<WindowCounts>,
}

/// The customer's past orders.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CustomerHistory {
    /// How many orders they completed (paid).
    pub completed_orders: u32,
    /// The median of those orders' totals, in the assessed order's currency.
    pub median_order: Option<Money>,
}

/// Everything the rules look at, gathered by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FraudFacts {
    /// What the order charges.
    pub order_total: Money,
    /// Recent orders per subject.
    pub velocity: Velocity,
    /// Past orders.
    pub history: CustomerHistory,
    /// The billing address's country.
    pub billing_country: CountryCode,
    /// The shipping address's country.
    pub shipping_country: CountryCode,
    /// How old the account is at checkout; `None` for a guest checkout.
    pub account_age: Option<Duration>,
}

/// Whose recent orders a velocity rule counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum VelocitySubject {
    /// The customer.
    User,
    /// The e-mail address.
    Email,
    /// The IP address.
    Ip,
    /// The card fingerprint.
    Card,
}

/// Which window a velocity limit was exceeded in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum VelocityWindow {
    /// The last hour.
    Hour,
    /// The last 24 hours.
    Day,
}

/// What fired, with the numbers that made it fire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum FraudSignal {
    /// Too many orders for one subject in a window.
    Velocity {
        /// Whose orders.
        subject: VelocitySubject,
        /// Which window.
        window: VelocityWindow,
        /// Orders in the window, this one included.
        count: u32,
        /// The most allowed.
        limit: u32,
    },
    /// The order is far above what the customer usually spends.
    AmountAboveHistory {
        /// The order's total.
        amount: Money,
        /// Their median order.
        median: Money,
        /// The multiple that was exceeded, in basis points (30000 = 3x).
        multiple_bp: u32,
    },
    /// Billing and shipping countries differ.
    CountryMismatch {
        /// Billing country.
        billing: CountryCode,
        /// Shipping country.
        shipping: CountryCode,
    },
    /// A new account (or a guest) placing a high-value order.
    NewAccountHighValue {
        /// The account's age in minutes; `None` for a guest.
        account_age_minutes: Option<i64>,
        /// The order's total.
        amount: Money,
        /// The high-value amount it reached.
        threshold: Money,
    },
}

/// One reason for a score: what fired and the points it added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FraudReason {
    /// What fired.
    pub signal: FraudSignal,
    /// Points it added (its rule's weight).
    pub points: u8,
}

/// What the gate does with the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FraudDecision {
    /// Proceed to payment.
    Pass,
    /// Hold for staff review.
    Review,
}

/// The verdict on one order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FraudAssessment {
    /// 0 (safe) to 100: the sum of the reasons' points, capped.
    pub score: u8,
    /// Every rule that fired, in rule order.
    pub reasons: Vec<FraudReason>,
    /// Pass or review.
    pub decision: FraudDecision,
}

/// Why facts could not be assessed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FraudError {
    /// Amounts in different currencies (the order, its customer's median, the
    /// high-value threshold): a multi-currency shop converts before asking.
    #[error("amount in {got} where the order is in {expected}")]
    CurrencyMismatch {
        /// The order's currency.
        expected: Currency,
        /// The other amount's currency.
        got: Currency,
    },
    /// Rules that cannot work: a threshold above 100, a multiple below 1x, a zero
    /// velocity limit.
    #[error("invalid fraud rules: {0}")]
    InvalidRules(&'static str),
}

/// The most orders allowed for one subject per window (this order included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VelocityLimit {
    /// Per hour.
    pub per_hour: u32,
    /// Per 24 hours.
    pub per_day: u32,
}

/// Velocity limits per subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VelocityLimits {
    /// Per customer.
    pub user: VelocityLimit,
    /// Per e-mail.
    pub email: VelocityLimit,
    /// Per IP address (households and offices share one, so it is looser).
    pub ip: VelocityLimit,
    /// Per card.
    pub card: VelocityLimit,
}

/// The points each rule adds when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FraudWeights {
    /// A subject over its hourly limit.
    pub velocity_hour: u8,
    /// A subject over its daily limit (and not its hourly one).
    pub velocity_day: u8,
    /// The order far above the customer's median.
    pub amount_above_history: u8,
    /// Billing and shipping countries differ.
    pub country_mismatch: u8,
    /// A new account with a high-value order.
    pub new_account_high_value: u8,
}

/// The rules' configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FraudRules {
    /// Velocity limits.
    pub velocity: VelocityLimits,
    /// The multiple of the median order that is suspicious, in basis points
    /// (30000 = 3x); at least 10000.
    pub amount_multiple_bp: u32,
    /// Completed orders needed before the median is trusted.
    pub min_history_orders: u32,
    /// Accounts younger than this are new.
    pub new_account_age: Duration,
    /// Orders at or above this are high-value.
    pub high_value: Money,
    /// Whether a guest checkout counts as a new account.
    pub guest_is_new_account: bool,
    /// Points per rule.
    pub weights: FraudWeights,
    /// Scores at or above this are held for review (0 to 100).
    pub review_threshold: u8,
}

impl FraudRules {
    /// The default rules, with `high_value` as the new-account high-value amount:
    /// 3 orders/hour and 10/day per user, e-mail and card, 5 and 20 per IP; 3x the
    /// median once there are 3 orders; accounts under 24 h are new; review from 50.
    #[must_use]
    pub fn with_defaults(high_value: Money) -> Self {
        let strict = VelocityLimit {
            per_hour: 3,
            per_day: 10,
        };
        Self {
            velocity: VelocityLimits {
                user: strict,
                email: strict,
                ip: VelocityLimit {
                    per_hour: 5,
                    per_day: 20,
                },
                card: strict,
            },
            amount_multiple_bp: 30_000,
            min_history_orders: 3,
            new_account_age: Duration::hours(24),
            high_value,
            guest_is_new_account: true,
            weights: FraudWeights {
                velocity_hour: 35,
                velocity_day: 20,
                amount_above_history: 30,
                country_mismatch: 20,
                new_account_high_value: 30,
            },
            review_threshold: 50,
        }
    }

    fn validate(&self) -> Result<(), FraudError> {
        if self.review_threshold > 100 {
            return Err(FraudError::InvalidRules("review threshold above 100"));
        }
        if self.amount_multiple_bp < 10_000 {
            return Err(FraudError::InvalidRules("amount multiple below 1x"));
        }
        let v = &self.velocity;
        if [v.user, v.email, v.ip, v.card]
            .iter()
            .any(|l| l.per_hour == 0 || l.per_day == 0)
        {
            return Err(FraudError::InvalidRules("velocity limit of zero"));
        }
        Ok(())
    }

    fn velocity_signal(
        &self,
        subject: VelocitySubject,
        counts: WindowCounts,
        limit: VelocityLimit,
    ) -> Option<FraudReason> {
        // The counts exclude this order; the limits include it.
        let hour = counts.last_hour.saturating_add(1);
        let day = counts.last_day.max(counts.last_hour).saturating_add(1);
        let (window, count, limit, points) = if hour > limit.per_hour {
            (
                VelocityWindow::Hour,
                hour,
                limit.per_hour,
                self.weights.velocity_hour,
            )
        } else if day > limit.per_day {
            (
                VelocityWindow::Day,
                day,
                limit.per_day,
                self.weights.velocity_day,
            )
        } else {
            return None;
        };
        Some(FraudReason {
            signal: FraudSignal::Velocity {
                subject,
                window,
                count,
                limit,
            },
            points,
        })
    }

    /// Scores an order.
    ///
    /// # Errors
    /// [`FraudError::CurrencyMismatch`] when the median or the high-value amount is in
    /// another currency than the order; [`FraudError::InvalidRules`].
    pub fn assess(&self, facts: &FraudFacts) -> Result<FraudAssessment, FraudError> {
        self.validate()?;
        let amount = facts.order_total;
        let currency = amount.currency();
        let same = |other: Money| {
            if other.currency() == currency {
                Ok(())
            } else {
                Err(FraudError::CurrencyMismatch {
                    expected: currency,
                    got: other.currency(),
                })
            }
        };
        same(self.high_value)?;
        if let Some(median) = facts.history.median_order {
            same(median)?;
        }

        let mut reasons = Vec::new();
        let v = &facts.velocity;
        let l = &self.velocity;
        let subjects = [
            (VelocitySubject::User, Some(v.user), l.user),
            (VelocitySubject::Email, Some(v.email), l.email),
            (VelocitySubject::Ip, v.ip, l.ip),
            (VelocitySubject::Card, v.card, l.card),
        ];
        for (subject, counts, limit) in subjects {
            if let Some(counts) = counts {
                reasons.extend(self.velocity_signal(subject, counts, limit));
            }
        }

        if let Some(median) = facts.history.median_order
            && facts.history.completed_orders >= self.min_history_orders
            && median.amount_minor() > 0
            && i128::from(amount.amount_minor()) * 10_000
                > i128::from(median.amount_minor()) * i128::from(self.amount_multiple_bp)
        {
            reasons.push(FraudReason {
                signal: FraudSignal::AmountAboveHistory {
                    amount,
                    median,
                    multiple_bp: self.amount_multiple_bp,
                },
                points: self.weights.amount_above_history,
            });
        }

        if facts.billing_country != facts.shipping_country {
            reasons.push(FraudReason {
                signal: FraudSignal::CountryMismatch {
                    billing: facts.billing_country.clone(),
                    shipping: facts.shipping_country.clone(),
                },
                points: self.weights.country_mismatch,
            });
        }

        let new_account = match facts.account_age {
            Some(age) => age < self.new_account_age,
            None => self.guest_is_new_account,
        };
        if new_account && amount.amount_minor() >= self.high_value.amount_minor() {
            reasons.push(FraudReason {
                signal: FraudSignal::NewAccountHighValue {
                    account_age_minutes: facts.account_age.map(|a| a.num_minutes()),
                    amount,
                    threshold: self.high_value,
                },
                points: self.weights.new_account_high_value,
            });
        }

        let total: u32 = reasons.iter().map(|r| u32::from(r.points)).sum();
        let score = u8::try_from(total.min(100)).unwrap_or(100);
        let decision = if score >= self.review_threshold {
            FraudDecision::Review
        } else {
            FraudDecision::Pass
        };
        Ok(FraudAssessment {
            score,
            reasons,
            decision,
        })
    }
}

/// Anything that scores orders: these rules now, a trained model later.
pub trait FraudScorer: Send + Sync {
    /// Scores an order.
    ///
    /// # Errors
    /// When the facts cannot be assessed.
    fn assess(&self, facts: &FraudFacts) -> Result<FraudAssessment, FraudError>;
}

impl FraudScorer for FraudRules {
    fn assess(&self, facts: &FraudFacts) -> Result<FraudAssessment, FraudError> {
        Self::assess(self, facts)
    }
}
