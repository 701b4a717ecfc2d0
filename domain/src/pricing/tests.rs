//! Quotes, worked by hand: taxes by country and region, both tax modes, shipping
//! zones and rates, discounts, and every refusal.

use chrono::{TimeZone, Utc};
use uuid::Uuid;

use super::*;
use crate::aggregate::Aggregate;
use crate::order::{Order, OrderCommand, OrderEvent};
use crate::{Address, AddressInput, CountryCode, Currency, Money, Quantity, Sku};

fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::EUR)
}

fn country(code: &str) -> CountryCode {
    CountryCode::parse(code).unwrap()
}

fn address(country: &str, region: Option<&str>) -> Address {
    Address::parse(AddressInput {
        full_name: "Ada Lovelace".into(),
        line1: "1 Main Street".into(),
        city: "Somewhere".into(),
        region: region.map(Into::into),
        postal_code: "12345".into(),
        country: country.into(),
        ..AddressInput::default()
    })
    .unwrap()
}

fn line(sku: &str, unit_price: i64, quantity: i64, grams: u32) -> PricedLine {
    PricedLine {
        sku: Sku::parse(sku).unwrap(),
        product_id: Uuid::from_u128(7),
        name: format!("Product {sku}"),
        unit_price: eur(unit_price),
        quantity: Quantity::new(quantity).unwrap(),
        unit_weight_grams: grams,
    }
}

fn code(c: &str) -> ShippingMethodCode {
    ShippingMethodCode::parse(c).unwrap()
}

fn rate(bp: u32) -> TaxRate {
    TaxRate::from_basis_points(bp).unwrap()
}

/// Standard: flat 4.90 in the EU zone (free from 50.00), weight tiers to the US.
/// Express: flat 14.90, EU only.
fn methods() -> Vec<ShippingMethod> {
    let eu = ShippingZone::new("EU", [country("DE"), country("FR"), country("AT")]).unwrap();
    let us = ShippingZone::new("US", [country("US")]).unwrap();
    vec![
        ShippingMethod::new(
            code("standard"),
            "Standard",
            vec![
                ZoneRate {
                    zone: eu.clone(),
                    rate: ShippingRate::Flat(eur(490)),
                    free_over: Some(eur(5_000)),
                },
                ZoneRate {
                    zone: us,
                    rate: ShippingRate::ByWeight(vec![
                        WeightTier {
                            up_to_grams: 500,
                            price: eur(900),
                        },
                        WeightTier {
                            up_to_grams: 2_000,
                            price: eur(1_500),
                        },
                        WeightTier {
                            up_to_grams: 10_000,
                            price: eur(3_000),
                        },
                    ]),
                    free_over: None,
                },
            ],
        )
        .unwrap(),
        ShippingMethod::new(
            code("express"),
            "Express",
            vec![ZoneRate {
                zone: eu,
                rate: ShippingRate::Flat(eur(1_490)),
                free_over: None,
            }],
        )
        .unwrap(),
    ]
}

fn pricing(mode: TaxMode) -> Pricing {
    let tax = TaxTable::new(
        mode,
        vec![
            TaxRule::country(country("DE"), rate(1_900)),
            TaxRule::country(country("AT"), rate(2_000)).with_shipping_taxable(false),
            TaxRule::region(country("US"), "CA", rate(725)).unwrap(),
            TaxRule::country(country("US"), rate(0)),
        ],
    )
    .unwrap();
    Pricing::new(Currency::EUR, tax, methods()).unwrap()
}

fn pct(bp: u32) -> Discount {
    Discount::percentage(bp).unwrap()
}

#[test]
fn exclusive_prices_add_tax_per_line_and_on_shipping() {
    let q = pricing(TaxMode::TaxExclusive)
        .quote(
            &[line("A", 1_999, 1, 100), line("B", 1_050, 1, 100)],
            &address("DE", None),
            &code("standard"),
            None,
        )
        .unwrap();
    // 19.99 * 19 % = 3.7981 -> 3.80; 10.50 * 19 % = 1.995 -> 2.00 (half away);
    // shipping 4.90 * 19 % = 0.931 -> 0.93.
    assert_eq!(q.subtotal(), eur(3_049));
    assert_eq!(
        q.lines().iter().map(|l| l.tax).collect::<Vec<_>>(),
        vec![eur(380), eur(200)]
    );
    assert_eq!(q.shipping(), eur(490));
    assert_eq!(q.shipping_tax(), eur(93));
    assert_eq!(q.tax(), eur(673));
    assert_eq!(q.discount(), eur(0));
    assert_eq!(q.total(), eur(3_049 + 490 + 673));
    assert_eq!(q.tax_added(), q.tax());
    assert_eq!(q.tax_rate(), rate(1_900));
    assert_eq!(q.weight_grams(), 200);
}

