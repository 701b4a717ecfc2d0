//! `emporium seed --demo`: a deterministic demo shop, written through the normal
//! command path (dispatchers and their uniqueness claims), never as raw events.
//!
//! Everything derives from [`SEED`]: ids are `Uuid::from_u128` of a kind and a counter,
//! texts and numbers come from a `fastrand` generator seeded per entity (so the first
//! 60 products of a small seed are the first 60 of the full one), and every `at` is a
//! fixed instant in 2025. Two runs into two empty databases record the same events.
//!
//! What it writes, in order: a category tree (5 roots, 4 children each); products with
//! tags, attributes, image keys, prices, size/colour variants for clothing and running
//! shoes, published, some featured; inventory tracked and received for every SKU (a
//! few low); customers with a verified e-mail and a default address; past orders
//! placed from catalogue prices and moved to paid, shipped or delivered; approved
//! reviews by customers of the products their delivered orders held. The demo account
//! ([`DEMO_EMAIL`] / [`DEMO_PASSWORD`]) is registered last: its presence marks a
//! complete seed, and a second run finds it and writes nothing.
//!
//! Past orders do not reserve or commit stock: the received quantities are the stock
//! on hand today.

use std::collections::{BTreeSet, HashSet};
use std::future::Future;
use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{DateTime, TimeZone as _, Utc};
use futures::StreamExt as _;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sqlx::PgPool;
use uuid::Uuid;

use emporium_commands::catalog::Products;
use emporium_commands::users::Users;
use emporium_commands::{AnyStore, Dispatcher, EventStore as _, Loading};
use emporium_domain::catalog::{
    AltText, Attributes, CategoryCommand, CategoryName, CategoryTree, Description, ImageSource,
    ProductCommand, ProductName, Rating, Review, ReviewBody, ReviewCommand, ReviewTitle, Slug, Tag,
    VariantLabel,
};
use emporium_domain::inventory::{Inventory, InventoryCommand};
use emporium_domain::metadata::Actor;
use emporium_domain::order::{Order, OrderCommand, OrderLine};
use emporium_domain::user::{Email, PasswordHash, PersonName, Preferences, Role, UserCommand};
use emporium_domain::{Address, AddressInput, Currency, EventMetadata, Money, Quantity, Sku};

use crate::auth::password;

/// The seed every generated value derives from.
pub const SEED: u64 = 0x00E3_B0C4_2026;
/// The demo account's e-mail address.
pub const DEMO_EMAIL: &str = "demo@emporium.test";
/// The demo account's password (documented in the README; demo data only).
pub const DEMO_PASSWORD: &str = "emporium-demo";
/// The fixed salt of the demo password's hash, so the hash is the same on every run.
const DEMO_SALT: &str = "ZW1wb3JpdW1kZW1vc2FsdA";
/// Every price is in this currency.
const CURRENCY: Currency = Currency::USD;
/// Low-stock threshold of every SKU.
const LOW_STOCK_THRESHOLD: u32 = 5;

/// How much to seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedSize {
    /// Products (at least 1).
    pub products: usize,
    /// Customers, the demo account included (at least 1).
    pub customers: usize,
    /// Past orders.
    pub orders: usize,
    /// Commands in flight at once.
    pub concurrency: usize,
}

impl Default for SeedSize {
    fn default() -> Self {
        Self {
            products: 1_000,
            customers: 50,
            orders: 200,
            concurrency: 8,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeedOutcome {
    /// The demo account exists: the database is already seeded; nothing written.
    AlreadySeeded,
    /// Seeded.
    Seeded(SeedSummary),
}

/// Counts of what a run wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedSummary {
    /// Categories (roots and children).
    pub categories: usize,
    /// Products.
    pub products: usize,
    /// Variants over all products.
    pub variants: usize,
    /// Featured products.
    pub featured: usize,
    /// SKUs with tracked inventory.
    pub skus: usize,
    /// SKUs received below the low-stock threshold.
    pub low_stock: usize,
    /// Customer accounts, the demo account included.
    pub customers: usize,
    /// Orders.
    pub orders: usize,
    /// Approved reviews.
    pub reviews: usize,
    /// Wall time.
    pub elapsed: Duration,
}

// ---------------------------------------------------------------------------------
// Deterministic ids, clocks and generators.

/// Kinds of generated ids (the high bits after the prefix).
#[derive(Clone, Copy)]
#[repr(u16)]
enum Kind {
    Category = 1,
    Product = 2,
    Variant = 3,
    Image = 4,
    User = 5,
    Address = 6,
    Order = 7,
    Payment = 8,
    Command = 9,
    Moderator = 10,
}

/// A deterministic id: a fixed prefix, the kind, a counter.
fn id(kind: Kind, n: u64) -> Uuid {
    Uuid::from_u128((0xE3B0_5EED_u128 << 96) | (u128::from(kind as u16) << 64) | u128::from(n))
}

/// A generator for entity `n` of `kind`, independent of every other entity.
fn rng(kind: Kind, n: u64) -> fastrand::Rng {
    fastrand::Rng::with_seed(
        SEED ^ (u64::from(kind as u16) << 48) ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15),
    )
}

fn pick<'a>(rng: &mut fastrand::Rng, items: &[&'a str]) -> &'a str {
    items[rng.usize(..items.len())]
}

/// The catalogue is created on this day; orders follow over the next quarter.
fn epoch() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 9, 1, 9, 0, 0)
        .single()
        .unwrap_or(DateTime::UNIX_EPOCH)
}

fn minutes(n: u64) -> chrono::Duration {
    chrono::Duration::minutes(i64::try_from(n).unwrap_or(i64::MAX / 120))
}

/// Metadata of one seeding command: the seeder as actor, a deterministic command id.
#[derive(Debug)]
struct Commands {
    next: std::sync::atomic::AtomicU64,
}

impl Commands {
    fn metadata(&self, at: DateTime<Utc>) -> EventMetadata {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        EventMetadata::new(id(Kind::Command, n), Actor::System("seed".into()), at)
    }

