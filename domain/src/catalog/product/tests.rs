//! Given/when/then for every product command, and invariants over random command
//! sequences.

use std::collections::BTreeSet;

use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;
use uuid::Uuid;

use super::*;
use crate::catalog::Slug;
use crate::testing::{given, given_no_history};
use crate::{Aggregate, Currency, DomainEvent, Money, Sku};

use ProductCommand as C;
use ProductEvent as E;

const PRODUCT: Uuid = Uuid::from_u128(1);
const CATEGORY: Uuid = Uuid::from_u128(2);

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + seconds, 0).unwrap()
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x1000 + n)
}

fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::EUR)
}

fn sku(s: &str) -> Sku {
    Sku::parse(s).unwrap()
}

fn slug(s: &str) -> Slug {
    Slug::parse(s).unwrap()
}

fn name(s: &str) -> ProductName {
    ProductName::parse(s).unwrap()
}

fn tags(list: &[&str]) -> BTreeSet<Tag> {
    list.iter().map(|t| Tag::parse(t).unwrap()).collect()
}

fn attrs(list: &[(&str, &str)]) -> Attributes {
    Attributes::parse(list.iter().copied()).unwrap()
}

fn label(s: &str) -> Option<VariantLabel> {
    Some(VariantLabel::parse(s).unwrap())
}

fn create_command(price: Money) -> ProductCommand {
    C::CreateProduct {
        product_id: PRODUCT,
        sku: sku("TSHIRT"),
        slug: slug("t-shirt"),
        name: name("T-shirt"),
        description: Description::parse("Soft cotton.").unwrap(),
        category_id: CATEGORY,
        tags: tags(&["summer"]),
        attributes: attrs(&[("material", "cotton")]),
        price,
        at: at(0),
    }
}

fn created_with_price(price: Money) -> ProductEvent {
    E::ProductCreated {
        product_id: PRODUCT,
        sku: sku("TSHIRT"),
        slug: slug("t-shirt"),
        name: name("T-shirt"),
        description: Description::parse("Soft cotton.").unwrap(),
        category_id: CATEGORY,
        tags: tags(&["summer"]),
        attributes: attrs(&[("material", "cotton")]),
        price,
        at: at(0),
    }
}

fn created() -> ProductEvent {
    created_with_price(eur(1_999))
}

fn variant_added(n: u128, variant_sku: &str, price: Money) -> ProductEvent {
    E::VariantAdded {
        variant_id: id(n),
        sku: sku(variant_sku),
        size: label("M"),
        colour: label("Red"),
        attributes: Attributes::empty(),
        price,
        at: at(1),
    }
}

fn image_added(n: u128, primary: bool) -> ProductEvent {
    E::ImageAdded {
        image_id: id(n),
        source: ImageSource::key(&format!("products/1/{n}.jpg")).unwrap(),
        alt_text: AltText::parse("Front").unwrap(),
        primary,
        at: at(2),
    }
}

fn add_image(n: u128, primary: bool) -> ProductCommand {
    C::AddImage {
        image_id: id(n),
        source: ImageSource::key(&format!("products/1/{n}.jpg")).unwrap(),
        alt_text: AltText::parse("Front").unwrap(),
        primary,
        at: at(2),
    }
}

/// A draft with one image, ready to publish.
fn publishable() -> Vec<ProductEvent> {
    vec![created(), image_added(1, true)]
}

fn published() -> Vec<ProductEvent> {
    let mut events = publishable();
    events.push(E::ProductPublished { at: at(3) });
    events
}

fn archived() -> Vec<ProductEvent> {
    vec![created(), E::ProductArchived { at: at(3) }]
}

fn state(events: &[ProductEvent]) -> ProductState {
    Product::from_events(events).state().cloned().unwrap()
}

// --- creation -----------------------------------------------------------------------

#[test]
fn create_product_records_everything_a_listing_needs() {
    let (events, product) = given_no_history::<Product>()
        .when(create_command(eur(1_999)))
        .then_state();
    assert_eq!(events, vec![created()]);
    let s = product.state().unwrap();
    assert_eq!(s.id, PRODUCT);
    assert_eq!(s.status, ProductStatus::Draft);
    assert!(!s.featured);
    assert_eq!(
        s.price_history,
        vec![PriceRecord {
            variant_id: None,
            price: eur(1_999),
            at: at(0)
        }]
    );
}

