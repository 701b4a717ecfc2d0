//! SKU and slug uniqueness across products.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::Utc;
use emporium_commands::catalog::{ProductCommandError, Products};
use emporium_domain::catalog::{Attributes, Description, ProductCommand, ProductName, Slug};
use emporium_domain::{Currency, Money, Sku};
use uuid::Uuid;

use crate::helpers::{Fixture, TestStore, for_any_store, for_each_store, meta};

for_each_store!(
    a_sku_belongs_to_one_product_even_under_concurrency,
    variant_skus_share_the_namespace_and_slugs_are_freed_on_change,
);

for_any_store!(a_sku_belongs_to_one_product_even_under_concurrency);

fn create_for(product_id: Uuid, sku: &str, slug: &str) -> ProductCommand {
    ProductCommand::CreateProduct {
        product_id,
        sku: Sku::parse(sku).unwrap(),
        slug: Slug::parse(slug).unwrap(),
        name: ProductName::parse("Enamel mug").unwrap(),
        description: Description::parse("Holds coffee.").unwrap(),
        category_id: Uuid::new_v4(),
        tags: BTreeSet::new(),
        attributes: Attributes::default(),
        price: Money::new(1_250, Currency::EUR),
        at: Utc::now(),
    }
}

async fn a_sku_belongs_to_one_product_even_under_concurrency<S: TestStore>(f: &Fixture<S>) {
    let products = Arc::new(Products::over(f.store.clone()));
    let outcomes = futures::future::join_all((0..8).map(|i| {
        let products = Arc::clone(&products);
        tokio::spawn(async move {
            let id = Uuid::new_v4();
            products
                .execute(id, create_for(id, "MUG-RED", &format!("mug-{i}")), &meta())
                .await
        })
    }))
    .await;
    let mut created = 0;
    for outcome in outcomes {
        match outcome.unwrap() {
            Ok(_) => created += 1,
            Err(ProductCommandError::SkuTaken(sku)) => assert_eq!(sku, "MUG-RED"),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(created, 1);
    // The losers' slugs were not left claimed.
    let slugs = f
        .store
        .unique_keys()
        .await
        .unwrap()
        .into_iter()
        .filter(|k| k.scope == "product_slug")
        .count();
    assert_eq!(slugs, 1);
}

async fn variant_skus_share_the_namespace_and_slugs_are_freed_on_change<S: TestStore>(
    f: &Fixture<S>,
) {
    let products = Products::over(f.store.clone());
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    products
        .execute(a, create_for(a, "TEE", "tee"), &meta())
        .await
        .unwrap();

    let variant = ProductCommand::AddVariant {
        variant_id: Uuid::new_v4(),
        sku: Sku::parse("TEE").unwrap(),
        size: None,
        colour: None,
        attributes: Attributes::default(),
        price: Money::new(1_500, Currency::EUR),
        at: Utc::now(),
    };
    // b does not exist, but the SKU check comes first and names the rule.
    let err = products.execute(b, variant, &meta()).await.unwrap_err();
    assert!(matches!(err, ProductCommandError::SkuTaken(_)), "{err:?}");

    let err = products
        .execute(b, create_for(b, "TEE-2", "tee"), &meta())
        .await
        .unwrap_err();
    assert!(matches!(err, ProductCommandError::SlugTaken(_)), "{err:?}");

    products
        .execute(
            a,
            ProductCommand::ChangeSlug {
                slug: Slug::parse("classic-tee").unwrap(),
                at: Utc::now(),
            },
            &meta(),
        )
        .await
        .unwrap();
    products
        .execute(b, create_for(b, "TEE-2", "tee"), &meta())
        .await
        .unwrap();
}