    /// Metadata of a command that belongs to `flow` (e.g. an order), keyed by `step`,
    /// so ids do not depend on the order concurrent tasks run in.
    fn in_flow(flow: Uuid, step: u64, at: DateTime<Utc>) -> EventMetadata {
        let command = Uuid::from_u128(flow.as_u128() ^ (u128::from(step) << 112));
        EventMetadata {
            correlation_id: flow,
            causation_id: command,
            ..EventMetadata::new(command, Actor::System("seed".into()), at)
        }
    }
}

// ---------------------------------------------------------------------------------
// The catalogue's shape.

struct Root {
    name: &'static str,
    slug: &'static str,
    materials: &'static [&'static str],
    tags: &'static [&'static str],
    children: [Child; 4],
}

struct Child {
    name: &'static str,
    slug: &'static str,
    nouns: &'static [&'static str],
    /// Price range in cents.
    price: (i64, i64),
    sizes: &'static [&'static str],
}

const fn child(
    name: &'static str,
    slug: &'static str,
    nouns: &'static [&'static str],
    price: (i64, i64),
) -> Child {
    Child {
        name,
        slug,
        nouns,
        price,
        sizes: &[],
    }
}

const APPAREL: &[&str] = &["XS", "S", "M", "L", "XL"];
const SHOES: &[&str] = &["39", "40", "41", "42", "43", "44", "45"];

const TREE: [Root; 5] = [
    Root {
        name: "Clothing",
        slug: "clothing",
        materials: &[
            "Cotton",
            "Linen",
            "Merino",
            "Organic cotton",
            "Fleece",
            "Denim",
        ],
        tags: &["apparel", "unisex", "casual", "layering"],
        children: [
            Child {
                sizes: APPAREL,
                ..child(
                    "T-shirts",
                    "t-shirts",
                    &["T-shirt", "Tee", "Crew neck"],
                    (1_500, 4_500),
                )
            },
            Child {
                sizes: APPAREL,
                ..child(
                    "Hoodies",
                    "hoodies",
                    &["Hoodie", "Sweatshirt", "Zip hoodie"],
                    (3_900, 8_900),
                )
            },
            Child {
                sizes: APPAREL,
                ..child(
                    "Jackets",
                    "jackets",
                    &["Jacket", "Parka", "Windbreaker"],
                    (6_900, 24_900),
                )
            },
            Child {
                sizes: &["S", "M", "L"],
                ..child(
                    "Socks",
                    "socks",
                    &["Socks", "Ankle socks", "Hiking socks"],
                    (800, 2_400),
                )
            },
        ],
    },
    Root {
        name: "Home & Kitchen",
        slug: "home-kitchen",
        materials: &[
            "Ceramic",
            "Stoneware",
            "Cast iron",
            "Oak",
            "Walnut",
            "Linen",
            "Glass",
        ],
        tags: &["home", "kitchen", "giftable", "handmade"],
        children: [
            child(
                "Cookware",
                "cookware",
                &["Skillet", "Saucepan", "Dutch oven"],
                (2_900, 18_900),
            ),
            child(
                "Mugs & Cups",
                "mugs-cups",
                &["Mug", "Tumbler", "Teacup"],
                (900, 3_200),
            ),
            child(
                "Lighting",
                "lighting",
                &["Desk lamp", "Pendant light", "Lantern"],
                (2_400, 15_900),
            ),
            child(
                "Textiles",
                "textiles",
                &["Throw blanket", "Cushion", "Tea towel"],
                (1_200, 8_900),
            ),
        ],
    },
    Root {
        name: "Electronics",
        slug: "electronics",
        materials: &[
            "Aluminium",
            "Matte black",
            "Graphite",
            "Recycled plastic",
            "Walnut trim",
        ],
        tags: &["tech", "wireless", "usb-c", "travel"],
        children: [
            child(
                "Headphones",
                "headphones",
                &["Headphones", "Earbuds", "Headset"],
                (2_900, 34_900),
            ),
            child(
                "Chargers",
                "chargers",
                &["Charger", "Power bank", "Charging dock"],
                (1_900, 8_900),
            ),
            child(
                "Speakers",
                "speakers",
                &["Speaker", "Soundbar", "Radio"],
                (3_900, 29_900),
            ),
            child(
                "Cables & Adapters",
                "cables-adapters",
                &["USB-C cable", "HDMI cable", "Travel adapter"],
                (700, 3_900),
            ),
        ],
    },
    Root {
        name: "Sports & Outdoors",
        slug: "sports-outdoors",
        materials: &[
            "Ripstop",
            "Recycled nylon",
            "Cork",
            "Carbon",
            "Aluminium",
            "Mesh",
        ],
        tags: &["outdoor", "fitness", "lightweight", "weatherproof"],
        children: [
            child(
                "Camping",
                "camping",
                &["Tent", "Sleeping bag", "Camp stove"],
                (2_900, 39_900),
            ),
            child(
                "Cycling",
                "cycling",
                &["Bike light", "Helmet", "Bottle cage"],
                (1_200, 12_900),
            ),
            child(
                "Yoga",
                "yoga",
                &["Yoga mat", "Yoga block", "Yoga strap"],
                (900, 8_900),
            ),
            Child {
                sizes: SHOES,
                ..child(
                    "Running",
                    "running",
                    &["Running shoe", "Trail shoe", "Racing flat"],
                    (6_900, 17_900),
                )
            },
        ],
    },
    Root {
        name: "Books & Stationery",
        slug: "books-stationery",
        materials: &[
            "Recycled paper",
            "Leather-bound",
            "Linen-covered",
            "Brass",
            "Bamboo",
        ],
        tags: &["stationery", "office", "school", "giftable"],
        children: [
            child(
                "Notebooks",
                "notebooks",
                &["Notebook", "Journal", "Sketchbook"],
                (700, 3_400),
            ),
            child(
                "Pens",
                "pens",
                &["Fountain pen", "Ballpoint pen", "Fineliner set"],
                (500, 12_900),
            ),
            child(
                "Planners",
                "planners",
                &["Weekly planner", "Desk calendar", "Daily planner"],
                (1_200, 3_900),
            ),
            child(
                "Art Supplies",
                "art-supplies",
                &["Watercolour set", "Pencil set", "Brush set"],
                (900, 6_900),
            ),
        ],
    },
];

