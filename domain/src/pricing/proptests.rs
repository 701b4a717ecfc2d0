//! Invariants of quotes over random carts, rates, discounts and shipping.

use proptest::prelude::*;
use uuid::Uuid;

use super::*;
use crate::{Address, AddressInput, CountryCode, Currency, Money, Quantity, Sku};

fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::EUR)
}

fn de() -> Address {
    Address::parse(AddressInput {
        full_name: "A".into(),
        line1: "B".into(),
        city: "C".into(),
        postal_code: "D".into(),
        country: "DE".into(),
        ..AddressInput::default()
    })
    .unwrap()
}

fn lines() -> impl Strategy<Value = Vec<PricedLine>> {
    let line =
        (0i64..2_000_000, 1i64..50, 0u32..3_000).prop_map(|(price, qty, grams)| PricedLine {
            sku: Sku::parse("SKU").unwrap(),
            product_id: Uuid::nil(),
            name: "thing".into(),
            unit_price: eur(price),
            quantity: Quantity::new(qty).unwrap(),
            unit_weight_grams: grams,
        });
    prop::collection::vec(line, 1..6)
}

fn discount() -> impl Strategy<Value = Option<Discount>> {
    prop_oneof![
        1 => Just(None),
        2 => (1u32..=10_000).prop_map(|bp| Some(Discount::percentage(bp).unwrap())),
        2 => (1i64..50_000_000).prop_map(|m| Some(Discount::fixed(eur(m)).unwrap())),
    ]
}

fn shipping_rate() -> impl Strategy<Value = ShippingRate> {
    prop_oneof![
        (0i64..5_000).prop_map(|m| ShippingRate::Flat(eur(m))),
        (0i64..5_000).prop_map(|m| ShippingRate::ByWeight(vec![
            WeightTier {
                up_to_grams: 1_000,
                price: eur(m)
            },
            WeightTier {
                up_to_grams: u32::MAX,
                price: eur(m * 3)
            },
        ])),
    ]
}

fn pricing(
    mode: TaxMode,
    bp: u32,
    shipping_taxable: bool,
    rate: ShippingRate,
    free_over: Option<i64>,
) -> Pricing {
    let de = CountryCode::parse("DE").unwrap();
    let tax = TaxTable::new(
        mode,
        vec![
            TaxRule::country(de.clone(), TaxRate::from_basis_points(bp).unwrap())
                .with_shipping_taxable(shipping_taxable),
        ],
    )
    .unwrap();
    let method = ShippingMethod::new(
        ShippingMethodCode::parse("standard").unwrap(),
        "Standard",
        vec![ZoneRate {
            zone: ShippingZone::new("home", [de]).unwrap(),
            rate,
            free_over: free_over.map(eur),
        }],
    )
    .unwrap();
    Pricing::new(Currency::EUR, tax, vec![method]).unwrap()
}

fn minor(m: Money) -> i128 {
    i128::from(m.amount_minor())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn totals_always_add_up(
        lines in lines(),
        discount in discount(),
        inclusive in any::<bool>(),
        bp in prop_oneof![Just(0u32), 0u32..3_000, 0u32..=10_000],
        shipping_taxable in any::<bool>(),
        rate in shipping_rate(),
        free_over in prop::option::of(0i64..10_000_000),
    ) {
        let mode = if inclusive { TaxMode::TaxInclusive } else { TaxMode::TaxExclusive };
        let p = pricing(mode, bp, shipping_taxable, rate, free_over);
        let method = ShippingMethodCode::parse("standard").unwrap();
        let q = p.quote(&lines, &de(), &method, discount.as_ref()).unwrap();

        // Lines: totals are price times quantity; shares and taxes add up exactly.
        for (l, input) in q.lines().iter().zip(&lines) {
            prop_assert_eq!(minor(l.line_total), minor(input.unit_price) * i128::from(input.quantity.get()));
            prop_assert!(!l.discount.is_negative() && l.discount.amount_minor() <= l.line_total.amount_minor());
            prop_assert!(!l.tax.is_negative());
        }
        prop_assert_eq!(minor(q.subtotal()), q.lines().iter().map(|l| minor(l.line_total)).sum::<i128>());
        prop_assert_eq!(minor(q.discount()), q.lines().iter().map(|l| minor(l.discount)).sum::<i128>());
        prop_assert_eq!(minor(q.tax()), q.lines().iter().map(|l| minor(l.tax)).sum::<i128>() + minor(q.shipping_tax()));
        prop_assert!(q.discount().amount_minor() <= q.subtotal().amount_minor());
        prop_assert!(!q.shipping().is_negative());
        if !shipping_taxable {
            prop_assert!(q.shipping_tax().is_zero());
        }

        // Each rounded tax is within half a minor unit of the exact one.
        let exact_tax = |base: i128| -> (i128, i128) {
            let r = i128::from(bp);
            match mode {
                TaxMode::TaxExclusive => (base * r, 10_000),
                TaxMode::TaxInclusive => (base * r, 10_000 + r),
            }
        };
        for l in q.lines() {
            let (num, den) = exact_tax(minor(l.line_total) - minor(l.discount));
            prop_assert!((minor(l.tax) * den - num).abs() * 2 <= den);
        }

        let merchandise = minor(q.subtotal()) - minor(q.discount());
        match mode {
            TaxMode::TaxExclusive => {
                prop_assert_eq!(minor(q.total()), merchandise + minor(q.shipping()) + minor(q.tax()));
                prop_assert_eq!(q.tax_added(), q.tax());
            }
            TaxMode::TaxInclusive => {
                // The tax is contained in what is paid.
                prop_assert_eq!(minor(q.total()), merchandise + minor(q.shipping()));
                prop_assert!(minor(q.tax()) <= minor(q.total()));
                prop_assert!(q.tax_added().is_zero());
            }
        }
        prop_assert!(!q.total().is_negative());
        prop_assert_eq!(q.subtotal().currency(), Currency::EUR);
        prop_assert_eq!(q.total().currency(), Currency::EUR);
    }

    /// Huge prices and quantities are refused as overflow, never a panic or a wrap.
    #[test]
    fn huge_amounts_never_panic(
        price in 0i64..=i64::MAX,
        qty in 1i64..=i64::from(Quantity::MAX),
        bp in 0u32..=10_000,
        inclusive in any::<bool>(),
    ) {
        let mode = if inclusive { TaxMode::TaxInclusive } else { TaxMode::TaxExclusive };
        let p = pricing(mode, bp, true, ShippingRate::Flat(eur(1)), None);
        let line = PricedLine {
            sku: Sku::parse("SKU").unwrap(),
            product_id: Uuid::nil(),
            name: "thing".into(),
            unit_price: eur(price),
            quantity: Quantity::new(qty).unwrap(),
            unit_weight_grams: u32::MAX,
        };
        let method = ShippingMethodCode::parse("standard").unwrap();
        match p.quote(&[line.clone(), line], &de(), &method, None) {
            Ok(q) => prop_assert!(!q.total().is_negative()),
            Err(e) => prop_assert_eq!(e, PricingError::Overflow),
        }
    }
}