#[test]
fn a_zero_price_draft_is_allowed() {
    given_no_history::<Product>()
        .when(create_command(eur(0)))
        .then_expect_events([created_with_price(eur(0))]);
}

#[test]
fn create_product_twice_is_refused() {
    let err = given::<Product>([created()])
        .when(create_command(eur(1_999)))
        .then_expect_error();
    assert_eq!(err, ProductError::AlreadyCreated);
}

#[test]
fn create_product_with_negative_price_is_refused() {
    let err = given_no_history::<Product>()
        .when(create_command(eur(-1)))
        .then_expect_error();
    assert_eq!(err, ProductError::NegativePrice);
}

#[test]
fn create_product_with_too_many_tags_is_refused() {
    let many: Vec<String> = (0..=Product::MAX_TAGS).map(|i| format!("tag{i}")).collect();
    let mut cmd = create_command(eur(1));
    if let C::CreateProduct { tags, .. } = &mut cmd {
        *tags = many.iter().map(|t| Tag::parse(t).unwrap()).collect();
    }
    let err = given_no_history::<Product>().when(cmd).then_expect_error();
    assert_eq!(err, ProductError::TooManyTags { max: 20 });
}

#[test]
fn commands_before_creation_are_refused() {
    let err = given_no_history::<Product>()
        .when(C::PublishProduct { at: at(1) })
        .then_expect_error();
    assert_eq!(err, ProductError::NotCreated);
}

#[test]
fn an_archived_product_refuses_every_command() {
    let commands = [
        create_command(eur(1)),
        C::ChangePrice {
            price: eur(5),
            at: at(9),
        },
        C::ChangeSlug {
            slug: slug("other"),
            at: at(9),
        },
        add_image(7, true),
        C::PublishProduct { at: at(9) },
        C::UnpublishProduct { at: at(9) },
        C::FeatureProduct { at: at(9) },
        C::UnfeatureProduct { at: at(9) },
        C::ArchiveProduct { at: at(9) },
    ];
    for cmd in commands {
        let err = given::<Product>(archived()).when(cmd).then_expect_error();
        assert_eq!(err, ProductError::Archived);
    }
}

// --- details and slug ---------------------------------------------------------------

fn update_details(tag_list: &[&str]) -> ProductCommand {
    C::UpdateProductDetails {
        name: name("Organic T-shirt"),
        description: Description::parse("Softer cotton.").unwrap(),
        category_id: id(77),
        tags: tags(tag_list),
        attributes: attrs(&[("material", "organic cotton")]),
        at: at(5),
    }
}

#[test]
fn update_details_replaces_them() {
    let (events, product) = given::<Product>([created()])
        .when(update_details(&["summer", "organic"]))
        .then_state();
    assert_eq!(
        events,
        vec![E::ProductDetailsUpdated {
            name: name("Organic T-shirt"),
            description: Description::parse("Softer cotton.").unwrap(),
            category_id: id(77),
            tags: tags(&["organic", "summer"]),
            attributes: attrs(&[("material", "organic cotton")]),
            at: at(5),
        }]
    );
    let s = product.state().unwrap();
    assert_eq!(s.category_id, id(77));
    assert_eq!(s.updated_at, at(5));
}

#[test]
fn update_details_without_change_is_refused() {
    let cmd = C::UpdateProductDetails {
        name: name("T-shirt"),
        description: Description::parse("Soft cotton.").unwrap(),
        category_id: CATEGORY,
        tags: tags(&["summer"]),
        attributes: attrs(&[("material", "cotton")]),
        at: at(5),
    };
    let err = given::<Product>([created()]).when(cmd).then_expect_error();
    assert_eq!(err, ProductError::DetailsUnchanged);
}

#[test]
fn update_details_with_too_many_tags_is_refused() {
    let many: Vec<String> = (0..=Product::MAX_TAGS).map(|i| format!("t{i}")).collect();
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    let err = given::<Product>([created()])
        .when(update_details(&refs))
        .then_expect_error();
    assert_eq!(err, ProductError::TooManyTags { max: 20 });
}

