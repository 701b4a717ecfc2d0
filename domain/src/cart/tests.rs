//! Given/when/then for every cart command, and proptest invariants.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use uuid::Uuid;

use super::*;
use crate::testing::{given, given_no_history};
use crate::{Currency, DomainEvent, Money, Quantity, Sku};

fn t(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_750_000_000 + seconds, 0).expect("valid timestamp")
}

fn cart_id() -> Uuid {
    Uuid::from_u128(0xCA27)
}

fn guest_cart_id() -> Uuid {
    Uuid::from_u128(0x6E57)
}

fn user_owner() -> CartOwner {
    CartOwner::User {
        user_id: Uuid::from_u128(0xA11CE),
    }
}

fn guest_owner() -> CartOwner {
    CartOwner::Guest {
        guest_key: GuestKey::parse("gk_0123456789abcdef").unwrap(),
    }
}

fn sku(s: &str) -> Sku {
    Sku::parse(s).unwrap()
}

/// Each SKU's product id in the catalog these tests pretend to have.
fn product(s: &str) -> Uuid {
    let normalised = sku(s);
    let hash = normalised
        .as_str()
        .bytes()
        .fold(0x9000_u128, |acc, b| acc.wrapping_mul(31) + u128::from(b));
    Uuid::from_u128(hash)
}

fn qty(n: i64) -> Quantity {
    Quantity::new(n).unwrap()
}

fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::EUR)
}

fn opened(owner: CartOwner) -> CartEvent {
    CartEvent::CartOpened {
        cart_id: cart_id(),
        owner,
        currency: Currency::EUR,
        opened_at: t(0),
    }
}

fn added(s: &str, n: i64, line: i64) -> CartEvent {
    CartEvent::ItemAddedToCart {
        sku: sku(s),
        product_id: product(s),
        quantity: qty(n),
        line_quantity: qty(line),
        added_at: t(1),
    }
}

fn add(s: &str, n: i64) -> CartCommand {
    CartCommand::AddItem {
        sku: sku(s),
        product_id: product(s),
        quantity: qty(n),
        at: t(1),
    }
}

fn line(s: &str, n: i64) -> CartLine {
    CartLine {
        sku: sku(s),
        product_id: product(s),
        quantity: qty(n),
    }
}

fn merge(lines: Vec<CartLine>) -> CartCommand {
    CartCommand::MergeGuestCart {
        guest_cart_id: guest_cart_id(),
        lines,
        at: t(5),
    }
}

fn prices(entries: &[(&str, Money)]) -> BTreeMap<Sku, Money> {
    entries.iter().map(|(s, m)| (sku(s), *m)).collect()
}

fn check_out(entries: &[(&str, Money)]) -> CartCommand {
    CartCommand::CheckOut {
        prices: prices(entries),
        at: t(9),
    }
}

/// One of every command but `OpenCart`, each valid against an open user cart holding
/// `TEE`.
fn every_other_command() -> Vec<CartCommand> {
    vec![
        add("MUG", 1),
        CartCommand::ChangeItemQuantity {
            sku: sku("TEE"),
            quantity: qty(3),
            at: t(2),
        },
        CartCommand::RemoveItem {
            sku: sku("TEE"),
            at: t(2),
        },
        CartCommand::ClearCart { at: t(2) },
        merge(vec![line("MUG", 1)]),
        CartCommand::MarkMerged {
            into_cart_id: Uuid::from_u128(0xF00),
            at: t(2),
        },
        check_out(&[("TEE", eur(1_000))]),
    ]
}

// --- opening ---

#[test]
fn open_cart_is_accepted_for_users_and_guests() {
    for owner in [user_owner(), guest_owner()] {
        given_no_history::<Cart>()
            .when(CartCommand::OpenCart {
                cart_id: cart_id(),
                owner: owner.clone(),
                currency: Currency::EUR,
                at: t(0),
            })
            .then_expect_events([opened(owner.clone())]);
        let (_, cart) = given_no_history::<Cart>()
            .when(CartCommand::OpenCart {
                cart_id: cart_id(),
                owner: owner.clone(),
                currency: Currency::EUR,
                at: t(0),
            })
            .then_state();
        assert_eq!(cart.id(), Some(cart_id()));
        assert_eq!(cart.owner(), Some(&owner));
        assert_eq!(cart.currency(), Some(Currency::EUR));
        assert_eq!(cart.status(), Some(CartStatus::Open));
        assert_eq!(cart.opened_at(), Some(t(0)));
        assert!(cart.lines().is_empty());
    }
}

