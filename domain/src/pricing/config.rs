//! The configuration a quote is computed from: tax rules and shipping methods.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::error::PricingConfigError;
use crate::{Address, CountryCode, Currency, Money};

/// A tax rate in basis points: 0 to 10000 (100 %). 1900 is 19 %.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct TaxRate(u32);

impl TaxRate {
    /// No tax.
    pub const ZERO: Self = Self(0);

    /// Validates a rate.
    ///
    /// # Errors
    /// [`PricingConfigError::TaxRateOutOfRange`] above 10000.
    pub fn from_basis_points(basis_points: u32) -> Result<Self, PricingConfigError> {
        if basis_points <= 10_000 {
            Ok(Self(basis_points))
        } else {
            Err(PricingConfigError::TaxRateOutOfRange { basis_points })
        }
    }

    /// The rate in basis points.
    #[must_use]
    pub const fn basis_points(self) -> u32 {
        self.0
    }
}

impl TryFrom<u32> for TaxRate {
    type Error = PricingConfigError;
    fn try_from(bp: u32) -> Result<Self, Self::Error> {
        Self::from_basis_points(bp)
    }
}

impl From<TaxRate> for u32 {
    fn from(r: TaxRate) -> Self {
        r.0
    }
}

/// Whether catalog prices include tax.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaxMode {
    /// Prices are net; tax is added on top (US style).
    TaxExclusive,
    /// Prices are gross; the tax is contained in them (EU consumer style).
    TaxInclusive,
}

/// The tax of one destination: a country, optionally narrowed to a region.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "TaxRuleSpec")]
pub struct TaxRule {
    country: CountryCode,
    region: Option<String>,
    rate: TaxRate,
    shipping_taxable: bool,
}

/// The longest region a rule may name.
const MAX_REGION: usize = 64;

/// Normalises a region for comparison: trimmed, upper case, without a leading
/// `<country>-` (so `ca`, `CA` and `US-CA` are one region of `US`).
fn normalise_region(country: &CountryCode, raw: &str) -> Option<String> {
    let upper = raw.trim().to_uppercase();
    let prefix = format!("{}-", country.as_str());
    let region = upper.strip_prefix(&prefix).unwrap_or(&upper).trim();
    (!region.is_empty()).then(|| region.to_owned())
}

/// A tax rule as configured: `{ country = "US", region = "CA", rate_bp = 725 }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TaxRuleSpec {
    country: CountryCode,
    region: Option<String>,
    rate_bp: TaxRate,
    #[serde(default = "taxed")]
    shipping_taxable: bool,
}

const fn taxed() -> bool {
    true
}

impl TryFrom<TaxRuleSpec> for TaxRule {
    type Error = PricingConfigError;
    fn try_from(spec: TaxRuleSpec) -> Result<Self, Self::Error> {
        let rule = match spec.region {
            Some(region) => Self::region(spec.country, &region, spec.rate_bp)?,
            None => Self::country(spec.country, spec.rate_bp),
        };
        Ok(rule.with_shipping_taxable(spec.shipping_taxable))
    }
}

impl TaxRule {
    /// A rule for a whole country. Shipping is taxed unless
    /// [`TaxRule::with_shipping_taxable`] says otherwise.
    #[must_use]
    pub fn country(country: CountryCode, rate: TaxRate) -> Self {
        Self {
            country,
            region: None,
            rate,
            shipping_taxable: true,
        }
    }

    /// A rule for one region of a country (a US state, a Canadian province). The
    /// region is compared with the address's region case-insensitively, with or
    /// without the `<country>-` prefix of ISO 3166-2 (`CA` or `US-CA`).
    ///
    /// # Errors
    /// [`PricingConfigError::InvalidRegion`] for a blank or overlong region.
    pub fn region(
        country: CountryCode,
        region: &str,
        rate: TaxRate,
    ) -> Result<Self, PricingConfigError> {
        let region = normalise_region(&country, region)
            .filter(|r| r.chars().count() <= MAX_REGION)
            .ok_or(PricingConfigError::InvalidRegion)?;
        Ok(Self {
            country,
            region: Some(region),
            rate,
            shipping_taxable: true,
        })
    }