#[test]
fn change_slug_keeps_the_old_one_in_the_event() {
    given::<Product>([created()])
        .when(C::ChangeSlug {
            slug: slug("cotton-t-shirt"),
            at: at(5),
        })
        .then_expect_events([E::SlugChanged {
            old_slug: slug("t-shirt"),
            new_slug: slug("cotton-t-shirt"),
            at: at(5),
        }]);
}

#[test]
fn change_slug_to_the_same_slug_is_refused() {
    let err = given::<Product>([created()])
        .when(C::ChangeSlug {
            slug: slug("t-shirt"),
            at: at(5),
        })
        .then_expect_error();
    assert_eq!(err, ProductError::SlugUnchanged);
}

// --- prices -------------------------------------------------------------------------

#[test]
fn change_price_records_old_and_new_and_the_history() {
    let (events, product) = given::<Product>([created()])
        .when(C::ChangePrice {
            price: eur(1_499),
            at: at(5),
        })
        .then_state();
    assert_eq!(
        events,
        vec![E::PriceChanged {
            old_price: eur(1_999),
            new_price: eur(1_499),
            at: at(5),
        }]
    );
    let s = product.state().unwrap();
    assert_eq!(s.price, eur(1_499));
    let history: Vec<i64> = s
        .price_history
        .iter()
        .map(|r| r.price.amount_minor())
        .collect();
    assert_eq!(history, vec![1_999, 1_499]);
}

#[test]
fn change_price_refuses_negative_foreign_and_unchanged_prices() {
    let cases = [
        (eur(-1), ProductError::NegativePrice),
        (
            Money::new(1_000, Currency::USD),
            ProductError::CurrencyMismatch {
                expected: Currency::EUR,
                got: Currency::USD,
            },
        ),
        (eur(1_999), ProductError::PriceUnchanged),
    ];
    for (price, expected) in cases {
        let err = given::<Product>([created()])
            .when(C::ChangePrice { price, at: at(5) })
            .then_expect_error();
        assert_eq!(err, expected);
    }
}

#[test]
fn price_history_keeps_the_most_recent_entries() {
    let mut events = vec![created()];
    for i in 0..=Product::PRICE_HISTORY_LEN as i64 {
        events.push(E::PriceChanged {
            old_price: eur(i),
            new_price: eur(i + 1),
            at: at(i),
        });
    }
    let s = state(&events);
    assert_eq!(s.price_history.len(), Product::PRICE_HISTORY_LEN);
    assert_eq!(s.price_history.last().unwrap().price, s.price);
}

// --- variants -----------------------------------------------------------------------

fn add_variant(n: u128, variant_sku: &str, price: Money) -> ProductCommand {
    C::AddVariant {
        variant_id: id(n),
        sku: sku(variant_sku),
        size: label("M"),
        colour: label("Red"),
        attributes: Attributes::empty(),
        price,
        at: at(1),
    }
}

#[test]
fn add_variant_with_its_own_sku_and_price() {
    let (events, product) = given::<Product>([created()])
        .when(add_variant(1, "TSHIRT-RED-M", eur(2_199)))
        .then_state();
    assert_eq!(events, vec![variant_added(1, "TSHIRT-RED-M", eur(2_199))]);
    let s = product.state().unwrap();
    assert_eq!(s.variant(id(1)).unwrap().price, eur(2_199));
    assert_eq!(
        s.price_history.last().unwrap(),
        &PriceRecord {
            variant_id: Some(id(1)),
            price: eur(2_199),
            at: at(1)
        }
    );
}

#[test]
fn add_variant_with_a_used_id_is_refused() {
    let err = given::<Product>([created(), variant_added(1, "A", eur(1))])
        .when(add_variant(1, "B", eur(1)))
        .then_expect_error();
    assert_eq!(err, ProductError::VariantAlreadyExists(id(1)));
}

#[test]
fn variant_skus_must_differ_from_the_product_and_each_other() {
    let err = given::<Product>([created()])
        .when(add_variant(1, "tshirt", eur(1)))
        .then_expect_error();
    assert_eq!(err, ProductError::DuplicateSku(sku("TSHIRT")));

    let err = given::<Product>([created(), variant_added(1, "A", eur(1))])
        .when(add_variant(2, "A", eur(1)))
        .then_expect_error();
    assert_eq!(err, ProductError::DuplicateSku(sku("A")));
}