#[test]
fn opening_twice_is_refused() {
    let err = given::<Cart>([opened(user_owner())])
        .when(CartCommand::OpenCart {
            cart_id: cart_id(),
            owner: user_owner(),
            currency: Currency::EUR,
            at: t(1),
        })
        .then_expect_error();
    assert_eq!(err, CartError::AlreadyOpened);
}

#[test]
fn every_command_before_opening_is_refused() {
    for command in every_other_command() {
        let err = given_no_history::<Cart>()
            .when(command.clone())
            .then_expect_error();
        assert_eq!(err, CartError::NotOpened, "{command:?}");
    }
}

// --- adding ---

#[test]
fn add_item_opens_a_line() {
    given::<Cart>([opened(user_owner())])
        .when(add("TEE", 2))
        .then_expect_events([added("TEE", 2, 2)]);
}

#[test]
fn adding_an_existing_sku_increases_its_quantity() {
    let (events, cart) = given::<Cart>([opened(user_owner()), added("TEE", 2, 2)])
        .when(add("tee", 3))
        .then_state();
    assert_eq!(events, [added("TEE", 3, 5)]);
    assert_eq!(cart.lines(), [line("TEE", 5)]);
}

#[test]
fn adding_beyond_the_quantity_bound_is_refused() {
    let err = given::<Cart>([opened(user_owner()), added("TEE", 99_999, 99_999)])
        .when(add("TEE", 2))
        .then_expect_error();
    assert_eq!(
        err,
        CartError::QuantityLimitExceeded {
            sku: sku("TEE"),
            max: Quantity::MAX
        }
    );
    given::<Cart>([opened(user_owner()), added("TEE", 99_999, 99_999)])
        .when(add("TEE", 1))
        .then_expect_events([added("TEE", 1, 100_000)]);
}

#[test]
fn a_new_line_beyond_the_line_bound_is_refused() {
    let mut history = vec![opened(user_owner())];
    history.extend((0..Cart::MAX_LINES).map(|n| added(&format!("SKU-{n}"), 1, 1)));
    let err = given::<Cart>(history.clone())
        .when(add("ONE-MORE", 1))
        .then_expect_error();
    assert_eq!(
        err,
        CartError::TooManyLines {
            max: Cart::MAX_LINES
        }
    );
    // An existing line can still grow.
    given::<Cart>(history)
        .when(add("SKU-0", 1))
        .then_expect_events([added("SKU-0", 1, 2)]);
}

#[test]
fn a_sku_with_another_product_id_is_refused() {
    let err = given::<Cart>([opened(user_owner()), added("TEE", 1, 1)])
        .when(CartCommand::AddItem {
            sku: sku("TEE"),
            product_id: product("MUG"),
            quantity: qty(1),
            at: t(1),
        })
        .then_expect_error();
    assert_eq!(err, CartError::SkuProductMismatch { sku: sku("TEE") });
}

// --- changing, removing, clearing ---

#[test]
fn change_item_quantity_is_accepted() {
    let (events, cart) = given::<Cart>([opened(user_owner()), added("TEE", 2, 2)])
        .when(CartCommand::ChangeItemQuantity {
            sku: sku("TEE"),
            quantity: qty(7),
            at: t(2),
        })
        .then_state();
    assert_eq!(
        events,
        [CartEvent::ItemQuantityChanged {
            sku: sku("TEE"),
            product_id: product("TEE"),
            previous_quantity: qty(2),
            quantity: qty(7),
            changed_at: t(2),
        }]
    );
    assert_eq!(cart.line(&sku("TEE")), Some(line("TEE", 7)));
}

#[test]
fn changing_to_the_same_quantity_records_nothing() {
    given::<Cart>([opened(user_owner()), added("TEE", 2, 2)])
        .when(CartCommand::ChangeItemQuantity {
            sku: sku("TEE"),
            quantity: qty(2),
            at: t(2),
        })
        .then_expect_events([]);
}

#[test]
fn commands_on_a_sku_not_in_the_cart_are_refused() {
    for command in [
        CartCommand::ChangeItemQuantity {
            sku: sku("MUG"),
            quantity: qty(1),
            at: t(2),
        },
        CartCommand::RemoveItem {
            sku: sku("MUG"),
            at: t(2),
        },
    ] {
        let err = given::<Cart>([opened(user_owner()), added("TEE", 2, 2)])
            .when(command.clone())
            .then_expect_error();
        assert_eq!(
            err,
            CartError::ItemNotInCart { sku: sku("MUG") },
            "{command:?}"
        );
    }
}