const ADJECTIVES: &[&str] = &[
    "Classic",
    "Everyday",
    "Premium",
    "Compact",
    "Vintage",
    "Modern",
    "Rugged",
    "Lightweight",
    "Handmade",
    "Minimal",
    "Deluxe",
    "Urban",
    "Nordic",
    "Studio",
    "Coastal",
    "Alpine",
];
const BRANDS: &[&str] = &[
    "Northwind",
    "Lumen",
    "Fjord",
    "Kestrel",
    "Harbor & Co",
    "Pinecrest",
    "Solace",
    "Ember",
];
const COLOURS: &[&str] = &[
    "Black", "White", "Navy", "Olive", "Sand", "Red", "Grey", "Teal",
];
const GENERIC_TAGS: &[&str] = &["new", "bestseller", "sale", "eco", "gift"];
const ORIGINS: &[&str] = &[
    "Portugal", "Vietnam", "Germany", "Japan", "Mexico", "Canada",
];

/// A category to create.
struct CategorySpec {
    id: Uuid,
    name: &'static str,
    slug: &'static str,
    parent: Option<Uuid>,
}

fn categories() -> Vec<CategorySpec> {
    let mut out = Vec::with_capacity(25);
    for (r, root) in TREE.iter().enumerate() {
        let root_id = id(Kind::Category, (r as u64 + 1) * 100);
        out.push(CategorySpec {
            id: root_id,
            name: root.name,
            slug: root.slug,
            parent: None,
        });
        for (c, child) in root.children.iter().enumerate() {
            out.push(CategorySpec {
                id: id(Kind::Category, (r as u64 + 1) * 100 + c as u64 + 1),
                name: child.name,
                slug: child.slug,
                parent: Some(root_id),
            });
        }
    }
    out
}

/// A variant to add.
#[derive(Clone)]
struct VariantSpec {
    id: Uuid,
    sku: String,
    size: &'static str,
    colour: &'static str,
    price: i64,
    stock: u32,
}