#[test]
fn add_variant_refuses_negative_and_foreign_prices() {
    let err = given::<Product>([created()])
        .when(add_variant(1, "A", eur(-5)))
        .then_expect_error();
    assert_eq!(err, ProductError::NegativePrice);
    let err = given::<Product>([created()])
        .when(add_variant(1, "A", Money::new(5, Currency::GBP)))
        .then_expect_error();
    assert_eq!(
        err,
        ProductError::CurrencyMismatch {
            expected: Currency::EUR,
            got: Currency::GBP
        }
    );
}

#[test]
fn add_variant_beyond_the_bound_is_refused() {
    let mut events = vec![created()];
    for n in 0..Product::MAX_VARIANTS as u128 {
        events.push(variant_added(n, &format!("V{n}"), eur(1)));
    }
    let err = given::<Product>(events)
        .when(add_variant(999, "NEW", eur(1)))
        .then_expect_error();
    assert_eq!(err, ProductError::TooManyVariants { max: 100 });
}

#[test]
fn update_variant_replaces_its_options_but_not_its_sku() {
    let (events, product) = given::<Product>([created(), variant_added(1, "A", eur(1))])
        .when(C::UpdateVariant {
            variant_id: id(1),
            size: label("L"),
            colour: None,
            attributes: attrs(&[("fit", "slim")]),
            at: at(4),
        })
        .then_state();
    assert_eq!(
        events,
        vec![E::VariantUpdated {
            variant_id: id(1),
            sku: sku("A"),
            size: label("L"),
            colour: None,
            attributes: attrs(&[("fit", "slim")]),
            at: at(4),
        }]
    );
    let v = product.state().unwrap().variant(id(1)).unwrap().clone();
    assert_eq!((v.size, v.colour, v.sku), (label("L"), None, sku("A")));
}

#[test]
fn update_variant_refuses_unknown_and_unchanged_variants() {
    let history = [created(), variant_added(1, "A", eur(1))];
    let err = given::<Product>(history.clone())
        .when(C::UpdateVariant {
            variant_id: id(2),
            size: None,
            colour: None,
            attributes: Attributes::empty(),
            at: at(4),
        })
        .then_expect_error();
    assert_eq!(err, ProductError::VariantNotFound(id(2)));
    let err = given::<Product>(history)
        .when(C::UpdateVariant {
            variant_id: id(1),
            size: label("M"),
            colour: label("Red"),
            attributes: Attributes::empty(),
            at: at(4),
        })
        .then_expect_error();
    assert_eq!(err, ProductError::VariantUnchanged);
}

#[test]
fn remove_variant_frees_its_sku() {
    let (events, product) = given::<Product>([created(), variant_added(1, "A", eur(1))])
        .when(C::RemoveVariant {
            variant_id: id(1),
            at: at(4),
        })
        .then_state();
    assert_eq!(
        events,
        vec![E::VariantRemoved {
            variant_id: id(1),
            sku: sku("A"),
            at: at(4)
        }]
    );
    assert!(product.state().unwrap().variants.is_empty());
    // The SKU can be used by a new variant of this product.
    given::<Product>([created(), variant_added(1, "A", eur(1)), events[0].clone()])
        .when(add_variant(2, "A", eur(1)))
        .then_expect_events([E::VariantAdded {
            variant_id: id(2),
            sku: sku("A"),
            size: label("M"),
            colour: label("Red"),
            attributes: Attributes::empty(),
            price: eur(1),
            at: at(1),
        }]);
}

#[test]
fn remove_unknown_variant_is_refused() {
    let err = given::<Product>([created()])
        .when(C::RemoveVariant {
            variant_id: id(1),
            at: at(4),
        })
        .then_expect_error();
    assert_eq!(err, ProductError::VariantNotFound(id(1)));
}

#[test]
fn change_variant_price_records_old_and_new() {
    let (events, product) = given::<Product>([created(), variant_added(1, "A", eur(100))])
        .when(C::ChangeVariantPrice {
            variant_id: id(1),
            price: eur(90),
            at: at(6),
        })
        .then_state();
    assert_eq!(
        events,
        vec![E::VariantPriceChanged {
            variant_id: id(1),
            sku: sku("A"),
            old_price: eur(100),
            new_price: eur(90),
            at: at(6),
        }]
    );
    let s = product.state().unwrap();
    assert_eq!(s.variant(id(1)).unwrap().price, eur(90));
    assert_eq!(s.price_history.len(), 3);
}

