//! Given/when/then for every wishlist command.

use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;

use super::*;
use crate::testing::{given, given_no_history};
use crate::{Aggregate, DomainEvent};

use WishlistCommand as C;
use WishlistEvent as E;

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + seconds, 0).unwrap()
}

fn product(n: u128) -> Uuid {
    Uuid::from_u128(0x3000 + n)
}

fn added(n: u128) -> WishlistEvent {
    E::ProductAddedToWishlist {
        product_id: product(n),
        at: at(0),
    }
}

fn add(n: u128) -> WishlistCommand {
    C::AddToWishlist {
        product_id: product(n),
        at: at(0),
    }
}

#[test]
fn add_a_product() {
    let (events, wishlist) = given_no_history::<Wishlist>().when(add(1)).then_state();
    assert_eq!(events, vec![added(1)]);
    assert!(wishlist.contains(product(1)));
    assert_eq!(
        wishlist.items(),
        &[WishlistItem {
            product_id: product(1),
            added_at: at(0)
        }]
    );
}

#[test]
fn adding_a_product_twice_is_refused() {
    let err = given::<Wishlist>([added(1)])
        .when(add(1))
        .then_expect_error();
    assert_eq!(err, WishlistError::AlreadyInWishlist(product(1)));
}

#[test]
fn a_full_wishlist_refuses_more() {
    let full: Vec<_> = (0..Wishlist::MAX_ITEMS as u128).map(added).collect();
    let err = given::<Wishlist>(full).when(add(9_999)).then_expect_error();
    assert_eq!(err, WishlistError::WishlistFull { max: 500 });
}

#[test]
fn remove_a_product() {
    let (events, wishlist) = given::<Wishlist>([added(1), added(2)])
        .when(C::RemoveFromWishlist {
            product_id: product(1),
            at: at(1),
        })
        .then_state();
    assert_eq!(
        events,
        vec![E::ProductRemovedFromWishlist {
            product_id: product(1),
            at: at(1)
        }]
    );
    let ids: Vec<Uuid> = wishlist.items().iter().map(|i| i.product_id).collect();
    assert_eq!(ids, vec![product(2)]);
}

#[test]
fn removing_an_absent_product_is_refused() {
    let err = given::<Wishlist>([added(1)])
        .when(C::RemoveFromWishlist {
            product_id: product(2),
            at: at(1),
        })
        .then_expect_error();
    assert_eq!(err, WishlistError::NotInWishlist(product(2)));
}

#[test]
fn clear_lists_what_was_removed() {
    let (events, wishlist) = given::<Wishlist>([added(2), added(1)])
        .when(C::ClearWishlist { at: at(2) })
        .then_state();
    assert_eq!(
        events,
        vec![E::WishlistCleared {
            product_ids: vec![product(2), product(1)],
            at: at(2)
        }]
    );
    assert!(wishlist.items().is_empty());
}

#[test]
fn clearing_an_empty_wishlist_is_refused() {
    let err = given_no_history::<Wishlist>()
        .when(C::ClearWishlist { at: at(2) })
        .then_expect_error();
    assert_eq!(err, WishlistError::AlreadyEmpty);
}

#[test]
fn events_have_stable_names_and_the_state_round_trips() {
    let wishlist = Wishlist::from_events(&[added(1), added(2)]);
    let back: Wishlist = serde_json::from_str(&serde_json::to_string(&wishlist).unwrap()).unwrap();
    assert_eq!(back.items(), wishlist.items());
    let e = added(1);
    assert_eq!(e.event_type(), "ProductAddedToWishlist");
    assert_eq!(e.event_version(), "1.0");
    assert!(
        serde_json::to_value(&e)
            .unwrap()
            .get("ProductAddedToWishlist")
            .is_some()
    );
    assert_eq!(Wishlist::TYPE, "wishlist");
}