#[test]
fn remove_item_is_accepted() {
    let (events, cart) =
        given::<Cart>([opened(user_owner()), added("TEE", 2, 2), added("MUG", 1, 1)])
            .when(CartCommand::RemoveItem {
                sku: sku("TEE"),
                at: t(3),
            })
            .then_state();
    assert_eq!(
        events,
        [CartEvent::ItemRemovedFromCart {
            sku: sku("TEE"),
            product_id: product("TEE"),
            removed_at: t(3)
        }]
    );
    assert_eq!(cart.lines(), [line("MUG", 1)]);
}

#[test]
fn clear_cart_is_accepted_and_idempotent() {
    let (events, cart) =
        given::<Cart>([opened(user_owner()), added("TEE", 2, 2), added("MUG", 1, 1)])
            .when(CartCommand::ClearCart { at: t(3) })
            .then_state();
    assert_eq!(events, [CartEvent::CartCleared { cleared_at: t(3) }]);
    assert!(cart.lines().is_empty());
    given::<Cart>([opened(user_owner())])
        .when(CartCommand::ClearCart { at: t(3) })
        .then_expect_events([]);
}

// --- merging ---

#[test]
fn merge_guest_cart_sums_quantities_per_sku_and_caps_them() {
    let (events, cart) = given::<Cart>([
        opened(user_owner()),
        added("TEE", 2, 2),
        added("CAP", 99_000, 99_000),
    ])
    .when(merge(vec![
        line("TEE", 1),
        line("MUG", 4),
        line("MUG", 1),
        line("CAP", 5_000),
    ]))
    .then_state();
    assert_eq!(
        events,
        [CartEvent::GuestCartMerged {
            guest_cart_id: guest_cart_id(),
            lines: vec![line("CAP", 100_000), line("MUG", 5), line("TEE", 3)],
            merged_at: t(5),
        }]
    );
    assert_eq!(
        cart.lines(),
        [line("CAP", 100_000), line("MUG", 5), line("TEE", 3)]
    );
}

#[test]
fn merging_the_same_guest_cart_twice_records_nothing() {
    let history = [
        opened(user_owner()),
        CartEvent::GuestCartMerged {
            guest_cart_id: guest_cart_id(),
            lines: vec![line("MUG", 4)],
            merged_at: t(5),
        },
    ];
    given::<Cart>(history)
        .when(merge(vec![line("MUG", 4)]))
        .then_expect_events([]);
}

#[test]
fn merge_rules() {
    let mut full = vec![opened(user_owner())];
    full.extend((0..Cart::MAX_LINES).map(|n| added(&format!("SKU-{n}"), 1, 1)));
    let cases = [
        (
            vec![opened(guest_owner())],
            merge(vec![line("MUG", 1)]),
            CartError::NotAUserCart,
        ),
        (
            vec![opened(user_owner())],
            CartCommand::MergeGuestCart {
                guest_cart_id: cart_id(),
                lines: vec![line("MUG", 1)],
                at: t(5),
            },
            CartError::CannotMergeIntoItself,
        ),
        (
            vec![opened(user_owner()), added("TEE", 1, 1)],
            merge(vec![CartLine {
                sku: sku("TEE"),
                product_id: product("MUG"),
                quantity: qty(1),
            }]),
            CartError::SkuProductMismatch { sku: sku("TEE") },
        ),
        (
            vec![opened(user_owner())],
            merge(vec![
                line("MUG", 1),
                CartLine {
                    sku: sku("MUG"),
                    product_id: product("TEE"),
                    quantity: qty(1),
                },
            ]),
            CartError::SkuProductMismatch { sku: sku("MUG") },
        ),
        (
            full,
            merge(vec![line("SKU-0", 1), line("ONE-MORE", 1)]),
            CartError::TooManyLines {
                max: Cart::MAX_LINES,
            },
        ),
    ];
    for (history, command, expected) in cases {
        let err = given::<Cart>(history)
            .when(command.clone())
            .then_expect_error();
        assert_eq!(err, expected, "{command:?}");
    }
}