/// A product to create, with everything that follows its creation.
#[derive(Clone)]
struct ProductSpec {
    id: Uuid,
    index: u64,
    sku: String,
    slug: String,
    name: String,
    description: String,
    category_id: Uuid,
    tags: Vec<&'static str>,
    attributes: Vec<(&'static str, String)>,
    price: i64,
    images: usize,
    featured: bool,
    stock: u32,
    variants: Vec<VariantSpec>,
}

fn slugify(text: &str) -> String {
    let mut slug = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.trim_end_matches('-').to_owned()
}

/// Units received: mostly plenty, about one SKU in 30 low.
fn stock(rng: &mut fastrand::Rng) -> u32 {
    if rng.u8(..) < 9 {
        rng.u32(1..LOW_STOCK_THRESHOLD)
    } else {
        rng.u32(20..=250)
    }
}

/// Rounds cents to a shop price ending in 99 (or 49 under ten dollars).
fn shop_price(cents: i64) -> i64 {
    if cents < 1_000 {
        (cents / 50) * 50 + 49
    } else {
        (cents / 100) * 100 + 99
    }
}

fn product(index: u64, total: u64) -> ProductSpec {
    let mut rng = rng(Kind::Product, index);
    // Products spread evenly over the 20 leaf categories.
    let leaf = usize::try_from(index % 20).unwrap_or(0);
    let (r, c) = (leaf / 4, leaf % 4);
    let (root, child) = (&TREE[r], &TREE[r].children[c]);
    let category_id = id(Kind::Category, (r as u64 + 1) * 100 + c as u64 + 1);
    let adjective = pick(&mut rng, ADJECTIVES);
    let material = pick(&mut rng, root.materials);
    let noun = pick(&mut rng, child.nouns);
    let brand = pick(&mut rng, BRANDS);
    let name = format!("{adjective} {material} {noun}");
    let sku = format!("DEMO-{:05}", index + 1);
    let slug = format!("{}-{}", slugify(&name), index + 1);
    let price = shop_price(rng.i64(child.price.0..=child.price.1));
    let description = format!(
        "The {name} by {brand}: {} {material} throughout, finished by hand. Designed in {} \
         and made to last, it ships in recyclable packaging.\n\nCare: {}.",
        match rng.u8(..4) {
            0 => "a quiet favourite that goes with everything.",
            1 => "built for daily use and years of it.",
            2 => "the one our customers buy twice.",
            _ => "simple, honest and well made.",
        },
        pick(&mut rng, ORIGINS),
        match r {
            0 => "machine wash cold, dry flat",
            1 => "hand wash recommended",
            2 => "keep dry; recycle through our take-back programme",
            3 => "rinse after use, air dry",
            _ => "store away from direct sunlight",
        },
    );
    let mut tags: Vec<&'static str> = vec![pick(&mut rng, root.tags), pick(&mut rng, GENERIC_TAGS)];
    if rng.bool() {
        tags.push(pick(&mut rng, root.tags));
    }
    tags.sort_unstable();
    tags.dedup();
    let mut attributes = vec![
        ("brand", brand.to_owned()),
        ("material", material.to_owned()),
        ("origin", pick(&mut rng, ORIGINS).to_owned()),
    ];
    if r == 2 {
        attributes.push(("warranty", format!("{} years", rng.u8(1..=3))));
    } else {
        attributes.push(("weight", format!("{} g", rng.u32(50..=2_500))));
    }
    let mut variants = Vec::new();
    if !child.sizes.is_empty() {
        let colours = if r == 0 { rng.usize(1..=2) } else { 1 };
        let first = rng.usize(..COLOURS.len());
        let start = rng.usize(..=child.sizes.len().saturating_sub(3));
        let sizes = &child.sizes[start..(start + 3).min(child.sizes.len())];
        for k in 0..colours {
            let colour = COLOURS[(first + k * 3) % COLOURS.len()];
            for size in sizes {
                let n = variants.len() as u64;
                variants.push(VariantSpec {
                    id: id(Kind::Variant, index * 100 + n),
                    sku: format!("{sku}-{}-{}", size, &colour[..3]).to_ascii_uppercase(),
                    size,
                    colour,
                    // Larger sizes of a jacket cost a little more, like in real shops.
                    price: if *size == "XL" { price + 500 } else { price },
                    stock: stock(&mut rng),
                });
            }
        }
    }
    ProductSpec {
        id: id(Kind::Product, index),
        index,
        sku,
        slug,
        name,
        description,
        category_id,
        tags,
        attributes,
        price,
        images: rng.usize(1..=3),
        // About 20 of 1,000: every 50th, offset so small seeds feature one too.
        featured: index % 50 == 7 || (total < 50 && index == 0),
        stock: stock(&mut rng),
        variants,
    }
}

// ---------------------------------------------------------------------------------
// Customers, orders, reviews.

const FIRST_NAMES: &[&str] = &[
    "Ada",
    "Grace",
    "Alan",
    "Linus",
    "Margaret",
    "Ken",
    "Barbara",
    "Dennis",
    "Frances",
    "John",
    "Radia",
    "Tim",
    "Hedy",
    "Edsger",
    "Katherine",
    "Donald",
    "Sophie",
    "Guido",
    "Annie",
    "Bjarne",
    "Mary",
    "Niklaus",
    "Joan",
    "Yukihiro",
    "Evelyn",
];
const LAST_NAMES: &[&str] = &[
    "Lovelace",
    "Hopper",
    "Turing",
    "Torvalds",
    "Hamilton",
    "Thompson",
    "Liskov",
    "Ritchie",
    "Allen",
    "McCarthy",
    "Perlman",
    "Berners-Lee",
    "Lamarr",
    "Dijkstra",
    "Johnson",
    "Knuth",
    "Wilson",
    "van Rossum",
    "Easley",
    "Stroustrup",
    "Keller",
    "Wirth",
    "Clarke",
    "Matsumoto",
    "Berry",
];
/// City, region, postal code, country.
const CITIES: &[(&str, Option<&str>, &str, &str)] = &[
    ("Portland", Some("OR"), "97205", "US"),
    ("Austin", Some("TX"), "78701", "US"),
    ("Boston", Some("MA"), "02116", "US"),
    ("Denver", Some("CO"), "80202", "US"),
    ("Toronto", Some("ON"), "M5V 2T6", "CA"),
    ("London", None, "EC1A 1BB", "GB"),
    ("Dublin", None, "D02 X285", "IE"),
    ("Berlin", None, "10115", "DE"),
    ("Lisbon", None, "1100-148", "PT"),
    ("Amsterdam", None, "1012 JS", "NL"),
];
const STREETS: &[&str] = &[
    "Maple Street",
    "Harbour Road",
    "Mill Lane",
    "Station Road",
    "Park Avenue",
    "Elm Row",
    "Queen Street",
    "Canal Walk",
];

struct CustomerSpec {
    id: Uuid,
    index: u64,
    email: String,
    first: &'static str,
    last: &'static str,
    address: AddressInput,
}

fn customer(index: u64) -> CustomerSpec {
    let mut rng = rng(Kind::User, index);
    let (first, last, email) = if index == 0 {
        ("Demo", "Shopper", DEMO_EMAIL.to_owned())
    } else {
        let first = FIRST_NAMES[usize::try_from(index * 7).unwrap_or(0) % FIRST_NAMES.len()];
        let last =
            LAST_NAMES[usize::try_from(index * 11 + index / 25).unwrap_or(0) % LAST_NAMES.len()];
        let email = format!(
            "{}.{}{index}@example.test",
            slugify(first),
            slugify(last).replace('-', "")
        );
        (first, last, email)
    };
    let (city, region, postal, country) = CITIES[rng.usize(..CITIES.len())];
    CustomerSpec {
        id: id(Kind::User, index),
        index,
        email,
        first,
        last,
        address: AddressInput {
            full_name: format!("{first} {last}"),
            line1: format!("{} {}", rng.u16(1..=420), pick(&mut rng, STREETS)),
            line2: rng.bool().then(|| format!("Apt {}", rng.u8(1..=40))),
            city: city.to_owned(),
            region: region.map(str::to_owned),
            postal_code: postal.to_owned(),
            country: country.to_owned(),
            phone: None,
        },
    }
}

/// Something that can be put on an order line.
#[derive(Clone)]
struct Sellable {
    product_id: Uuid,
    sku: String,
    name: String,
    price: i64,
}

fn sellables(products: &[ProductSpec]) -> Vec<Sellable> {
    let mut out = Vec::new();
    for p in products {
        if p.variants.is_empty() {
            out.push(Sellable {
                product_id: p.id,
                sku: p.sku.clone(),
                name: p.name.clone(),
                price: p.price,
            });
        } else {
            out.extend(p.variants.iter().map(|v| Sellable {
                product_id: p.id,
                sku: v.sku.clone(),
                name: format!("{} ({}, {})", p.name, v.size, v.colour),
                price: v.price,
            }));
        }
    }
    out
}

/// How far an order got.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reached {
    Paid,
    Shipped,
    Delivered,
}

#[derive(Clone)]
struct OrderSpec {
    id: Uuid,
    index: u64,
    customer: usize,
    lines: Vec<(Sellable, u32)>,
    at: DateTime<Utc>,
    reached: Reached,
}

fn order(index: u64, total: u64, customers: usize, sellables: &[Sellable]) -> OrderSpec {
    let mut rng = rng(Kind::Order, index);
    // The demo account has a history too: every 8th order is its.
    let customer = if index.is_multiple_of(8) {
        0
    } else {
        rng.usize(..customers)
    };
    let mut lines: Vec<(Sellable, u32)> = Vec::new();
    for _ in 0..rng.usize(1..=3) {
        let s = &sellables[rng.usize(..sellables.len())];
        if lines.iter().all(|(l, _)| l.product_id != s.product_id) {
            lines.push((s.clone(), rng.u32(1..=3)));
        }
    }
    // Spread over the 90 days after the catalogue's first month.
    let offset = 30 * 24 * 60 + index * 90 * 24 * 60 / total.max(1) + rng.u64(..600);
    OrderSpec {
        id: id(Kind::Order, index),
        index,
        customer,
        lines,
        at: epoch() + minutes(offset),
        reached: match rng.u8(..10) {
            0 => Reached::Paid,
            1 | 2 => Reached::Shipped,
            _ => Reached::Delivered,
        },
    }
}