#[test]
fn change_variant_price_refuses_bad_prices_and_unknown_variants() {
    let history = [created(), variant_added(1, "A", eur(100))];
    let cases = [
        (id(2), eur(5), ProductError::VariantNotFound(id(2))),
        (id(1), eur(100), ProductError::PriceUnchanged),
        (id(1), eur(-100), ProductError::NegativePrice),
        (
            id(1),
            Money::new(5, Currency::JPY),
            ProductError::CurrencyMismatch {
                expected: Currency::EUR,
                got: Currency::JPY,
            },
        ),
    ];
    for (variant_id, price, expected) in cases {
        let err = given::<Product>(history.clone())
            .when(C::ChangeVariantPrice {
                variant_id,
                price,
                at: at(6),
            })
            .then_expect_error();
        assert_eq!(err, expected);
    }
}

// --- images -------------------------------------------------------------------------

#[test]
fn the_first_image_is_primary_even_if_not_asked() {
    let (events, product) = given::<Product>([created()])
        .when(add_image(1, false))
        .then_state();
    assert_eq!(events, vec![image_added(1, true)]);
    assert_eq!(product.state().unwrap().primary_image().unwrap().id, id(1));
}

#[test]
fn a_new_primary_image_demotes_the_old_one() {
    let (events, product) = given::<Product>([created(), image_added(1, true)])
        .when(add_image(2, true))
        .then_state();
    assert_eq!(events, vec![image_added(2, true)]);
    let s = product.state().unwrap();
    assert_eq!(s.primary_image().unwrap().id, id(2));
    assert_eq!(s.images.iter().filter(|i| i.primary).count(), 1);
}

#[test]
fn a_secondary_image_leaves_the_primary_alone() {
    let (events, product) = given::<Product>([created(), image_added(1, true)])
        .when(add_image(2, false))
        .then_state();
    assert_eq!(events, vec![image_added(2, false)]);
    assert_eq!(product.state().unwrap().primary_image().unwrap().id, id(1));
}

#[test]
fn add_image_refuses_a_used_id_and_too_many_images() {
    let err = given::<Product>([created(), image_added(1, true)])
        .when(add_image(1, false))
        .then_expect_error();
    assert_eq!(err, ProductError::ImageAlreadyExists(id(1)));

    let mut events = vec![created()];
    for n in 0..Product::MAX_IMAGES as u128 {
        events.push(image_added(n, n == 0));
    }
    let err = given::<Product>(events)
        .when(add_image(999, false))
        .then_expect_error();
    assert_eq!(err, ProductError::TooManyImages { max: 20 });
}

#[test]
fn removing_the_primary_image_promotes_the_oldest_remaining() {
    let history = [
        created(),
        image_added(1, true),
        image_added(2, false),
        image_added(3, false),
    ];
    let (events, product) = given::<Product>(history)
        .when(C::RemoveImage {
            image_id: id(1),
            at: at(7),
        })
        .then_state();
    assert_eq!(
        events,
        vec![E::ImageRemoved {
            image_id: id(1),
            promoted_primary: Some(id(2)),
            at: at(7),
        }]
    );
    assert_eq!(product.state().unwrap().primary_image().unwrap().id, id(2));
}

#[test]
fn removing_a_secondary_or_the_last_image_promotes_nothing() {
    given::<Product>([created(), image_added(1, true), image_added(2, false)])
        .when(C::RemoveImage {
            image_id: id(2),
            at: at(7),
        })
        .then_expect_events([E::ImageRemoved {
            image_id: id(2),
            promoted_primary: None,
            at: at(7),
        }]);
    let (events, product) = given::<Product>([created(), image_added(1, true)])
        .when(C::RemoveImage {
            image_id: id(1),
            at: at(7),
        })
        .then_state();
    assert_eq!(
        events,
        vec![E::ImageRemoved {
            image_id: id(1),
            promoted_primary: None,
            at: at(7),
        }]
    );
    assert!(product.state().unwrap().images.is_empty());
}

