//! Each rule alone, at and around its bounds, then combined.

use chrono::Duration;

use super::*;
use crate::{CountryCode, Currency, Money};

fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::EUR)
}

fn country(c: &str) -> CountryCode {
    CountryCode::parse(c).unwrap()
}

fn rules() -> FraudRules {
    FraudRules::with_defaults(eur(50_000))
}

/// A quiet, established customer: nothing fires.
fn clean() -> FraudFacts {
    FraudFacts {
        order_total: eur(6_000),
        velocity: Velocity {
            user: WindowCounts {
                last_hour: 0,
                last_day: 1,
            },
            email: WindowCounts::default(),
            ip: Some(WindowCounts::default()),
            card: Some(WindowCounts::default()),
        },
        history: CustomerHistory {
            completed_orders: 10,
            median_order: Some(eur(5_000)),
        },
        billing_country: country("DE"),
        shipping_country: country("DE"),
        account_age: Some(Duration::days(400)),
    }
}

fn signals(a: &FraudAssessment) -> Vec<FraudSignal> {
    a.reasons.iter().map(|r| r.signal.clone()).collect()
}

#[test]
fn a_clean_order_passes_with_zero() {
    let a = rules().assess(&clean()).unwrap();
    assert_eq!(
        a,
        FraudAssessment {
            score: 0,
            reasons: vec![],
            decision: FraudDecision::Pass
        }
    );
}

#[test]
fn velocity_fires_per_subject_past_the_hourly_limit() {
    for (subject, set) in [
        (
            VelocitySubject::User,
            (|f: &mut FraudFacts, c| f.velocity.user = c) as fn(&mut FraudFacts, WindowCounts),
        ),
        (VelocitySubject::Email, |f, c| f.velocity.email = c),
        (VelocitySubject::Card, |f, c| f.velocity.card = Some(c)),
    ] {
        // Two before: this is the third, allowed.
        let mut f = clean();
        set(
            &mut f,
            WindowCounts {
                last_hour: 2,
                last_day: 2,
            },
        );
        assert_eq!(rules().assess(&f).unwrap().score, 0, "{subject:?}");
        // Three before: this is the fourth.
        set(
            &mut f,
            WindowCounts {
                last_hour: 3,
                last_day: 3,
            },
        );
        let a = rules().assess(&f).unwrap();
        assert_eq!(
            signals(&a),
            vec![FraudSignal::Velocity {
                subject,
                window: VelocityWindow::Hour,
                count: 4,
                limit: 3
            }]
        );
        assert_eq!(a.score, 35);
        assert_eq!(a.decision, FraudDecision::Pass);
    }
}

#[test]
fn velocity_by_ip_is_looser_and_the_daily_window_counts_too() {
    let mut f = clean();
    f.velocity.ip = Some(WindowCounts {
        last_hour: 4,
        last_day: 4,
    });
    assert_eq!(rules().assess(&f).unwrap().score, 0);
    f.velocity.ip = Some(WindowCounts {
        last_hour: 5,
        last_day: 5,
    });
    assert_eq!(rules().assess(&f).unwrap().score, 35);
    // Spread over the day: under the hourly limit, over the daily one.
    f.velocity.ip = Some(WindowCounts {
        last_hour: 1,
        last_day: 20,
    });
    let a = rules().assess(&f).unwrap();
    assert_eq!(
        signals(&a),
        vec![FraudSignal::Velocity {
            subject: VelocitySubject::Ip,
            window: VelocityWindow::Day,
            count: 21,
            limit: 20
        }]
    );
    assert_eq!(a.score, 20);
    // Unknown IP and card: those rules do not fire.
    f.velocity.ip = None;
    f.velocity.card = None;
    assert_eq!(rules().assess(&f).unwrap().score, 0);
}

#[test]
fn an_order_far_above_the_median_fires_once_history_exists() {
    let mut f = clean();
    f.order_total = eur(15_000); // exactly 3x: not above
    assert_eq!(rules().assess(&f).unwrap().score, 0);
    f.order_total = eur(15_001);
    let a = rules().assess(&f).unwrap();
    assert_eq!(
        signals(&a),
        vec![FraudSignal::AmountAboveHistory {
            amount: eur(15_001),
            median: eur(5_000),
            multiple_bp: 30_000
        }]
    );
    assert_eq!(a.score, 30);
    // Too little history: the median means nothing yet.
    f.history.completed_orders = 2;
    assert_eq!(rules().assess(&f).unwrap().score, 0);
    f.history = CustomerHistory::default();
    assert_eq!(rules().assess(&f).unwrap().score, 0);
}

#[test]
fn differing_billing_and_shipping_countries_fire() {
    let mut f = clean();
    f.shipping_country = country("FR");
    let a = rules().assess(&f).unwrap();
    assert_eq!(
        signals(&a),
        vec![FraudSignal::CountryMismatch {
            billing: country("DE"),
            shipping: country("FR")
        }]
    );
    assert_eq!(a.score, 20);
}