#[test]
fn mark_merged_closes_a_guest_cart() {
    let into = Uuid::from_u128(0xF00);
    let (events, cart) = given::<Cart>([opened(guest_owner()), added("TEE", 1, 1)])
        .when(CartCommand::MarkMerged {
            into_cart_id: into,
            at: t(6),
        })
        .then_state();
    assert_eq!(
        events,
        [CartEvent::CartMergedInto {
            into_cart_id: into,
            merged_at: t(6)
        }]
    );
    assert_eq!(cart.status(), Some(CartStatus::Merged));
    let history = [
        opened(guest_owner()),
        CartEvent::CartMergedInto {
            into_cart_id: into,
            merged_at: t(6),
        },
    ];
    // A retry is harmless; anything else is refused.
    given::<Cart>(history.clone())
        .when(CartCommand::MarkMerged {
            into_cart_id: into,
            at: t(7),
        })
        .then_expect_events([]);
    for command in every_other_command() {
        let retry =
            matches!(command, CartCommand::MarkMerged { into_cart_id, .. } if into_cart_id == into);
        if !retry {
            let err = given::<Cart>(history.clone())
                .when(command.clone())
                .then_expect_error();
            assert_eq!(
                err,
                CartError::AlreadyMerged { into_cart_id: into },
                "{command:?}"
            );
        }
    }
}

#[test]
fn mark_merged_rules() {
    let err = given::<Cart>([opened(user_owner())])
        .when(CartCommand::MarkMerged {
            into_cart_id: Uuid::from_u128(0xF00),
            at: t(6),
        })
        .then_expect_error();
    assert_eq!(err, CartError::NotAGuestCart);
    let err = given::<Cart>([opened(guest_owner())])
        .when(CartCommand::MarkMerged {
            into_cart_id: cart_id(),
            at: t(6),
        })
        .then_expect_error();
    assert_eq!(err, CartError::CannotMergeIntoItself);
}

// --- checkout ---

#[test]
fn check_out_prices_every_line_from_the_catalog() {
    let history = [opened(user_owner()), added("TEE", 3, 3), added("MUG", 2, 2)];
    let (events, cart) = given::<Cart>(history)
        .when(check_out(&[
            ("TEE", eur(1_999)),
            ("MUG", eur(850)),
            ("NOT-IN-CART", eur(1)),
        ]))
        .then_state();
    assert_eq!(
        events,
        [CartEvent::CartCheckedOut {
            owner: user_owner(),
            lines: vec![
                CheckedOutLine {
                    sku: sku("MUG"),
                    product_id: product("MUG"),
                    quantity: qty(2),
                    unit_price: eur(850),
                    line_total: eur(1_700)
                },
                CheckedOutLine {
                    sku: sku("TEE"),
                    product_id: product("TEE"),
                    quantity: qty(3),
                    unit_price: eur(1_999),
                    line_total: eur(5_997)
                },
            ],
            subtotal: eur(7_697),
            currency: Currency::EUR,
            checked_out_at: t(9),
        }]
    );
    assert_eq!(cart.status(), Some(CartStatus::CheckedOut));
}

#[test]
fn a_free_item_checks_out_at_zero() {
    let (events, _) = given::<Cart>([opened(guest_owner()), added("GIFT", 1, 1)])
        .when(check_out(&[("GIFT", eur(0))]))
        .then_state();
    assert!(
        matches!(&events[..], [CartEvent::CartCheckedOut { subtotal, .. }] if subtotal.is_zero())
    );
}

#[test]
fn check_out_rules() {
    let with_tee = || vec![opened(user_owner()), added("TEE", 2, 2)];
    let cases = [
        (
            vec![opened(user_owner())],
            check_out(&[]),
            CartError::EmptyCart,
        ),
        (
            with_tee(),
            check_out(&[("MUG", eur(1))]),
            CartError::MissingPrice { sku: sku("TEE") },
        ),
        (
            with_tee(),
            check_out(&[("TEE", Money::new(1_000, Currency::USD))]),
            CartError::PriceCurrencyMismatch {
                sku: sku("TEE"),
                expected: Currency::EUR,
                found: Currency::USD,
            },
        ),
        (
            with_tee(),
            check_out(&[("TEE", eur(-1))]),
            CartError::NegativePrice { sku: sku("TEE") },
        ),
        // 2 * (i64::MAX / 2 + 1) overflows one line total.
        (
            with_tee(),
            check_out(&[("TEE", eur(i64::MAX / 2 + 1))]),
            CartError::TotalOverflow,
        ),
        // Each line fits; their sum does not.
        (
            vec![opened(user_owner()), added("TEE", 1, 1), added("MUG", 1, 1)],
            check_out(&[("TEE", eur(i64::MAX)), ("MUG", eur(1))]),
            CartError::TotalOverflow,
        ),
    ];
    for (history, command, expected) in cases {
        let err = given::<Cart>(history)
            .when(command.clone())
            .then_expect_error();
        assert_eq!(err, expected, "{command:?}");
    }
}