#[test]
fn a_published_product_keeps_its_last_image() {
    let err = given::<Product>(published())
        .when(C::RemoveImage {
            image_id: id(1),
            at: at(7),
        })
        .then_expect_error();
    assert_eq!(err, ProductError::ImageRequired);
}

#[test]
fn a_published_product_keeps_positive_prices() {
    let mut history = published();
    history.push(variant_added(1, "A", eur(5)));
    let commands = [
        C::ChangePrice {
            price: eur(0),
            at: at(9),
        },
        add_variant(2, "B", eur(0)),
        C::ChangeVariantPrice {
            variant_id: id(1),
            price: eur(0),
            at: at(9),
        },
    ];
    for cmd in commands {
        let err = given::<Product>(history.clone())
            .when(cmd)
            .then_expect_error();
        assert_eq!(err, ProductError::PositivePriceRequired);
    }
}

#[test]
fn remove_unknown_image_is_refused() {
    let err = given::<Product>([created()])
        .when(C::RemoveImage {
            image_id: id(1),
            at: at(7),
        })
        .then_expect_error();
    assert_eq!(err, ProductError::ImageNotFound(id(1)));
}

#[test]
fn set_primary_image_moves_the_flag() {
    let (events, product) =
        given::<Product>([created(), image_added(1, true), image_added(2, false)])
            .when(C::SetPrimaryImage {
                image_id: id(2),
                at: at(8),
            })
            .then_state();
    assert_eq!(
        events,
        vec![E::PrimaryImageSet {
            image_id: id(2),
            previous_primary: Some(id(1)),
            at: at(8),
        }]
    );
    let s = product.state().unwrap();
    assert_eq!(s.primary_image().unwrap().id, id(2));
    assert_eq!(s.images.iter().filter(|i| i.primary).count(), 1);
}

#[test]
fn set_primary_image_refuses_the_current_primary_and_unknown_images() {
    let history = [created(), image_added(1, true)];
    let err = given::<Product>(history.clone())
        .when(C::SetPrimaryImage {
            image_id: id(1),
            at: at(8),
        })
        .then_expect_error();
    assert_eq!(err, ProductError::AlreadyPrimaryImage(id(1)));
    let err = given::<Product>(history)
        .when(C::SetPrimaryImage {
            image_id: id(9),
            at: at(8),
        })
        .then_expect_error();
    assert_eq!(err, ProductError::ImageNotFound(id(9)));
}

// --- lifecycle ----------------------------------------------------------------------

#[test]
fn publish_a_ready_draft() {
    let (events, product) = given::<Product>(publishable())
        .when(C::PublishProduct { at: at(3) })
        .then_state();
    assert_eq!(events, vec![E::ProductPublished { at: at(3) }]);
    assert_eq!(product.state().unwrap().status, ProductStatus::Published);
}

#[test]
fn republish_an_unpublished_product() {
    let mut history = published();
    history.push(E::ProductUnpublished { at: at(4) });
    given::<Product>(history)
        .when(C::PublishProduct { at: at(5) })
        .then_expect_events([E::ProductPublished { at: at(5) }]);
}

#[test]
fn publish_refuses_a_published_product() {
    let err = given::<Product>(published())
        .when(C::PublishProduct { at: at(5) })
        .then_expect_error();
    assert_eq!(err, ProductError::AlreadyPublished);
}

#[test]
fn publish_requires_an_image() {
    let err = given::<Product>([created()])
        .when(C::PublishProduct { at: at(5) })
        .then_expect_error();
    assert_eq!(err, ProductError::ImageRequired);
}

#[test]
fn publish_requires_positive_prices() {
    let err = given::<Product>([created_with_price(eur(0)), image_added(1, true)])
        .when(C::PublishProduct { at: at(5) })
        .then_expect_error();
    assert_eq!(err, ProductError::PositivePriceRequired);
    let mut history = publishable();
    history.push(variant_added(1, "FREE", eur(0)));
    let err = given::<Product>(history)
        .when(C::PublishProduct { at: at(5) })
        .then_expect_error();
    assert_eq!(err, ProductError::PositivePriceRequired);
}

#[test]
fn unpublish_a_published_product() {
    let (events, product) = given::<Product>(published())
        .when(C::UnpublishProduct { at: at(5) })
        .then_state();
    assert_eq!(events, vec![E::ProductUnpublished { at: at(5) }]);
    assert_eq!(product.state().unwrap().status, ProductStatus::Unpublished);
}