const REVIEWS: [(&str, &str); 5] = [
    (
        "Disappointing",
        "Not what I hoped for. It works, but the finish feels cheaper than the photos suggest.",
    ),
    (
        "Just okay",
        "Does the job. Delivery was quick, though I expected a bit more for the price.",
    ),
    (
        "Solid choice",
        "Good quality and arrived well packed. Would buy again if it went on sale.",
    ),
    (
        "Really happy with it",
        "Exactly as described and nicely made. I use it every day.",
    ),
    (
        "Love it!",
        "Excellent quality, fast shipping, and it looks even better in person. Highly recommended.",
    ),
];

// ---------------------------------------------------------------------------------
// The seeder.

/// Writes the demo shop through the command layer.
pub struct Seeder {
    store: AnyStore,
    size: SeedSize,
    products: Products<AnyStore>,
    users: Users<AnyStore>,
    categories: Dispatcher<CategoryTree, AnyStore>,
    inventory: Dispatcher<Inventory, AnyStore>,
    orders: Dispatcher<Order, AnyStore>,
    reviews: Dispatcher<Review, AnyStore>,
    commands: Commands,
}

impl std::fmt::Debug for Seeder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Seeder")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl Seeder {
    /// A seeder over the event store in `pool`, which should allow 3 x
    /// `size.concurrency` + 2 connections (a product command holds two uniqueness
    /// claims while it commits on a third).
    #[must_use]
    pub fn new(store: impl Into<AnyStore>, size: SeedSize) -> Self {
        let store = store.into();
        Self {
            products: Products::over(store.clone()),
            users: Users::over(store.clone()),
            categories: Dispatcher::over(store.clone(), Loading::Replay),
            inventory: Dispatcher::over(store.clone(), Loading::Replay),
            orders: Dispatcher::over(store.clone(), Loading::Replay),
            reviews: Dispatcher::over(store.clone(), Loading::Replay),
            commands: Commands {
                next: std::sync::atomic::AtomicU64::new(0),
            },
            size: SeedSize {
                products: size.products.max(1),
                customers: size.customers.max(1),
                concurrency: size.concurrency.max(1),
                ..size
            },
            store,
        }
    }

    /// Whether the demo account exists (a complete seed).
    ///
    /// # Errors
    /// When the event store cannot be read.
    pub async fn already_seeded(&self) -> anyhow::Result<bool> {
        // The demo account's address is claimed once its registration committed.
        let holder = self
            .store
            .holder(emporium_commands::users::EMAIL_SCOPE, DEMO_EMAIL)
            .await
            .context("look for the demo account")?;
        Ok(holder.is_some())
    }

    /// Seeds the demo shop, or does nothing when it is already there.
    ///
    /// # Errors
    /// When a command is refused (e.g. a previous run was interrupted, or the
    /// catalogue already uses a demo slug or SKU) or the store fails.
    pub async fn run(&self) -> anyhow::Result<SeedOutcome> {
        if self.already_seeded().await? {
            return Ok(SeedOutcome::AlreadySeeded);
        }
        let started = Instant::now();
        let interrupted: Option<i32> = self
            .store
            .db()
            .scalar_optional(
                "SELECT 1 FROM events WHERE aggregate_type = 'product' AND aggregate_id = $1 LIMIT 1",
                emporium_commands::args![id(Kind::Product, 0).to_string()],
            )
            .await
            .context("look for an interrupted seed")?;
        if interrupted.is_some() {
            anyhow::bail!(
                "this database holds part of a demo seed (an earlier run was interrupted); \
                 seed into a fresh database"
            );
        }

        let categories = self.seed_categories().await?;

        let total = self.size.products as u64;
        let products: Vec<ProductSpec> = (0..total).map(|i| product(i, total)).collect();
        let bar = progress(products.len(), "products");
        let done = self
            .all(products.clone(), &bar, |p| self.seed_product(p))
            .await;
        bar.finish_and_clear();
        done?;
        let variants: usize = products.iter().map(|p| p.variants.len()).sum();
        let skus = products.iter().map(|p| 1 + p.variants.len()).sum::<usize>();
        let low_stock = products
            .iter()
            .flat_map(|p| std::iter::once(p.stock).chain(p.variants.iter().map(|v| v.stock)))
            .filter(|s| *s < LOW_STOCK_THRESHOLD)
            .count();
        let featured = products.iter().filter(|p| p.featured).count();
        tracing::info!(
            products = products.len(),
            variants,
            skus,
            low_stock,
            featured,
            "products seeded"
        );

        let customers: Vec<CustomerSpec> = (0..self.size.customers as u64).map(customer).collect();
        let hash = password::hash_with_fixed_salt(DEMO_PASSWORD, DEMO_SALT)?;
        let bar = progress(customers.len() - 1, "customers");
        // Everyone but the demo account now; it comes last, as the completion mark.
        let done = self
            .all(customers.iter().skip(1).collect(), &bar, |c| {
                self.seed_customer(c, hash.clone())
            })
            .await;
        bar.finish_and_clear();
        done?;
        tracing::info!(customers = customers.len() - 1, "customers seeded");

        let sellables = sellables(&products);
        let orders: Vec<OrderSpec> = (0..self.size.orders as u64)
            .map(|i| order(i, self.size.orders as u64, customers.len(), &sellables))
            .collect();
        let bar = progress(orders.len(), "orders");
        let done = self
            .all(orders.clone(), &bar, |o| self.seed_order(o, &customers))
            .await;
        bar.finish_and_clear();
        done?;
        tracing::info!(orders = orders.len(), "orders seeded");

        // One review per customer and product, from delivered orders, most of them.
        let mut reviewed = HashSet::new();
        let mut reviews = Vec::new();
        for o in orders.iter().filter(|o| o.reached == Reached::Delivered) {
            let mut rng = rng(Kind::Order, o.index ^ 0xFFFF);
            for (line, _) in &o.lines {
                if rng.u8(..10) < 7 && reviewed.insert((line.product_id, o.customer)) {
                    let stars = match rng.u8(..20) {
                        0 => 1,
                        1 => 2,
                        2..=4 => 3,
                        5..=10 => 4,
                        _ => 5,
                    };
                    reviews.push((line.product_id, customers[o.customer].id, stars, o.at));
                }
            }
        }
        let bar = progress(reviews.len(), "reviews");
        let done = self
            .all(reviews.clone(), &bar, |(product, author, stars, at)| {
                self.seed_review(product, author, stars, at)
            })
            .await;
        bar.finish_and_clear();
        done?;
        tracing::info!(reviews = reviews.len(), "reviews seeded");

        self.seed_customer(&customers[0], hash).await?;

        Ok(SeedOutcome::Seeded(SeedSummary {
            categories: categories.len(),
            products: products.len(),
            variants,
            featured,
            skus,
            low_stock,
            customers: customers.len(),
            orders: orders.len(),
            reviews: reviews.len(),
            elapsed: started.elapsed(),
        }))
    }

    /// Runs `task` over `items`, `concurrency` at a time, stopping at the first error.
    async fn all<T, F, Fut>(&self, items: Vec<T>, bar: &ProgressBar, task: F) -> anyhow::Result<()>
    where
        F: Fn(T) -> Fut,
        Fut: Future<Output = anyhow::Result<()>>,
    {
        let mut running = futures::stream::iter(items.into_iter().map(task))
            .buffer_unordered(self.size.concurrency);
        while let Some(done) = running.next().await {
            done?;
            bar.inc(1);
        }
        Ok(())
    }

    async fn seed_categories(&self) -> anyhow::Result<Vec<CategorySpec>> {
        let categories = categories();
        for (n, c) in categories.iter().enumerate() {
            let at = epoch() - minutes(60 - n as u64);
            self.categories
                .execute(
                    CategoryTree::ID,
                    CategoryCommand::CreateCategory {
                        category_id: c.id,
                        name: CategoryName::parse(c.name)?,
                        slug: Slug::parse(c.slug)?,
                        parent_id: c.parent,
                        at,
                    },
                    &self.commands.metadata(at),
                )
                .await
                .with_context(|| format!("create category {}", c.slug))?;
        }
        tracing::info!(categories = categories.len(), "categories seeded");
        Ok(categories)
    }

    async fn seed_product(&self, p: ProductSpec) -> anyhow::Result<()> {
        let at = epoch() + minutes(p.index);
        let meta = |step: u64| Commands::in_flow(p.id, step, at);
        let money = |cents: i64| Money::new(cents, CURRENCY);
        let context = || format!("product {}", p.sku);
        let tags = p
            .tags
            .iter()
            .map(|t| Tag::parse(t))
            .collect::<Result<BTreeSet<_>, _>>()?;
        let attributes = Attributes::parse(p.attributes.iter().map(|(k, v)| (*k, v.as_str())))?;
        let mut step = 0;
        let mut next = || {
            step += 1;
            step
        };
        let commands = std::iter::once(ProductCommand::CreateProduct {
            product_id: p.id,
            sku: Sku::parse(&p.sku)?,
            slug: Slug::parse(&p.slug)?,
            name: ProductName::parse(&p.name)?,
            description: Description::parse(&p.description)?,
            category_id: p.category_id,
            tags,
            attributes,
            price: money(p.price),
            at,
        });
        let mut rest = Vec::new();
        for v in &p.variants {
            rest.push(ProductCommand::AddVariant {
                variant_id: v.id,
                sku: Sku::parse(&v.sku)?,
                size: Some(VariantLabel::parse(v.size)?),
                colour: Some(VariantLabel::parse(v.colour)?),
                attributes: Attributes::empty(),
                price: money(v.price),
                at,
            });
        }
        for i in 0..p.images {
            rest.push(ProductCommand::AddImage {
                image_id: id(Kind::Image, p.index * 10 + i as u64),
                source: ImageSource::key(&format!(
                    "demo/products/{}/{}.jpg",
                    p.sku.to_ascii_lowercase(),
                    i + 1
                ))?,
                alt_text: AltText::parse(&match i {
                    0 => p.name.clone(),
                    1 => format!("{}, detail", p.name),
                    _ => format!("{}, in use", p.name),
                })?,
                primary: i == 0,
                at,
            });
        }
        rest.push(ProductCommand::PublishProduct { at });
        if p.featured {
            rest.push(ProductCommand::FeatureProduct { at });
        }
        for command in commands.chain(rest) {
            self.products
                .execute(p.id, command, &meta(next()))
                .await
                .with_context(context)?;
        }
        let skus = std::iter::once((p.sku.as_str(), p.stock))
            .chain(p.variants.iter().map(|v| (v.sku.as_str(), v.stock)));
        for (sku, units) in skus {
            let sku = Sku::parse(sku)?;
            self.inventory
                .execute(
                    sku.as_str(),
                    InventoryCommand::TrackInventory {
                        sku: sku.clone(),
                        low_stock_threshold: LOW_STOCK_THRESHOLD,
                        at,
                    },
                    &meta(next()),
                )
                .await
                .with_context(|| format!("track inventory of {sku}"))?;
            self.inventory
                .execute(
                    sku.as_str(),
                    InventoryCommand::ReceiveStock {
                        quantity: Quantity::new(i64::from(units))?,
                        at,
                    },
                    &meta(next()),
                )
                .await
                .with_context(|| format!("receive stock of {sku}"))?;
        }
        Ok(())
    }

    async fn seed_customer(&self, c: &CustomerSpec, hash: PasswordHash) -> anyhow::Result<()> {
        let at = epoch() + minutes(14 * 24 * 60 + c.index * 60);
        let meta = |step: u64| Commands::in_flow(c.id, step, at);
        let email = Email::parse(&c.email)?;
        self.users
            .register(
                UserCommand::RegisterUser {
                    user_id: c.id,
                    email: email.clone(),
                    password_hash: hash,
                    first_name: PersonName::parse(c.first)?,
                    last_name: Some(PersonName::parse(c.last)?),
                    role: Role::Customer,
                    preferences: Preferences {
                        newsletter: c.index.is_multiple_of(3),
                        ..Preferences::default()
                    },
                    at,
                },
                &meta(1),
            )
            .await
            .with_context(|| format!("register {}", c.email))?;
        let address_id = id(Kind::Address, c.index);
        let commands = [
            UserCommand::VerifyEmail { email, at },
            UserCommand::AddAddress {
                address_id,
                address: Address::parse(c.address.clone())?,
                at,
            },
            UserCommand::SetDefaultShippingAddress { address_id, at },
            UserCommand::SetDefaultBillingAddress { address_id, at },
        ];
        for (step, command) in (2..).zip(commands) {
            self.users
                .execute(c.id, command, &meta(step))
                .await
                .with_context(|| format!("set up {}", c.email))?;
        }
        Ok(())
    }

    async fn seed_order(&self, o: OrderSpec, customers: &[CustomerSpec]) -> anyhow::Result<()> {
        let customer = &customers[o.customer];
        let address = Address::parse(customer.address.clone())?;
        let mut lines = Vec::with_capacity(o.lines.len());
        for (s, quantity) in &o.lines {
            let unit_price = Money::new(s.price, CURRENCY);
            lines.push(OrderLine {
                sku: Sku::parse(&s.sku)?,
                product_id: s.product_id,
                name: s.name.clone(),
                unit_price,
                quantity: Quantity::new(i64::from(*quantity))?,
                line_total: unit_price.checked_mul(i64::from(*quantity))?,
            });
        }
        let subtotal: i64 = lines.iter().map(|l| l.line_total.amount_minor()).sum();
        // 8% sales tax, free shipping from $50.
        let tax = (subtotal * 8 + 50) / 100;
        let shipping = if subtotal >= 5_000 { 0 } else { 499 };
        let grand_total = subtotal + tax + shipping;
        let payment_id = id(Kind::Payment, o.index);
        let at = o.at;
        let mut commands = vec![
            (
                at,
                OrderCommand::PlaceOrder {
                    order_id: o.id,
                    customer_id: customer.id,
                    lines,
                    tax_total: Money::new(tax, CURRENCY),
                    shipping_total: Money::new(shipping, CURRENCY),
                    discount_total: Money::zero(CURRENCY),
                    shipping_address: address.clone(),
                    billing_address: address,
                    currency: CURRENCY,
                    at,
                },
            ),
            (at, OrderCommand::MarkStockReserved { at }),
            (
                at,
                OrderCommand::PassFraudCheck {
                    risk_score: u8::try_from(o.index % 17).unwrap_or(0),
                    reasons: Vec::new(),
                    at,
                },
            ),
        ];
        let paid = at + minutes(2);
        commands.push((
            paid,
            OrderCommand::MarkPaid {
                payment_id,
                amount: Money::new(grand_total, CURRENCY),
                at: paid,
            },
        ));
        if o.reached != Reached::Paid {
            let shipped = at + minutes(26 * 60);
            commands.push((
                shipped,
                OrderCommand::ShipOrder {
                    tracking_number: Some(format!("1ZDEMO{:010}", o.index + 1)),
                    at: shipped,
                },
            ));
        }
        if o.reached == Reached::Delivered {
            let delivered = at + minutes(4 * 24 * 60);
            commands.push((delivered, OrderCommand::MarkDelivered { at: delivered }));
        }
        for (step, (at, command)) in (1..).zip(commands) {
            self.orders
                .execute(
                    &o.id.to_string(),
                    command,
                    &Commands::in_flow(o.id, step, at),
                )
                .await
                .with_context(|| format!("order {}", o.id))?;
        }
        Ok(())
    }

    async fn seed_review(
        &self,
        product_id: Uuid,
        author_id: Uuid,
        stars: u8,
        ordered: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let review_id = Review::id_for(product_id, author_id);
        let flow = Uuid::from_u128(product_id.as_u128() ^ author_id.as_u128());
        let written = ordered + minutes(7 * 24 * 60);
        let approved = written + minutes(3 * 60);
        let (title, body) = REVIEWS[usize::from(stars.clamp(1, 5) - 1)];
        let commands = [
            (
                written,
                ReviewCommand::WriteReview {
                    product_id,
                    author_id,
                    rating: Rating::new(i64::from(stars))?,
                    title: ReviewTitle::parse(title)?,
                    body: ReviewBody::parse(body)?,
                    verified_purchase: true,
                    at: written,
                },
            ),
            (
                approved,
                ReviewCommand::ApproveReview {
                    moderator_id: id(Kind::Moderator, 0),
                    at: approved,
                },
            ),
        ];
        for (step, (at, command)) in (1..).zip(commands) {
            self.reviews
                .execute(&review_id, command, &Commands::in_flow(flow, step, at))
                .await
                .with_context(|| format!("review {review_id}"))?;
        }
        Ok(())
    }
}