#[test]
fn a_checked_out_cart_refuses_every_change() {
    let history = [
        opened(user_owner()),
        added("TEE", 2, 2),
        CartEvent::CartCheckedOut {
            owner: user_owner(),
            lines: vec![CheckedOutLine {
                sku: sku("TEE"),
                product_id: product("TEE"),
                quantity: qty(2),
                unit_price: eur(1),
                line_total: eur(2),
            }],
            subtotal: eur(2),
            currency: Currency::EUR,
            checked_out_at: t(9),
        },
    ];
    for command in every_other_command() {
        let err = given::<Cart>(history.clone())
            .when(command.clone())
            .then_expect_error();
        assert_eq!(err, CartError::AlreadyCheckedOut, "{command:?}");
    }
}

// --- events, schema, snapshots ---

#[test]
fn event_type_is_the_serialised_variant_name() {
    let events = [
        opened(guest_owner()),
        added("TEE", 1, 1),
        CartEvent::ItemQuantityChanged {
            sku: sku("TEE"),
            product_id: product("TEE"),
            previous_quantity: qty(1),
            quantity: qty(2),
            changed_at: t(1),
        },
        CartEvent::ItemRemovedFromCart {
            sku: sku("TEE"),
            product_id: product("TEE"),
            removed_at: t(1),
        },
        CartEvent::CartCleared { cleared_at: t(1) },
        CartEvent::GuestCartMerged {
            guest_cart_id: guest_cart_id(),
            lines: vec![line("TEE", 1)],
            merged_at: t(1),
        },
        CartEvent::CartMergedInto {
            into_cart_id: cart_id(),
            merged_at: t(1),
        },
        CartEvent::CartCheckedOut {
            owner: user_owner(),
            lines: vec![],
            subtotal: eur(0),
            currency: Currency::EUR,
            checked_out_at: t(1),
        },
    ];
    for event in events {
        let json = serde_json::to_value(&event).unwrap();
        let tag = json
            .as_object()
            .and_then(|o| o.keys().next().cloned())
            .unwrap();
        assert_eq!(tag, event.event_type());
        assert_eq!(event.event_version(), "1.0");
        assert_eq!(serde_json::from_value::<CartEvent>(json).unwrap(), event);
    }
    assert!(upcasters().is_empty());
}

#[test]
fn the_schema_names_every_event() {
    let schemas = event_schemas();
    assert_eq!(schemas.len(), 1);
    assert_eq!(schemas[0].0, "cart");
    let text = serde_json::to_string(&schemas[0].1).unwrap();
    for tag in [
        "CartOpened",
        "ItemAddedToCart",
        "GuestCartMerged",
        "CartCheckedOut",
        "line_total",
    ] {
        assert!(text.contains(tag), "{tag}");
    }
}

#[test]
fn state_survives_a_snapshot_round_trip() {
    let cart = Cart::from_events(&[
        opened(user_owner()),
        added("TEE", 2, 2),
        CartEvent::GuestCartMerged {
            guest_cart_id: guest_cart_id(),
            lines: vec![line("MUG", 4)],
            merged_at: t(5),
        },
    ]);
    let json = serde_json::to_string(&cart).unwrap();
    assert_eq!(serde_json::from_str::<Cart>(&json).unwrap(), cart);
}

/// The order the `carts` read model keeps (and the API documents): a new SKU goes
/// last, a SKU added again keeps its place, a removed and re-added SKU goes last, a
/// merge appends the SKUs the cart did not hold in the event's order.
#[test]
fn lines_as_added_keep_the_order_lines_were_added_in() {
    let removed = |s: &str, at: i64| CartEvent::ItemRemovedFromCart {
        sku: sku(s),
        product_id: product(s),
        removed_at: t(at),
    };
    let cart = Cart::from_events(&[
        opened(user_owner()),
        added("ZIP", 1, 1),
        added("MUG", 1, 1),
        added("ZIP", 1, 2),
        added("TEE", 1, 1),
        removed("MUG", 3),
        added("MUG", 3, 3),
        CartEvent::GuestCartMerged {
            guest_cart_id: guest_cart_id(),
            lines: vec![line("CAP", 1), line("TEE", 5)],
            merged_at: t(7),
        },
    ]);
    let order: Vec<(String, u32)> = cart
        .lines_as_added()
        .into_iter()
        .map(|l| (l.sku.as_str().to_owned(), l.quantity.get()))
        .collect();
    assert_eq!(
        order,
        [("ZIP", 2), ("TEE", 5), ("MUG", 3), ("CAP", 1)].map(|(s, q)| (s.to_owned(), q))
    );
    // `lines` stays in SKU order (checkout records lines in it).
    let by_sku: Vec<String> = cart
        .lines()
        .into_iter()
        .map(|l| l.sku.as_str().to_owned())
        .collect();
    assert_eq!(by_sku, ["CAP", "MUG", "TEE", "ZIP"]);
    assert_eq!(cart.updated_at(), Some(t(7)));
    let json = serde_json::to_string(&cart).unwrap();
    assert_eq!(
        serde_json::from_str::<Cart>(&json)
            .unwrap()
            .lines_as_added(),
        cart.lines_as_added()
    );
}