#[test]
fn unpublish_refuses_a_product_that_is_not_published() {
    let err = given::<Product>([created()])
        .when(C::UnpublishProduct { at: at(5) })
        .then_expect_error();
    assert_eq!(err, ProductError::NotPublished);
}

#[test]
fn feature_and_unfeature() {
    let (events, product) = given::<Product>([created()])
        .when(C::FeatureProduct { at: at(5) })
        .then_state();
    assert_eq!(events, vec![E::ProductFeatured { at: at(5) }]);
    assert!(product.state().unwrap().featured);
    given::<Product>([created(), E::ProductFeatured { at: at(5) }])
        .when(C::UnfeatureProduct { at: at(6) })
        .then_expect_events([E::ProductUnfeatured { at: at(6) }]);
}

#[test]
fn feature_twice_and_unfeature_when_not_featured_are_refused() {
    let err = given::<Product>([created(), E::ProductFeatured { at: at(5) }])
        .when(C::FeatureProduct { at: at(6) })
        .then_expect_error();
    assert_eq!(err, ProductError::AlreadyFeatured);
    let err = given::<Product>([created()])
        .when(C::UnfeatureProduct { at: at(6) })
        .then_expect_error();
    assert_eq!(err, ProductError::NotFeatured);
}

#[test]
fn archive_a_draft_or_an_unpublished_product() {
    let (events, product) = given::<Product>([created()])
        .when(C::ArchiveProduct { at: at(9) })
        .then_state();
    assert_eq!(events, vec![E::ProductArchived { at: at(9) }]);
    assert_eq!(product.state().unwrap().status, ProductStatus::Archived);

    let mut history = published();
    history.push(E::ProductUnpublished { at: at(4) });
    given::<Product>(history)
        .when(C::ArchiveProduct { at: at(9) })
        .then_expect_events([E::ProductArchived { at: at(9) }]);
}

#[test]
fn archive_refuses_a_published_product() {
    let err = given::<Product>(published())
        .when(C::ArchiveProduct { at: at(9) })
        .then_expect_error();
    assert_eq!(err, ProductError::StillPublished);
}

// --- contracts ----------------------------------------------------------------------

#[test]
fn events_have_stable_names_versions_and_json() {
    let e = E::PriceChanged {
        old_price: eur(1),
        new_price: eur(2),
        at: at(0),
    };
    assert_eq!(e.event_type(), "PriceChanged");
    assert_eq!(e.event_version(), "1.0");
    let json = serde_json::to_value(&e).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"PriceChanged": {
            "old_price": {"amount_minor": 1, "currency": "EUR"},
            "new_price": {"amount_minor": 2, "currency": "EUR"},
            "at": "2023-11-14T22:13:20Z",
        }})
    );
    for event in published() {
        let back: ProductEvent =
            serde_json::from_value(serde_json::to_value(&event).unwrap()).unwrap();
        assert_eq!(back, event);
        let name = serde_json::to_value(&event).unwrap();
        assert!(name.get(event.event_type()).is_some());
    }
}

#[test]
fn state_survives_a_snapshot_round_trip() {
    let mut history = published();
    history.push(variant_added(1, "A", eur(5)));
    let product = Product::from_events(&history);
    let json = serde_json::to_string(&product).unwrap();
    let back: Product = serde_json::from_str(&json).unwrap();
    assert_eq!(back.state(), product.state());
}

#[test]
fn error_messages_are_lowercase_without_a_trailing_period() {
    let errors = [
        ProductError::NotCreated,
        ProductError::CurrencyMismatch {
            expected: Currency::EUR,
            got: Currency::USD,
        },
        ProductError::DuplicateSku(sku("A")),
        ProductError::PositivePriceRequired,
        ProductError::ImageRequired,
        ProductError::StillPublished,
    ];
    for e in errors {
        let text = e.to_string();
        assert!(text.starts_with(|c: char| c.is_lowercase()), "{text}");
        assert!(!text.ends_with('.'), "{text}");
    }
}

// --- invariants over random command sequences ---------------------------------------

const SKUS: [&str; 4] = ["TSHIRT", "A", "B", "C"];