/// What `emporium seed` (without `--demo`) says it would write.
#[must_use]
pub fn plan(size: SeedSize) -> String {
    format!(
        "`emporium seed --demo` writes a deterministic demo shop through the command layer:\n\
         - a category tree: {} roots with {} children each\n\
         - {} products with tags, attributes, image keys and prices, published, about {} featured;\n  \
           clothing and running shoes with size/colour variants\n\
         - inventory tracked and received for every SKU, a few below the low-stock threshold ({})\n\
         - {} customers with a verified e-mail and a default address\n\
         - {} past orders, paid, shipped or delivered, and approved reviews by their customers\n\
         - the demo login {DEMO_EMAIL} / {DEMO_PASSWORD}\n\
         Running it again on a seeded database writes nothing.",
        TREE.len(),
        TREE[0].children.len(),
        size.products,
        size.products.div_ceil(50),
        LOW_STOCK_THRESHOLD,
        size.customers,
        size.orders,
    )
}

/// A progress bar on stderr, hidden unless stderr is a terminal.
fn progress(total: usize, label: &'static str) -> ProgressBar {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(total as u64), target);
    bar.set_style(
        ProgressStyle::with_template("{msg:>10} {wide_bar} {human_pos}/{human_len}  ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(label);
    bar
}

/// A small sellable catalogue for tests and benches: one category and `n` published
/// products `{PREFIX}-0..n` (slug `{prefix}-i`, one primary image, `price` each), each
/// tracked with `stock` units on hand, written through the command layer. Returns
/// each SKU with its product and the highest event position written (to wait for
/// the projections).
///
/// # Errors
/// When `prefix` makes an invalid SKU or slug, or a command fails.
pub async fn stocked_products(
    pool: &PgPool,
    prefix: &str,
    n: usize,
    stock: u32,
    price: Money,
) -> anyhow::Result<(Vec<(Sku, Uuid)>, i64)> {
    let meta = || EventMetadata::new(Uuid::new_v4(), Actor::System("seed".into()), Utc::now());
    let lower = prefix.to_lowercase();
    let mut last = 0;
    let category = Uuid::new_v4();
    let c = Dispatcher::<CategoryTree>::new(pool.clone(), Loading::Replay)
        .execute(
            CategoryTree::ID,
            CategoryCommand::CreateCategory {
                category_id: category,
                name: CategoryName::parse(prefix)?,
                slug: Slug::parse(&lower)?,
                parent_id: None,
                at: Utc::now(),
            },
            &meta(),
        )
        .await?;
    last = last.max(c.position.unwrap_or(0));
    let products = Products::new(pool.clone());
    let inventory = Dispatcher::<Inventory>::new(pool.clone(), Loading::Replay);
    let mut skus = Vec::with_capacity(n);
    for i in 0..n {
        let id = Uuid::new_v4();
        let sku = Sku::parse(&format!("{}-{i}", prefix.to_uppercase()))?;
        for command in [
            ProductCommand::CreateProduct {
                product_id: id,
                sku: sku.clone(),
                slug: Slug::parse(&format!("{lower}-{i}"))?,
                name: ProductName::parse(&format!("{prefix} {i}"))?,
                description: Description::parse(prefix)?,
                category_id: category,
                tags: BTreeSet::new(),
                attributes: Attributes::default(),
                price,
                at: Utc::now(),
            },
            ProductCommand::AddImage {
                image_id: Uuid::new_v4(),
                source: ImageSource::key(&format!("{lower}/{i}.jpg"))?,
                alt_text: AltText::parse("Front")?,
                primary: true,
                at: Utc::now(),
            },
            ProductCommand::PublishProduct { at: Utc::now() },
        ] {
            let c = products.execute(id, command, &meta()).await?;
            last = last.max(c.position.unwrap_or(0));
        }
        for command in [
            InventoryCommand::TrackInventory {
                sku: sku.clone(),
                low_stock_threshold: 0,
                at: Utc::now(),
            },
            InventoryCommand::ReceiveStock {
                quantity: Quantity::new(i64::from(stock))?,
                at: Utc::now(),
            },
        ] {
            let c = inventory.execute(sku.as_str(), command, &meta()).await?;
            last = last.max(c.position.unwrap_or(0));
        }
        skus.push((sku, id));
    }
    Ok((skus, last))
}

/// An open cart of a new user holding one unit of `sku` (of `product`), written
/// through the command layer: what a checkout test or bench starts from. Returns the
/// user and the cart.
///
/// # Errors
/// When a command fails.
pub async fn one_line_cart(
    carts: &Dispatcher<emporium_domain::cart::Cart>,
    sku: &Sku,
    product: Uuid,
) -> anyhow::Result<(Uuid, Uuid)> {
    use emporium_domain::cart::{CartCommand, CartOwner};
    let (user, cart) = (Uuid::new_v4(), Uuid::new_v4());
    for command in [
        CartCommand::OpenCart {
            cart_id: cart,
            owner: CartOwner::User { user_id: user },
            currency: Currency::EUR,
            at: Utc::now(),
        },
        CartCommand::AddItem {
            sku: sku.clone(),
            product_id: product,
            quantity: Quantity::new(1)?,
            at: Utc::now(),
        },
    ] {
        let meta = EventMetadata::new(Uuid::new_v4(), Actor::System("seed".into()), Utc::now());
        carts.execute(&cart.to_string(), command, &meta).await?;
    }
    Ok((user, cart))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_valid() {
        let a: Vec<_> = (0..1_000).map(|i| product(i, 1_000)).collect();
        let b: Vec<_> = (0..1_000).map(|i| product(i, 1_000)).collect();
        assert!(
            a.iter()
                .zip(&b)
                .all(|(x, y)| x.name == y.name && x.price == y.price)
        );
        let slugs: HashSet<_> = a.iter().map(|p| p.slug.clone()).collect();
        assert_eq!(slugs.len(), 1_000);
        let skus: HashSet<_> = a
            .iter()
            .flat_map(|p| {
                std::iter::once(p.sku.clone()).chain(p.variants.iter().map(|v| v.sku.clone()))
            })
            .collect();
        assert_eq!(
            skus.len(),
            a.iter().map(|p| 1 + p.variants.len()).sum::<usize>()
        );
        let featured = a.iter().filter(|p| p.featured).count();
        assert_eq!(featured, 20);
        assert!(a.iter().filter(|p| !p.variants.is_empty()).count() > 200);
        for p in &a {
            Slug::parse(&p.slug).unwrap();
            Sku::parse(&p.sku).unwrap();
            ProductName::parse(&p.name).unwrap();
            for t in &p.tags {
                Tag::parse(t).unwrap();
            }
        }
        for i in 0..50 {
            let c = customer(i);
            Email::parse(&c.email).unwrap();
            Address::parse(c.address).unwrap();
        }
    }

    #[test]
    fn the_demo_hash_is_fixed_and_valid() {
        let a = password::hash_with_fixed_salt(DEMO_PASSWORD, DEMO_SALT).unwrap();
        let b = password::hash_with_fixed_salt(DEMO_PASSWORD, DEMO_SALT).unwrap();
        assert_eq!(a, b);
        assert!(a.as_str().starts_with("$argon2id$"));
    }

    #[tokio::test]
    async fn the_demo_password_verifies_against_the_demo_hash() {
        let hash = password::hash_with_fixed_salt(DEMO_PASSWORD, DEMO_SALT).unwrap();
        let passwords = password::Passwords::new(1).unwrap();
        assert!(
            passwords
                .verify(DEMO_PASSWORD.to_owned(), Some(&hash))
                .await
                .unwrap()
        );
        assert!(
            !passwords
                .verify("not-the-password".to_owned(), Some(&hash))
                .await
                .unwrap()
        );
    }
}