/// Every event moves `updated_at` to its own time, as the read model's column moves.
#[test]
fn updated_at_follows_the_last_event() {
    assert_eq!(Cart::default().updated_at(), None);
    let mut cart = Cart::from_events(&[opened(user_owner())]);
    assert_eq!(cart.updated_at(), Some(t(0)));
    cart.apply(&added("TEE", 1, 1));
    assert_eq!(cart.updated_at(), Some(t(1)));
    cart.apply(&CartEvent::CartCleared { cleared_at: t(9) });
    assert_eq!(cart.updated_at(), Some(t(9)));
    assert!(cart.lines_as_added().is_empty());
}

/// A snapshot written before lines were ordered (no `added` or `updated_at`) still loads: its lines come in SKU order, new ones after them, and
/// `updated_at` falls back to the opening time.
#[test]
fn a_snapshot_from_before_line_order_still_loads() {
    let mut json = serde_json::to_value(Cart::from_events(&[
        opened(user_owner()),
        added("TEE", 1, 1),
        added("MUG", 1, 1),
    ]))
    .unwrap();
    let state = json["state"].as_object_mut().unwrap();
    state.remove("updated_at");
    for line in state["lines"].as_object_mut().unwrap().values_mut() {
        line.as_object_mut().unwrap().remove("added");
    }
    let mut cart: Cart = serde_json::from_value(json).unwrap();
    assert_eq!(cart.updated_at(), Some(t(0)));
    cart.apply(&added("CAP", 1, 1));
    let order: Vec<String> = cart
        .lines_as_added()
        .into_iter()
        .map(|l| l.sku.as_str().to_owned())
        .collect();
    // The old lines all count as 0; CAP was added after them, so it comes last.
    assert_eq!(order.last().map(String::as_str), Some("CAP"), "{order:?}");
}

#[test]
fn every_rejection_is_named_in_lowercase_without_a_period() {
    let errors = [
        CartError::NotOpened,
        CartError::AlreadyOpened,
        CartError::AlreadyCheckedOut,
        CartError::AlreadyMerged {
            into_cart_id: cart_id(),
        },
        CartError::ItemNotInCart { sku: sku("TEE") },
        CartError::QuantityLimitExceeded {
            sku: sku("TEE"),
            max: Quantity::MAX,
        },
        CartError::TooManyLines {
            max: Cart::MAX_LINES,
        },
        CartError::SkuProductMismatch { sku: sku("TEE") },
        CartError::NotAUserCart,
        CartError::NotAGuestCart,
        CartError::CannotMergeIntoItself,
        CartError::EmptyCart,
        CartError::MissingPrice { sku: sku("TEE") },
        CartError::PriceCurrencyMismatch {
            sku: sku("TEE"),
            expected: Currency::EUR,
            found: Currency::USD,
        },
        CartError::NegativePrice { sku: sku("TEE") },
        CartError::TotalOverflow,
    ];
    for error in errors {
        let text = error.to_string();
        assert!(
            text.chars().next().is_some_and(char::is_lowercase),
            "{text}"
        );
        assert!(!text.ends_with('.'), "{text}");
    }
}

// --- invariants over random command sequences ---

/// How the test's stand-in for the command layer prices a checkout.
#[derive(Debug, Clone)]
enum Pricing {
    /// Every line priced in the cart's currency.
    Catalog,
    /// One line without a price.
    MissingOne,
    /// One line priced in another currency.
    WrongCurrency,
    /// One line priced below zero.
    Negative,
    /// Prices large enough to overflow.
    Huge,
}