#[test]
fn inclusive_prices_contain_the_tax() {
    let q = pricing(TaxMode::TaxInclusive)
        .quote(
            &[line("A", 11_900, 1, 0), line("B", 1_000, 3, 0)],
            &address("DE", None),
            &code("express"),
            None,
        )
        .unwrap();
    // 119.00 contains 19.00; 30.00 contains 4.789... -> 4.79; 14.90 contains 2.379 -> 2.38.
    assert_eq!(
        q.lines().iter().map(|l| l.tax).collect::<Vec<_>>(),
        vec![eur(1_900), eur(479)]
    );
    assert_eq!(q.shipping_tax(), eur(238));
    assert_eq!(q.tax(), eur(1_900 + 479 + 238));
    assert_eq!(q.total(), eur(11_900 + 3_000 + 1_490));
    assert_eq!(q.tax_added(), eur(0));
}

#[test]
fn a_region_rule_wins_over_the_country_rule() {
    let p = pricing(TaxMode::TaxExclusive);
    let lines = [line("A", 10_000, 1, 400)];
    for region in ["CA", "ca", "US-CA", " us-ca "] {
        let q = p
            .quote(
                &lines,
                &address("US", Some(region)),
                &code("standard"),
                None,
            )
            .unwrap();
        // 100.00 * 7.25 % = 7.25; shipping 9.00 * 7.25 % = 0.6525 -> 0.65.
        assert_eq!(q.tax(), eur(725 + 65), "region {region}");
    }
    let q = p
        .quote(&lines, &address("US", Some("NY")), &code("standard"), None)
        .unwrap();
    assert_eq!(q.tax(), eur(0));
    assert_eq!(q.tax_rate(), TaxRate::ZERO);
}

#[test]
fn a_destination_without_a_rule_is_not_taxed() {
    let q = pricing(TaxMode::TaxExclusive)
        .quote(
            &[line("A", 10_000, 1, 0)],
            &address("FR", None),
            &code("express"),
            None,
        )
        .unwrap();
    assert_eq!(q.tax(), eur(0));
    assert_eq!(q.total(), eur(10_000 + 1_490));
}

#[test]
fn shipping_can_be_exempt_from_tax() {
    let q = pricing(TaxMode::TaxExclusive)
        .quote(
            &[line("A", 1_000, 1, 0)],
            &address("AT", None),
            &code("standard"),
            None,
        )
        .unwrap();
    assert_eq!(q.shipping(), eur(490));
    assert_eq!(q.shipping_tax(), eur(0));
    assert_eq!(q.tax(), eur(200));
}

#[test]
fn weight_tiers_are_inclusive_upper_bounds() {
    let p = pricing(TaxMode::TaxExclusive);
    let to_us = address("US", None);
    let price = |grams: u32| {
        p.quote(&[line("A", 100, 1, grams)], &to_us, &code("standard"), None)
            .map(|q| q.shipping())
    };
    assert_eq!(price(0), Ok(eur(900)));
    assert_eq!(price(500), Ok(eur(900)));
    assert_eq!(price(501), Ok(eur(1_500)));
    assert_eq!(price(2_000), Ok(eur(1_500)));
    assert_eq!(price(10_000), Ok(eur(3_000)));
    assert_eq!(
        price(10_001),
        Err(PricingError::TooHeavy {
            method: code("standard"),
            grams: 10_001,
            max_grams: 10_000,
        })
    );
    // Weight is per unit times quantity, over all lines.
    let q = p
        .quote(
            &[line("A", 100, 3, 200), line("B", 100, 1, 1_400)],
            &to_us,
            &code("standard"),
            None,
        )
        .unwrap();
    assert_eq!(q.weight_grams(), 2_000);
    assert_eq!(q.shipping(), eur(1_500));
}

#[test]
fn shipping_is_free_from_the_threshold_after_discount() {
    let p = pricing(TaxMode::TaxExclusive);
    let de = address("DE", None);
    let at_threshold = p
        .quote(&[line("A", 5_000, 1, 0)], &de, &code("standard"), None)
        .unwrap();
    assert_eq!(at_threshold.shipping(), eur(0));
    assert_eq!(at_threshold.shipping_tax(), eur(0));
    let below = p
        .quote(&[line("A", 4_999, 1, 0)], &de, &code("standard"), None)
        .unwrap();
    assert_eq!(below.shipping(), eur(490));
    // A discount that takes the merchandise below the threshold brings shipping back.
    let discounted = p
        .quote(
            &[line("A", 5_000, 1, 0)],
            &de,
            &code("standard"),
            Some(&pct(1_000)),
        )
        .unwrap();
    assert_eq!(discounted.discount(), eur(500));
    assert_eq!(discounted.shipping(), eur(490));
}