    /// Whether shipping charges are taxed at this rule's rate.
    #[must_use]
    pub fn with_shipping_taxable(self, shipping_taxable: bool) -> Self {
        Self {
            shipping_taxable,
            ..self
        }
    }

    /// The rate.
    #[must_use]
    pub fn rate(&self) -> TaxRate {
        self.rate
    }

    /// Whether shipping is taxed.
    #[must_use]
    pub fn shipping_taxable(&self) -> bool {
        self.shipping_taxable
    }
}

/// Every tax rule, and whether prices include tax.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "TaxTableSpec")]
pub struct TaxTable {
    mode: TaxMode,
    rules: Vec<TaxRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TaxTableSpec {
    mode: TaxMode,
    #[serde(default)]
    rules: Vec<TaxRule>,
}

impl TryFrom<TaxTableSpec> for TaxTable {
    type Error = PricingConfigError;
    fn try_from(spec: TaxTableSpec) -> Result<Self, Self::Error> {
        Self::new(spec.mode, spec.rules)
    }
}

impl TaxTable {
    /// A table; at most one rule per country and region.
    ///
    /// # Errors
    /// [`PricingConfigError::DuplicateTaxRule`].
    pub fn new(mode: TaxMode, rules: Vec<TaxRule>) -> Result<Self, PricingConfigError> {
        let mut seen = BTreeSet::new();
        for rule in &rules {
            if !seen.insert((rule.country.clone(), rule.region.clone())) {
                return Err(PricingConfigError::DuplicateTaxRule {
                    country: rule.country.clone(),
                    region: rule.region.clone(),
                });
            }
        }
        Ok(Self { mode, rules })
    }

    /// Whether prices include tax.
    #[must_use]
    pub fn mode(&self) -> TaxMode {
        self.mode
    }

    /// The rule for a destination: its region's rule if there is one, else its
    /// country's, else none (the destination is not taxed).
    #[must_use]
    pub fn rule_for(&self, address: &Address) -> Option<&TaxRule> {
        let country = address.country();
        let region = address.region().and_then(|r| normalise_region(country, r));
        let in_country = |r: &&TaxRule| r.country == *country;
        region
            .and_then(|region| {
                self.rules
                    .iter()
                    .filter(in_country)
                    .find(|r| r.region.as_deref() == Some(region.as_str()))
            })
            .or_else(|| {
                self.rules
                    .iter()
                    .filter(in_country)
                    .find(|r| r.region.is_none())
            })
    }
}

/// A named set of countries shipped to at one rate.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "ShippingZoneSpec")]
pub struct ShippingZone {
    name: String,
    countries: BTreeSet<CountryCode>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShippingZoneSpec {
    name: String,
    countries: Vec<CountryCode>,
}

impl TryFrom<ShippingZoneSpec> for ShippingZone {
    type Error = PricingConfigError;
    fn try_from(spec: ShippingZoneSpec) -> Result<Self, Self::Error> {
        Self::new(&spec.name, spec.countries)
    }
}

impl ShippingZone {
    /// A zone; a name and at least one country.
    ///
    /// # Errors
    /// [`PricingConfigError::BlankName`], [`PricingConfigError::EmptyZone`].
    pub fn new(
        name: &str,
        countries: impl IntoIterator<Item = CountryCode>,
    ) -> Result<Self, PricingConfigError> {
        let name = name.trim().to_owned();
        if name.is_empty() {
            return Err(PricingConfigError::BlankName { what: "zone" });
        }
        let countries: BTreeSet<CountryCode> = countries.into_iter().collect();
        if countries.is_empty() {
            return Err(PricingConfigError::EmptyZone { zone: name });
        }
        Ok(Self { name, countries })
    }