/// A step of a random scenario; SKUs are indices into a pool of 130.
#[derive(Debug, Clone)]
enum Step {
    Add {
        sku: usize,
        quantity: i64,
        wrong_product: bool,
    },
    Change {
        sku: usize,
        quantity: i64,
    },
    Remove {
        sku: usize,
    },
    Clear,
    Merge {
        guest: u128,
        lines: Vec<(usize, i64)>,
    },
    MarkMerged,
    CheckOut(Pricing),
    Reopen,
}

fn pool_sku(i: usize) -> Sku {
    sku(&format!("SKU-{i}"))
}

fn quantity_strategy() -> impl Strategy<Value = i64> {
    // Mostly small, sometimes close to the bound so sums hit it.
    prop_oneof![4 => 1i64..=5, 1 => 99_990i64..=100_000]
}

fn step_strategy() -> impl Strategy<Value = Step> {
    // A few hot SKUs so lines repeat, and a wide pool so merges can fill the cart.
    let hot = 0usize..6;
    let wide = 0usize..130;
    prop_oneof![
        10 => (hot.clone(), quantity_strategy(), prop::bool::weighted(0.05))
            .prop_map(|(sku, quantity, wrong_product)| Step::Add { sku, quantity, wrong_product }),
        3 => (hot.clone(), quantity_strategy()).prop_map(|(sku, quantity)| Step::Change { sku, quantity }),
        3 => hot.prop_map(|sku| Step::Remove { sku }),
        1 => Just(Step::Clear),
        4 => (0u128..12, prop::collection::vec((wide, quantity_strategy()), 0..50))
            .prop_map(|(guest, lines)| Step::Merge { guest, lines }),
        1 => Just(Step::MarkMerged),
        1 => prop_oneof![
            6 => Just(Pricing::Catalog),
            1 => Just(Pricing::MissingOne),
            1 => Just(Pricing::WrongCurrency),
            1 => Just(Pricing::Negative),
            1 => Just(Pricing::Huge),
        ]
        .prop_map(Step::CheckOut),
        1 => Just(Step::Reopen),
    ]
}

/// Unit price of pool SKU `sku` in the test catalog.
fn unit_price(sku: &Sku) -> i64 {
    sku.as_str().bytes().map(i64::from).sum::<i64>() * 7
}

/// Turns a step into a command the way the command layer would, reading the current
/// cart for what the client does not send (checkout prices).
fn to_command(step: &Step, cart: &Cart, at: DateTime<Utc>) -> CartCommand {
    let currency = cart.currency().unwrap_or(Currency::EUR);
    match step {
        Step::Add {
            sku,
            quantity,
            wrong_product,
        } => {
            let s = pool_sku(*sku);
            let product_id = if *wrong_product {
                Uuid::nil()
            } else {
                product(s.as_str())
            };
            CartCommand::AddItem {
                product_id,
                sku: s,
                quantity: qty(*quantity),
                at,
            }
        }
        Step::Change { sku, quantity } => CartCommand::ChangeItemQuantity {
            sku: pool_sku(*sku),
            quantity: qty(*quantity),
            at,
        },
        Step::Remove { sku } => CartCommand::RemoveItem {
            sku: pool_sku(*sku),
            at,
        },
        Step::Clear => CartCommand::ClearCart { at },
        Step::Merge { guest, lines } => CartCommand::MergeGuestCart {
            guest_cart_id: Uuid::from_u128(0x6E57_0000 + guest),
            lines: lines
                .iter()
                .map(|(i, q)| {
                    let s = pool_sku(*i);
                    CartLine {
                        product_id: product(s.as_str()),
                        sku: s,
                        quantity: qty(*q),
                    }
                })
                .collect(),
            at,
        },
        Step::MarkMerged => CartCommand::MarkMerged {
            into_cart_id: Uuid::from_u128(0xF00),
            at,
        },
        Step::CheckOut(pricing) => {
            let mut prices: BTreeMap<Sku, Money> = cart
                .lines()
                .iter()
                .map(|l| {
                    let amount = match pricing {
                        Pricing::Huge => i64::MAX / 3,
                        _ => unit_price(&l.sku),
                    };
                    (l.sku.clone(), Money::new(amount, currency))
                })
                .collect();
            if let Some(first) = cart.lines().first() {
                match pricing {
                    Pricing::MissingOne => {
                        prices.remove(&first.sku);
                    }
                    Pricing::WrongCurrency => {
                        let other = if currency == Currency::EUR {
                            Currency::USD
                        } else {
                            Currency::EUR
                        };
                        prices.insert(first.sku.clone(), Money::new(100, other));
                    }
                    Pricing::Negative => {
                        prices.insert(first.sku.clone(), Money::new(-1, currency));
                    }
                    Pricing::Catalog | Pricing::Huge => {}
                }
            }
            CartCommand::CheckOut { prices, at }
        }
        Step::Reopen => CartCommand::OpenCart {
            cart_id: cart_id(),
            owner: user_owner(),
            currency,
            at,
        },
    }
}

