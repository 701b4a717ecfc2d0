//! The wishlist aggregate: the products one user wants to remember.
//!
//! **Identity.** The aggregate id is the owner's user id (a UUID). Events do not repeat
//! it: every consumer receives the aggregate id with the event.
//!
//! **Rules enforced here.**
//! - A product is on a wishlist at most once. Adding it again is refused with
//!   [`WishlistError::AlreadyInWishlist`] rather than silently ignored, so the client
//!   learns the state it is in; the command layer may map that error to success for an
//!   idempotent "add" button. Likewise removing an absent product
//!   ([`WishlistError::NotInWishlist`]) and clearing an empty wishlist
//!   ([`WishlistError::AlreadyEmpty`]) are refused.
//! - At most [`Wishlist::MAX_ITEMS`] products.
//! - Order of addition is kept.
//!
//! **What the domain cannot enforce alone.** That the product exists (and is
//! published) is checked by the command layer against the catalog read model; a
//! product archived later stays on wishlists, and read models hide or flag it.

mod aggregate;
mod command;
mod error;
mod event;

#[cfg(test)]
mod tests;

pub use aggregate::{Wishlist, WishlistItem};
pub use command::WishlistCommand;
pub use error::WishlistError;
pub use event::WishlistEvent;