#[test]
fn a_percentage_discount_is_shared_by_the_lines_and_taxed_after() {
    let q = pricing(TaxMode::TaxExclusive)
        .quote(
            &[
                line("A", 1_000, 1, 0),
                line("B", 1_000, 1, 0),
                line("C", 1_000, 1, 0),
            ],
            &address("DE", None),
            &code("express"),
            Some(&pct(1_000)),
        )
        .unwrap();
    // 10 % of 30.00 = 3.00 = 1.00 per line; tax 19 % of 9.00 = 1.71 per line.
    assert_eq!(q.discount(), eur(300));
    assert!(q.lines().iter().all(|l| l.discount == eur(100)));
    assert!(q.lines().iter().all(|l| l.tax == eur(171)));
    assert_eq!(q.shipping_tax(), eur(283)); // 14.90 * 19 % = 2.831
    assert_eq!(q.tax(), eur(3 * 171 + 283));
    assert_eq!(q.total(), eur(3_000 - 300 + 1_490 + 3 * 171 + 283));

    // An uneven split: 1.00 over three equal lines is 34 + 33 + 33.
    let q = pricing(TaxMode::TaxExclusive)
        .quote(
            &[
                line("A", 1_000, 1, 0),
                line("B", 1_000, 1, 0),
                line("C", 1_000, 1, 0),
            ],
            &address("FR", None),
            &code("express"),
            Some(&Discount::fixed(eur(100)).unwrap()),
        )
        .unwrap();
    assert_eq!(
        q.lines().iter().map(|l| l.discount).collect::<Vec<_>>(),
        vec![eur(34), eur(33), eur(33)]
    );
}

#[test]
fn a_fixed_discount_never_exceeds_the_subtotal_nor_touches_shipping() {
    let q = pricing(TaxMode::TaxExclusive)
        .quote(
            &[line("A", 1_000, 1, 0)],
            &address("DE", None),
            &code("express"),
            Some(&Discount::fixed(eur(5_000)).unwrap()),
        )
        .unwrap();
    assert_eq!(q.discount(), eur(1_000));
    assert_eq!(q.lines()[0].tax, eur(0));
    assert_eq!(q.total(), eur(1_490 + 283));
}

#[test]
fn refusals_are_typed() {
    let p = pricing(TaxMode::TaxExclusive);
    let de = address("DE", None);
    let standard = code("standard");
    assert_eq!(
        p.quote(&[], &de, &standard, None),
        Err(PricingError::NoLines)
    );
    let usd = PricedLine {
        unit_price: Money::new(100, Currency::USD),
        ..line("A", 0, 1, 0)
    };
    assert_eq!(
        p.quote(&[usd], &de, &standard, None),
        Err(PricingError::CurrencyMismatch {
            expected: Currency::EUR,
            got: Currency::USD
        })
    );
    assert_eq!(
        p.quote(&[line("A", -1, 1, 0)], &de, &standard, None),
        Err(PricingError::NegativePrice {
            sku: Sku::parse("A").unwrap()
        })
    );
    let blank = PricedLine {
        name: "  ".into(),
        ..line("A", 1, 1, 0)
    };
    assert!(matches!(
        p.quote(&[blank], &de, &standard, None),
        Err(PricingError::BlankLineName { .. })
    ));
    assert_eq!(
        p.quote(&[line("A", 100, 1, 0)], &de, &code("overnight"), None),
        Err(PricingError::UnknownShippingMethod {
            method: code("overnight")
        })
    );
    assert_eq!(
        p.quote(
            &[line("A", 100, 1, 0)],
            &address("US", None),
            &code("express"),
            None
        ),
        Err(PricingError::NoShippingToCountry {
            method: code("express"),
            country: country("US")
        })
    );
    let usd_coupon = Discount::fixed(Money::new(100, Currency::USD)).unwrap();
    assert!(matches!(
        p.quote(&[line("A", 100, 1, 0)], &de, &standard, Some(&usd_coupon)),
        Err(PricingError::CurrencyMismatch { .. })
    ));
    assert_eq!(
        p.quote(&[line("A", i64::MAX / 2, 3, 0)], &de, &standard, None),
        Err(PricingError::Overflow)
    );
    assert_eq!(
        p.quote(
            &[
                line("A", i64::MAX / 3, 1, 0),
                line("B", i64::MAX / 3, 1, 0),
                line("C", i64::MAX / 3, 1, 0)
            ],
            &de,
            &standard,
            None
        ),
        Err(PricingError::Overflow)
    );
}