#[test]
fn a_new_account_with_a_high_value_order_fires() {
    let mut f = clean();
    f.history = CustomerHistory::default();
    f.account_age = Some(Duration::hours(23));
    f.order_total = eur(49_999);
    assert_eq!(rules().assess(&f).unwrap().score, 0);
    f.order_total = eur(50_000);
    let a = rules().assess(&f).unwrap();
    assert_eq!(
        signals(&a),
        vec![FraudSignal::NewAccountHighValue {
            account_age_minutes: Some(23 * 60),
            amount: eur(50_000),
            threshold: eur(50_000)
        }]
    );
    assert_eq!(a.score, 30);
    // 24 hours old is no longer new.
    f.account_age = Some(Duration::hours(24));
    assert_eq!(rules().assess(&f).unwrap().score, 0);
    // A guest counts as new, unless configured otherwise.
    f.account_age = None;
    assert_eq!(rules().assess(&f).unwrap().score, 30);
    let lenient = FraudRules {
        guest_is_new_account: false,
        ..rules()
    };
    assert_eq!(lenient.assess(&f).unwrap().score, 0);
}

#[test]
fn rules_combine_cap_at_100_and_decide_at_the_threshold() {
    let mut f = clean();
    f.shipping_country = country("US"); // 20
    f.velocity.card = Some(WindowCounts {
        last_hour: 1,
        last_day: 10,
    }); // 20 (day)
    let a = rules().assess(&f).unwrap();
    assert_eq!((a.score, a.decision), (40, FraudDecision::Pass));

    f.velocity.user = WindowCounts {
        last_hour: 9,
        last_day: 9,
    }; // 35 (hour)
    let a = rules().assess(&f).unwrap();
    assert_eq!((a.score, a.decision), (75, FraudDecision::Review));

    // Everything at once: 35 * 4 + 30 + 20 + 30 = 220, capped.
    let busy = WindowCounts {
        last_hour: 50,
        last_day: 50,
    };
    f.velocity = Velocity {
        user: busy,
        email: busy,
        ip: Some(busy),
        card: Some(busy),
    };
    f.order_total = eur(100_000);
    f.account_age = Some(Duration::minutes(5));
    let a = rules().assess(&f).unwrap();
    assert_eq!(a.score, 100);
    assert_eq!(a.decision, FraudDecision::Review);
    assert_eq!(a.reasons.len(), 7);
    // Reasons come in rule order, and the points are the weights.
    assert!(matches!(
        a.reasons[0].signal,
        FraudSignal::Velocity {
            subject: VelocitySubject::User,
            ..
        }
    ));
    assert!(matches!(
        a.reasons[4].signal,
        FraudSignal::AmountAboveHistory { .. }
    ));
    assert!(matches!(
        a.reasons[5].signal,
        FraudSignal::CountryMismatch { .. }
    ));
    assert!(matches!(
        a.reasons[6].signal,
        FraudSignal::NewAccountHighValue { .. }
    ));
    assert_eq!(
        a.reasons.iter().map(|r| u32::from(r.points)).sum::<u32>(),
        220
    );
    // Deterministic.
    assert_eq!(rules().assess(&f).unwrap(), a);

    // The threshold is inclusive, and configurable.
    let mut f = clean();
    f.shipping_country = country("US");
    let strict = FraudRules {
        review_threshold: 20,
        ..rules()
    };
    assert_eq!(strict.assess(&f).unwrap().decision, FraudDecision::Review);
    let heavier = FraudRules {
        weights: FraudWeights {
            country_mismatch: 60,
            ..rules().weights
        },
        ..rules()
    };
    assert_eq!(heavier.assess(&f).unwrap().score, 60);
}

#[test]
fn foreign_currencies_and_broken_rules_are_refused() {
    let mut f = clean();
    f.history.median_order = Some(Money::new(5_000, Currency::USD));
    assert_eq!(
        rules().assess(&f),
        Err(FraudError::CurrencyMismatch {
            expected: Currency::EUR,
            got: Currency::USD
        })
    );
    let usd_rules = FraudRules::with_defaults(Money::new(1, Currency::USD));
    assert!(matches!(
        usd_rules.assess(&clean()),
        Err(FraudError::CurrencyMismatch { .. })
    ));
    for broken in [
        FraudRules {
            review_threshold: 101,
            ..rules()
        },
        FraudRules {
            amount_multiple_bp: 9_999,
            ..rules()
        },
        FraudRules {
            velocity: VelocityLimits {
                card: VelocityLimit {
                    per_hour: 0,
                    per_day: 10,
                },
                ..rules().velocity
            },
            ..rules()
        },
    ] {
        assert!(matches!(
            broken.assess(&clean()),
            Err(FraudError::InvalidRules(_))
        ));
    }
}

#[test]
fn the_rules_serve_behind_the_scorer_trait_and_serialise() {
    let scorer: &dyn FraudScorer = &rules();
    let mut f = clean();
    f.shipping_country = country("FR");
    let a = scorer.assess(&f).unwrap();
    assert_eq!(
        serde_json::to_value(&a).unwrap(),
        serde_json::json!({
            "score": 20,
            "reasons": [{
                "signal": {"rule": "country_mismatch", "billing": "DE", "shipping": "FR"},
                "points": 20
            }],
            "decision": "pass"
        })
    );
}