fn any_price() -> impl Strategy<Value = Money> {
    (
        -5_i64..50,
        prop_oneof![9 => Just(Currency::EUR), 1 => Just(Currency::USD)],
    )
        .prop_map(|(m, c)| Money::new(m, c))
}

fn any_command() -> impl Strategy<Value = ProductCommand> {
    let t = (0_i64..1_000).prop_map(at);
    prop_oneof![
        3 => (any_price(), t.clone()).prop_map(|(price, at)| C::ChangePrice { price, at }),
        3 => (0_u128..4, 0..SKUS.len(), any_price(), t.clone()).prop_map(|(v, s, price, at)| {
            C::AddVariant {
                variant_id: id(v),
                sku: sku(SKUS[s]),
                size: None,
                colour: None,
                attributes: Attributes::empty(),
                price,
                at,
            }
        }),
        3 => (0_u128..4, t.clone()).prop_map(|(v, at)| C::RemoveVariant {
            variant_id: id(v),
            at
        }),
        3 => (0_u128..4, any_price(), t.clone()).prop_map(|(v, price, at)| {
            C::ChangeVariantPrice {
                variant_id: id(v),
                price,
                at,
            }
        }),
        3 => (0_u128..4, any::<bool>(), t.clone()).prop_map(|(i, primary, at)| C::AddImage {
            image_id: id(i),
            source: ImageSource::key("k").unwrap(),
            alt_text: AltText::parse("alt").unwrap(),
            primary,
            at,
        }),
        3 => (0_u128..4, t.clone()).prop_map(|(i, at)| C::RemoveImage { image_id: id(i), at }),
        3 => (0_u128..4, t.clone()).prop_map(|(i, at)| C::SetPrimaryImage { image_id: id(i), at }),
        3 => t.clone().prop_map(|at| C::PublishProduct { at }),
        3 => t.clone().prop_map(|at| C::UnpublishProduct { at }),
        3 => t.clone().prop_map(|at| C::FeatureProduct { at }),
        3 => t.clone().prop_map(|at| C::UnfeatureProduct { at }),
        1 => t.prop_map(|at| C::ArchiveProduct { at }),
    ]
}

fn check_invariants(p: &ProductState) -> Result<(), TestCaseError> {
    if !p.images.is_empty() {
        prop_assert_eq!(p.images.iter().filter(|i| i.primary).count(), 1);
    }
    let mut skus = BTreeSet::from([p.sku.clone()]);
    for v in &p.variants {
        prop_assert!(skus.insert(v.sku.clone()), "duplicate sku {}", v.sku);
    }
    let currency = p.price.currency();
    let prices = std::iter::once(p.price)
        .chain(p.variants.iter().map(|v| v.price))
        .chain(p.price_history.iter().map(|r| r.price));
    for price in prices {
        prop_assert!(!price.is_negative());
        prop_assert_eq!(price.currency(), currency);
    }
    if p.status == ProductStatus::Published {
        prop_assert!(!p.images.is_empty());
        prop_assert!(!p.price.is_zero());
        prop_assert!(p.variants.iter().all(|v| !v.price.is_zero()));
    }
    Ok(())
}

proptest! {
    #[test]
    fn product_invariants_hold_under_any_command_sequence(
        commands in prop::collection::vec(any_command(), 0..60)
    ) {
        let mut product = Product::default();
        let mut history = Vec::new();
        for e in product.handle(create_command(eur(10))).unwrap() {
            product.apply(&e);
            history.push(e);
        }
        for cmd in commands {
            let was_archived = product.state().unwrap().status == ProductStatus::Archived;
            match product.handle(cmd) {
                Ok(events) => {
                    prop_assert!(!was_archived, "an archived product accepted a command");
                    prop_assert_eq!(events.len(), 1);
                    for e in events {
                        product.apply(&e);
                        history.push(e);
                    }
                }
                Err(ProductError::NotCreated | ProductError::AlreadyCreated) => {
                    prop_assert!(false, "the product exists");
                }
                Err(_) => {}
            }
            check_invariants(product.state().unwrap())?;
        }
        // Replaying the history gives the same state.
        let replayed = Product::from_events(&history);
        prop_assert_eq!(replayed.state(), product.state());
    }
}