#[test]
fn invalid_configurations_are_refused() {
    assert_eq!(
        TaxRate::from_basis_points(10_001),
        Err(PricingConfigError::TaxRateOutOfRange {
            basis_points: 10_001
        })
    );
    assert!(serde_json::from_str::<TaxRate>("10001").is_err());
    assert_eq!(
        TaxRule::region(country("US"), " us- ", rate(1)),
        Err(PricingConfigError::InvalidRegion)
    );
    assert!(matches!(
        TaxTable::new(
            TaxMode::TaxExclusive,
            vec![
                TaxRule::region(country("US"), "ca", rate(1)).unwrap(),
                TaxRule::region(country("US"), "US-CA", rate(2)).unwrap(),
            ]
        ),
        Err(PricingConfigError::DuplicateTaxRule { .. })
    ));
    assert!(ShippingMethodCode::parse("Next Day").is_err());
    assert!(ShippingMethodCode::parse("").is_err());
    assert_eq!(code(" Express ").as_str(), "express");
    assert!(matches!(
        ShippingZone::new("EU", []),
        Err(PricingConfigError::EmptyZone { .. })
    ));
    assert_eq!(
        ShippingZone::new(" ", [country("DE")]),
        Err(PricingConfigError::BlankName { what: "zone" })
    );
    let zone = |c: &str| ShippingZone::new(c, [country(c), country("DE")]).unwrap();
    let flat = |minor| ShippingRate::Flat(eur(minor));
    assert!(matches!(
        ShippingMethod::new(
            code("x"),
            "X",
            vec![
                ZoneRate {
                    zone: zone("FR"),
                    rate: flat(1),
                    free_over: None
                },
                ZoneRate {
                    zone: zone("AT"),
                    rate: flat(1),
                    free_over: None
                },
            ]
        ),
        Err(PricingConfigError::OverlappingZones { .. })
    ));
    assert!(matches!(
        ShippingMethod::new(code("x"), "X", vec![]),
        Err(PricingConfigError::NoRates { .. })
    ));
    let tiers = |bounds: &[u32]| {
        ShippingRate::ByWeight(
            bounds
                .iter()
                .map(|g| WeightTier {
                    up_to_grams: *g,
                    price: eur(1),
                })
                .collect(),
        )
    };
    for bad in [tiers(&[]), tiers(&[500, 500]), tiers(&[1_000, 500])] {
        assert_eq!(
            ShippingMethod::new(
                code("x"),
                "X",
                vec![ZoneRate {
                    zone: zone("FR"),
                    rate: bad,
                    free_over: None
                }]
            ),
            Err(PricingConfigError::InvalidWeightTiers)
        );
    }
    assert_eq!(
        ShippingMethod::new(
            code("x"),
            "X",
            vec![ZoneRate {
                zone: zone("FR"),
                rate: flat(1),
                free_over: Some(eur(-1))
            }]
        ),
        Err(PricingConfigError::NegativeAmount)
    );
    let tax = TaxTable::new(TaxMode::TaxExclusive, vec![]).unwrap();
    assert_eq!(
        Pricing::new(Currency::USD, tax.clone(), methods()),
        Err(PricingConfigError::CurrencyMismatch {
            expected: Currency::USD,
            got: Currency::EUR
        })
    );
    let mut twice = methods();
    twice.push(methods().remove(0));
    assert!(matches!(
        Pricing::new(Currency::EUR, tax, twice),
        Err(PricingConfigError::DuplicateMethod { .. })
    ));
}