    /// The zone's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the zone includes `country`.
    #[must_use]
    pub fn contains(&self, country: &CountryCode) -> bool {
        self.countries.contains(country)
    }
}

/// One weight tier: parcels up to and including `up_to_grams` cost `price`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightTier {
    /// The heaviest parcel of this tier, in grams (inclusive).
    pub up_to_grams: u32,
    /// Its price.
    pub price: Money,
}

/// How a zone's shipping is priced (configured as `{ flat = <money> }` or
/// `{ by_weight = [<tier>, ...] }`; validated by [`ShippingMethod::new`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShippingRate {
    /// One price whatever the weight.
    Flat(Money),
    /// By the parcel's total weight: the first tier that holds it. Strictly
    /// ascending by weight; heavier parcels than the last tier are refused.
    ByWeight(Vec<WeightTier>),
}

impl ShippingRate {
    fn amounts(&self) -> Vec<Money> {
        match self {
            Self::Flat(price) => vec![*price],
            Self::ByWeight(tiers) => tiers.iter().map(|t| t.price).collect(),
        }
    }

    fn validate(&self) -> Result<(), PricingConfigError> {
        if let Self::ByWeight(tiers) = self {
            let ascending = tiers
                .windows(2)
                .all(|w| w[0].up_to_grams < w[1].up_to_grams);
            if tiers.is_empty() || !ascending {
                return Err(PricingConfigError::InvalidWeightTiers);
            }
        }
        Ok(())
    }

    /// The price of a parcel of `grams`, or the heaviest tier's bound when the parcel
    /// is heavier than every tier.
    pub(super) fn price_for(&self, grams: u64) -> Result<Money, u32> {
        match self {
            Self::Flat(price) => Ok(*price),
            Self::ByWeight(tiers) => tiers
                .iter()
                .find(|t| u64::from(t.up_to_grams) >= grams)
                .map(|t| t.price)
                .ok_or_else(|| tiers.last().map_or(0, |t| t.up_to_grams)),
        }
    }
}

/// A method's rate in one zone.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneRate {
    /// Where.
    pub zone: ShippingZone,
    /// How it is priced.
    pub rate: ShippingRate,
    /// Shipping is free when the discounted merchandise subtotal is at least this.
    #[serde(default)]
    pub free_over: Option<Money>,
}

/// A shipping method's code, e.g. `standard` or `express`: `[a-z0-9_-]{1,32}`,
/// normalised to lower case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ShippingMethodCode(String);

impl ShippingMethodCode {
    /// Validates a code.
    ///
    /// # Errors
    /// [`PricingConfigError::InvalidMethodCode`].
    pub fn parse(raw: &str) -> Result<Self, PricingConfigError> {
        let code = raw.trim().to_ascii_lowercase();
        let valid = (1..=32).contains(&code.len())
            && code
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if valid {
            Ok(Self(code))
        } else {
            Err(PricingConfigError::InvalidMethodCode(raw.to_owned()))
        }
    }

    /// The code.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ShippingMethodCode {
    type Error = PricingConfigError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<ShippingMethodCode> for String {
    fn from(c: ShippingMethodCode) -> Self {
        c.0
    }
}

impl fmt::Display for ShippingMethodCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A way to ship (standard, express, ...), priced per zone.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "ShippingMethodSpec")]
pub struct ShippingMethod {
    code: ShippingMethodCode,
    name: String,
    rates: Vec<ZoneRate>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShippingMethodSpec {
    code: ShippingMethodCode,
    name: String,
    rates: Vec<ZoneRate>,
}

impl TryFrom<ShippingMethodSpec> for ShippingMethod {
    type Error = PricingConfigError;
    fn try_from(spec: ShippingMethodSpec) -> Result<Self, Self::Error> {
        Self::new(spec.code, &spec.name, spec.rates)
    }
}

impl ShippingMethod {
    /// A method: a name and at least one zone rate; no country in two zones; weight
    /// tiers strictly ascending; no negative price or threshold.
    ///
    /// # Errors
    /// The [`PricingConfigError`] naming the broken rule.
    pub fn new(
        code: ShippingMethodCode,
        name: &str,
        rates: Vec<ZoneRate>,
    ) -> Result<Self, PricingConfigError> {
        let name = name.trim().to_owned();
        if name.is_empty() {
            return Err(PricingConfigError::BlankName { what: "method" });
        }
        if rates.is_empty() {
            return Err(PricingConfigError::NoRates { method: code });
        }
        let mut seen = BTreeSet::new();
        for zone_rate in &rates {
            zone_rate.rate.validate()?;
            let amounts = zone_rate
                .rate
                .amounts()
                .into_iter()
                .chain(zone_rate.free_over);
            if amounts.clone().any(Money::is_negative) {
                return Err(PricingConfigError::NegativeAmount);
            }
            for country in &zone_rate.zone.countries {
                if !seen.insert(country.clone()) {
                    return Err(PricingConfigError::OverlappingZones {
                        method: code,
                        country: country.clone(),
                    });
                }
            }
        }
        Ok(Self { code, name, rates })
    }