/// Reference model of the lines (SKU -> quantity), updated from an accepted command
/// by the rules in prose rather than from the events.
fn update_model(model: &mut BTreeMap<Sku, u32>, command: &CartCommand) {
    match command {
        CartCommand::AddItem { sku, quantity, .. } => {
            *model.entry(sku.clone()).or_default() += quantity.get();
        }
        CartCommand::ChangeItemQuantity { sku, quantity, .. } => {
            model.insert(sku.clone(), quantity.get());
        }
        CartCommand::RemoveItem { sku, .. } => {
            model.remove(sku);
        }
        CartCommand::ClearCart { .. } => model.clear(),
        CartCommand::MergeGuestCart { lines, .. } => {
            for line in lines {
                let total = model.entry(line.sku.clone()).or_default();
                *total = (*total + line.quantity.get()).min(Quantity::MAX);
            }
        }
        CartCommand::OpenCart { .. }
        | CartCommand::MarkMerged { .. }
        | CartCommand::CheckOut { .. } => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn cart_invariants_hold_over_random_commands(
        guest in prop::bool::weighted(0.2),
        steps in prop::collection::vec(step_strategy(), 0..80),
    ) {
        let owner = if guest { guest_owner() } else { user_owner() };
        let mut cart = Cart::from_events(&[opened(owner)]);
        let mut history = vec![opened(if guest { guest_owner() } else { user_owner() })];
        let mut model: BTreeMap<Sku, u32> = BTreeMap::new();
        let mut closed: Option<Cart> = None;
        for (n, step) in steps.iter().enumerate() {
            let at = t(10 + i64::try_from(n).unwrap());
            let command = to_command(step, &cart, at);
            let lines_before = cart.lines();
            let result = cart.handle(command.clone());
            if let Some(frozen) = &closed {
                // A closed cart never changes (a repeated MarkMerged records nothing).
                prop_assert!(result.as_ref().map_or(true, Vec::is_empty), "closed cart accepted {command:?}");
                prop_assert_eq!(&cart, frozen);
                continue;
            }
            let Ok(events) = result else { continue };
            for event in &events {
                let json = serde_json::to_value(event).unwrap();
                prop_assert_eq!(&serde_json::from_value::<CartEvent>(json).unwrap(), event);
                if let CartEvent::CartCheckedOut { lines, subtotal, currency, .. } = event {
                    prop_assert_eq!(Some(*currency), cart.currency());
                    let mut sum = 0i128;
                    for l in lines {
                        prop_assert_eq!(l.unit_price.currency(), *currency);
                        prop_assert_eq!(
                            i128::from(l.line_total.amount_minor()),
                            i128::from(l.unit_price.amount_minor()) * i128::from(l.quantity.get())
                        );
                        sum += i128::from(l.line_total.amount_minor());
                    }
                    prop_assert_eq!(i128::from(subtotal.amount_minor()), sum);
                    let snapshot: Vec<CartLine> = lines
                        .iter()
                        .map(|l| CartLine { sku: l.sku.clone(), product_id: l.product_id, quantity: l.quantity })
                        .collect();
                    prop_assert_eq!(snapshot, lines_before.clone());
                }
                cart.apply(event);
            }
            if !events.is_empty() {
                update_model(&mut model, &command);
            }
            history.extend(events);
            if matches!(cart.status(), Some(CartStatus::CheckedOut | CartStatus::Merged)) {
                closed = Some(cart.clone());
            }
            let lines = cart.lines();
            prop_assert!(lines.len() <= Cart::MAX_LINES);
            for pair in lines.windows(2) {
                prop_assert!(pair[0].sku < pair[1].sku, "duplicate or unordered sku");
            }
            for l in &lines {
                prop_assert!((1..=Quantity::MAX).contains(&l.quantity.get()));
            }
            let as_model: BTreeMap<Sku, u32> = lines.iter().map(|l| (l.sku.clone(), l.quantity.get())).collect();
            prop_assert_eq!(&as_model, &model);
        }
        // Replaying the history gives the same state as evolving step by step.
        prop_assert_eq!(Cart::from_events(&history), cart);
    }
}