#[test]
fn methods_to_lists_what_ships_to_a_country() {
    let p = pricing(TaxMode::TaxExclusive);
    let names = |c: &str| {
        let c = country(c);
        p.methods_to(&c)
            .map(|m| m.code().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(names("DE"), vec!["standard", "express"]);
    assert_eq!(names("US"), vec!["standard"]);
    assert!(names("JP").is_empty());
}

#[test]
fn discounts_validate_and_serialise_with_a_kind() {
    assert_eq!(
        Discount::percentage(0),
        Err(PricingConfigError::PercentageOutOfRange { basis_points: 0 })
    );
    assert!(Discount::percentage(10_001).is_err());
    assert_eq!(
        Discount::fixed(eur(0)),
        Err(PricingConfigError::NonPositiveFixedDiscount)
    );
    let d = pct(1_500);
    assert_eq!(d.as_percentage(), Some(1_500));
    assert_eq!(d.as_fixed(), None);
    let json = serde_json::to_value(d).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"kind": "percentage", "basis_points": 1500})
    );
    assert_eq!(serde_json::from_value::<Discount>(json).unwrap(), d);
    assert!(
        serde_json::from_value::<Discount>(
            serde_json::json!({"kind": "percentage", "basis_points": 0})
        )
        .is_err()
    );
    // 12.5 % of 0.99 = 0.12375 -> 0.12; 100 % takes everything.
    assert_eq!(pct(1_250).amount_for(eur(99)), Ok(eur(12)));
    assert_eq!(pct(10_000).amount_for(eur(99)), Ok(eur(99)));
    assert_eq!(pct(10_000).amount_for(eur(0)), Ok(eur(0)));
}

/// A quote places an order whose grand total is the quote's total, in both modes.
#[test]
fn an_order_placed_from_a_quote_charges_the_quote_total() {
    for mode in [TaxMode::TaxExclusive, TaxMode::TaxInclusive] {
        let de = address("DE", None);
        let q = pricing(mode)
            .quote(
                &[line("A", 1_999, 2, 0), line("B", 1_050, 1, 0)],
                &de,
                &code("standard"),
                Some(&pct(1_500)),
            )
            .unwrap();
        let events = Order::default()
            .handle(OrderCommand::PlaceOrder {
                order_id: Uuid::from_u128(1),
                customer_id: Uuid::from_u128(2),
                lines: q.order_lines(),
                tax_total: q.tax_added(),
                shipping_total: q.shipping(),
                discount_total: q.discount(),
                shipping_address: de.clone(),
                billing_address: de,
                currency: q.currency(),
                at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
            })
            .unwrap();
        let [OrderEvent::OrderPlaced { grand_total, .. }] = events.as_slice() else {
            panic!("expected OrderPlaced, got {events:?}");
        };
        assert_eq!(*grand_total, q.total(), "{mode:?}");
    }
}

#[test]
fn a_configuration_deserialises_through_the_same_validation() {
    let json = serde_json::json!({
        "currency": "EUR",
        "tax": {
            "mode": "tax_exclusive",
            "rules": [
                {"country": "DE", "rate_bp": 1900},
                {"country": "AT", "rate_bp": 2000, "shipping_taxable": false},
                {"country": "US", "region": "CA", "rate_bp": 725},
                {"country": "US", "rate_bp": 0}
            ]
        },
        "methods": [
            {
                "code": "standard",
                "name": "Standard",
                "rates": [
                    {
                        "zone": {"name": "EU", "countries": ["DE", "FR", "AT"]},
                        "rate": {"flat": {"amount_minor": 490, "currency": "EUR"}},
                        "free_over": {"amount_minor": 5000, "currency": "EUR"}
                    },
                    {
                        "zone": {"name": "US", "countries": ["US"]},
                        "rate": {"by_weight": [
                            {"up_to_grams": 500, "price": {"amount_minor": 900, "currency": "EUR"}},
                            {"up_to_grams": 2000, "price": {"amount_minor": 1500, "currency": "EUR"}},
                            {"up_to_grams": 10000, "price": {"amount_minor": 3000, "currency": "EUR"}}
                        ]}
                    }
                ]
            },
            {
                "code": "express",
                "name": "Express",
                "rates": [{
                    "zone": {"name": "EU", "countries": ["DE", "FR", "AT"]},
                    "rate": {"flat": {"amount_minor": 1490, "currency": "EUR"}}
                }]
            }
        ]
    });
    let parsed: Pricing = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(parsed, pricing(TaxMode::TaxExclusive));

    // Invalid configurations are refused with the constructor's reason.
    let mut overlapping = json.clone();
    overlapping["methods"][0]["rates"][1]["zone"]["countries"] = serde_json::json!(["US", "DE"]);
    let err = serde_json::from_value::<Pricing>(overlapping).unwrap_err();
    assert!(
        err.to_string().contains("DE in more than one zone"),
        "{err}"
    );
    let mut too_high = json.clone();
    too_high["tax"]["rules"][0]["rate_bp"] = serde_json::json!(10_001);
    assert!(serde_json::from_value::<Pricing>(too_high).is_err());
    let mut unknown = json;
    unknown["tax"]["rules"][0]["rate"] = serde_json::json!(19);
    assert!(serde_json::from_value::<Pricing>(unknown).is_err());
}