    /// The code.
    #[must_use]
    pub fn code(&self) -> &ShippingMethodCode {
        &self.code
    }

    /// The display name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The rate for a destination country, if the method ships there.
    #[must_use]
    pub fn rate_for(&self, country: &CountryCode) -> Option<&ZoneRate> {
        self.rates.iter().find(|r| r.zone.contains(country))
    }

    fn amounts(&self) -> impl Iterator<Item = Money> + '_ {
        self.rates
            .iter()
            .flat_map(|r| r.rate.amounts().into_iter().chain(r.free_over))
    }
}

/// One currency's pricing configuration: taxes and shipping methods. Deserialises
/// (from the settings files, say) through the same validation as [`Pricing::new`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "PricingSpec")]
pub struct Pricing {
    pub(super) currency: Currency,
    pub(super) tax: TaxTable,
    pub(super) methods: Vec<ShippingMethod>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PricingSpec {
    currency: Currency,
    tax: TaxTable,
    #[serde(default)]
    methods: Vec<ShippingMethod>,
}

impl TryFrom<PricingSpec> for Pricing {
    type Error = PricingConfigError;
    fn try_from(spec: PricingSpec) -> Result<Self, Self::Error> {
        Self::new(spec.currency, spec.tax, spec.methods)
    }
}

impl Pricing {
    /// A configuration; every shipping price and threshold in `currency`, method codes
    /// unique. A shop selling in several currencies has one `Pricing` per currency.
    ///
    /// # Errors
    /// [`PricingConfigError::CurrencyMismatch`],
    /// [`PricingConfigError::DuplicateMethod`].
    pub fn new(
        currency: Currency,
        tax: TaxTable,
        methods: Vec<ShippingMethod>,
    ) -> Result<Self, PricingConfigError> {
        let mut codes = BTreeSet::new();
        for method in &methods {
            if !codes.insert(method.code.clone()) {
                return Err(PricingConfigError::DuplicateMethod {
                    method: method.code.clone(),
                });
            }
            if let Some(other) = method.amounts().find(|m| m.currency() != currency) {
                return Err(PricingConfigError::CurrencyMismatch {
                    expected: currency,
                    got: other.currency(),
                });
            }
        }
        Ok(Self {
            currency,
            tax,
            methods,
        })
    }

    /// The currency of every amount.
    #[must_use]
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// The tax table.
    #[must_use]
    pub fn tax(&self) -> &TaxTable {
        &self.tax
    }

    /// The shipping methods.
    #[must_use]
    pub fn methods(&self) -> &[ShippingMethod] {
        &self.methods
    }

    /// The methods that ship to `country`, for offering them at checkout.
    pub fn methods_to<'a>(
        &'a self,
        country: &'a CountryCode,
    ) -> impl Iterator<Item = &'a ShippingMethod> + 'a {
        self.methods
            .iter()
            .filter(move |m| m.rate_for(country).is_some())
    }
}
