//! Fraud rules: a deterministic scorer over facts the caller gathered.
//!
//! The checkout's fraud gate collects [`FraudFacts`] (recent order counts per user,
//! e-mail, IP address and card fingerprint; the customer's order history; the billing
//! and shipping countries; the account's age) and asks [`FraudRules::assess`] for a
//! [`FraudAssessment`]: a score from 0 (safe) to 100, the reasons behind it, and a
//! decision, [`FraudDecision::Review`] at or above the configured threshold (the order
//! is then held for staff: `OrderCommand::HoldForReview`), else
//! [`FraudDecision::Pass`] (`OrderCommand::PassFraudCheck`).
//!
//! The rules, each adding its configured weight when it fires:
//! - **velocity**: per subject (user, e-mail, IP, card fingerprint), this order would
//!   be more than the allowed number in the last hour (or, failing that, the last day);
//! - **amount against history**: the order exceeds a multiple (3x by default) of the
//!   customer's median order, once they have enough orders for a median to mean
//!   something;
//! - **country mismatch**: billing and shipping countries differ;
//! - **new account, high value**: an account younger than 24 h (guests count as new by
//!   default) places an order at or above a high-value amount.
//!
//! The score is the sum of the weights, capped at 100; reasons are listed in the
//! order above. Everything is pure: the same facts and rules give the same answer.
//! A model-based scorer arrives later behind the same [`FraudScorer`] trait.

mod rules;

#[cfg(test)]
mod tests;

pub use rules::{
    CustomerHistory, FraudAssessment, FraudDecision, FraudError, FraudFacts, FraudReason,
    FraudRules, FraudScorer, FraudSignal, FraudWeights, Velocity, VelocityLimit, VelocityLimits,
    VelocitySubject, VelocityWindow, WindowCounts,
};
