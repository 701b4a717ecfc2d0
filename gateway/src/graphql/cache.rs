//! The public catalogue cache: whole GraphQL answers to queries that read only the
//! public catalogue (`products`, `product`, `featuredProducts`, `categories`,
//! `category`), kept in memory and valid for as long as the read models they come
//! from have not changed.
//!
//! # What may be cached
//! A single query (not a batch, not a mutation) whose root fields, through inline
//! fragments and fragment spreads, are all in [`PUBLIC_FIELDS`], answered without
//! errors, for an audience that sees the public catalogue: anonymous callers and
//! customers. Staff see unpublished products, so their requests neither read nor fill
//! the cache. None of those fields (nor the types under them) reads the viewer, a
//! cart token or the client address, so one answer serves every caller of the
//! audience; a field that did would have to stay out of the list.
//!
//! # Why it is never stale after a write
//! An entry is keyed by the request (query text, operation name, variables) and
//! stamped with the version of the catalogue it was computed from: the positions at
//! which the `catalog` and `categories` projections last *changed* their tables, as
//! the process's [`CheckpointWatch`](emporium_projections::projection::CheckpointWatch)
//! follows them over LISTEN/NOTIFY. The version is read before the query runs, so an
//! answer that might include a newer change is stamped older and simply misses next
//! time. A mutation that waits for read-your-writes waits on that same watch, so by
//! the time it answers, the version has moved and every older entry misses: a price
//! change, a publish or a stock change shows in the next listing. Events the
//! projections only skip (carts, orders...) do not move the version.
//!
//! Another gateway process learns of a change when its own watch does (one NOTIFY
//! later); until then it may answer from the previous version.
//!
//! # Bounds
//! At most `shop.catalog_cache_bytes` of answer bodies (quick_cache, weighted by body
//! and key size); 0 turns the cache off.

use std::collections::HashSet;
use std::sync::Arc;

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet,
};
use axum::body::Bytes;
use emporium_projections::envelope::CommitPosition;

use crate::auth::Viewer;
use crate::shop::Shop;

/// Root query fields whose answers are the same for every non-staff caller and come
/// only from the `catalog` and `categories` read models.
pub(crate) const PUBLIC_FIELDS: &[&str] = &[
    "products",
    "product",
    "featuredProducts",
    "categories",
    "category",
    "__typename",
];

/// Distinct query texts whose verdict is remembered (about), and the most bytes of
/// query text kept for them.
const VERDICTS: usize = 4_096;
const VERDICT_BYTES: u64 = 4 * 1024 * 1024;

/// A query text and its operation name.
type VerdictKey = (Box<str>, Option<Box<str>>);

#[derive(Debug, Clone, Copy)]
struct TextWeight;

impl quick_cache::Weighter<VerdictKey, bool> for TextWeight {
    fn weight(&self, key: &VerdictKey, _: &bool) -> u64 {
        let bytes = key.0.len() + key.1.as_ref().map_or(0, |o| o.len()) + 32;
        u64::try_from(bytes).unwrap_or(u64::MAX)
    }
}

/// The projections whose tables those fields read.
const SOURCES: [&str; 2] = ["catalog", "categories"];

/// The catalogue's version: where each source projection last changed its tables.
type Version = [Option<CommitPosition>; SOURCES.len()];

/// A request, as far as its answer depends on it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    query: Box<str>,
    operation: Option<Box<str>>,
    variables: Box<str>,
}

impl Key {
    fn weight(&self) -> u64 {
        let bytes = self.query.len()
            + self.operation.as_ref().map_or(0, |o| o.len())
            + self.variables.len();
        u64::try_from(bytes).unwrap_or(u64::MAX)
    }
}

#[derive(Debug, Clone)]
struct Entry {
    version: Version,
    body: Bytes,
}

#[derive(Debug, Clone, Copy)]
struct BodyWeight;

impl quick_cache::Weighter<Key, Entry> for BodyWeight {
    fn weight(&self, key: &Key, entry: &Entry) -> u64 {
        // Never 0 (quick_cache never evicts weightless entries); the fixed part
        // stands for the entry's own overhead.
        key.weight()
            .saturating_add(u64::try_from(entry.body.len()).unwrap_or(u64::MAX))
            .saturating_add(64)
    }
}

/// A lookup that missed: what to stamp the answer with, if it may be kept.
#[derive(Debug)]
pub(crate) struct Pending {
    key: Key,
    version: Version,
}

/// The cache. See the module docs.
pub(crate) struct CatalogCache {
    entries: Option<quick_cache::sync::Cache<Key, Entry, BodyWeight>>,
    /// Whether a query text (with its operation name) reads only the public
    /// catalogue, so each distinct query is parsed for it once.
    verdicts: quick_cache::sync::Cache<VerdictKey, bool, TextWeight>,
    shop: Option<Arc<Shop>>,
}

impl std::fmt::Debug for CatalogCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatalogCache")
            .field("enabled", &self.entries.is_some())
            .field("entries", &self.entries.as_ref().map(|c| c.len()))
            .finish_non_exhaustive()
    }
}

/// What a lookup found.
#[derive(Debug)]
pub(crate) enum Lookup {
    /// The cached answer body.
    Hit(Bytes),
    /// Not cached (or stale): run it, then [`CatalogCache::fill`] with the answer.
    Miss(Pending),
    /// Not a cacheable request, or the cache is off.
    Bypass,
}

impl CatalogCache {
    /// A cache of at most `max_bytes` (0: off) over the shop's checkpoint watch.
    pub(crate) fn new(max_bytes: usize, shop: Option<Arc<Shop>>) -> Self {
        let entries = (max_bytes > 0 && shop.is_some()).then(|| {
            // quick_cache sizes its shards from an item estimate: answers run to a
            // few kilobytes each.
            let items = (max_bytes / 4096).max(16);
            quick_cache::sync::Cache::with_weighter(
                items,
                u64::try_from(max_bytes).unwrap_or(u64::MAX),
                BodyWeight,
            )
        });
        Self {
            entries,
            verdicts: quick_cache::sync::Cache::with_weighter(VERDICTS, VERDICT_BYTES, TextWeight),
            shop,
        }
    }

    /// Whether the request's operation reads only the public catalogue.
    fn cacheable(&self, request: &async_graphql::Request) -> bool {
        let key = (
            Box::<str>::from(request.query.as_str()),
            request.operation_name.as_deref().map(Box::<str>::from),
        );
        if let Some(verdict) = self.verdicts.get(&key) {
            return verdict;
        }
        let verdict = async_graphql::parser::parse_query(&request.query)
            .is_ok_and(|doc| reads_only_public_catalogue(&doc, key.1.as_deref()));
        self.verdicts.insert(key, verdict);
        verdict
    }

    async fn version(&self) -> Option<Version> {
        let watch = self.shop.as_ref()?.checkpoint_watch().await.ok()?;
        Some(SOURCES.map(|name| watch.changed(name)))
    }

    /// Looks `request` up for `viewer`. Only a request the cache may answer (see the
    /// module docs) is looked up; the rest bypass it.
    pub(crate) async fn lookup(
        &self,
        request: &async_graphql::Request,
        viewer: Option<&Viewer>,
    ) -> Lookup {
        let Some(entries) = &self.entries else {
            return Lookup::Bypass;
        };
        if viewer.is_some_and(Viewer::is_staff) || !self.cacheable(request) {
            return Lookup::Bypass;
        }
        let Ok(variables) = serde_json::to_string(&request.variables) else {
            return Lookup::Bypass;
        };
        let Some(version) = self.version().await else {
            return Lookup::Bypass;
        };
        let key = Key {
            query: request.query.as_str().into(),
            operation: request.operation_name.as_deref().map(Into::into),
            variables: variables.into(),
        };
        match entries.get(&key) {
            Some(entry) if entry.version == version => {
                metrics::counter!("emporium_catalog_cache_total", "outcome" => "hit").increment(1);
                Lookup::Hit(entry.body)
            }
            _ => {
                metrics::counter!("emporium_catalog_cache_total", "outcome" => "miss").increment(1);
                Lookup::Miss(Pending { key, version })
            }
        }
    }

    /// Keeps `body`, the answer to the request `pending` came from, unless the
    /// answer carries an error.
    pub(crate) fn fill(&self, pending: Pending, response: &async_graphql::Response, body: &Bytes) {
        let Some(entries) = &self.entries else {
            return;
        };
        if !response.errors.is_empty() {
            return;
        }
        entries.insert(
            pending.key,
            Entry {
                version: pending.version,
                body: body.clone(),
            },
        );
    }
}

/// Whether the operation is a query whose root fields are all in [`PUBLIC_FIELDS`].
pub(crate) fn reads_only_public_catalogue(
    doc: &ExecutableDocument,
    operation_name: Option<&str>,
) -> bool {
    let operation = match (&doc.operations, operation_name) {
        (DocumentOperations::Single(op), _) => op,
        (DocumentOperations::Multiple(ops), Some(name)) => match ops.get(name) {
            Some(op) => op,
            None => return false,
        },
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => match ops.values().next() {
            Some(op) => op,
            None => return false,
        },
        (DocumentOperations::Multiple(_), None) => return false,
    };
    operation.node.ty == OperationType::Query
        && public_root(&operation.node.selection_set.node, doc, &mut HashSet::new())
}

fn public_root<'a>(
    set: &'a SelectionSet,
    doc: &'a ExecutableDocument,
    seen: &mut HashSet<&'a str>,
) -> bool {
    set.items.iter().all(|item| match &item.node {
        Selection::Field(field) => PUBLIC_FIELDS.contains(&field.node.name.node.as_str()),
        Selection::InlineFragment(fragment) => {
            fragment
                .node
                .type_condition
                .as_ref()
                .is_none_or(|c| c.node.on.node.as_str() == "Query")
                && public_root(&fragment.node.selection_set.node, doc, seen)
        }
        Selection::FragmentSpread(spread) => {
            let name = spread.node.fragment_name.node.as_str();
            // A fragment met twice is judged once (a cycle is invalid anyway).
            if !seen.insert(name) {
                return true;
            }
            doc.fragments
                .get(&spread.node.fragment_name.node)
                .is_some_and(|f| {
                    f.node.type_condition.node.on.node.as_str() == "Query"
                        && public_root(&f.node.selection_set.node, doc, seen)
                })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(query: &str, operation: Option<&str>) -> bool {
        let doc = async_graphql::parser::parse_query(query).expect("parses");
        reads_only_public_catalogue(&doc, operation)
    }

    #[test]
    fn only_catalogue_queries_are_public() {
        assert!(public("{ products { edges { cursor } } }", None));
        assert!(public(
            "query Q($s: String!) { product(slug: $s) { id } categories { id } __typename }",
            None
        ));
        assert!(public(
            "query { ...Cat } fragment Cat on Query { featuredProducts { id } category(slug: \"x\") { id } }",
            None
        ));
        assert!(public(
            "{ ... on Query { products { nodes { id } } } }",
            None
        ));
        // Anything viewer-specific, or a write, is not.
        assert!(!public("{ products { nodes { id } } myCart { id } }", None));
        assert!(!public(
            "{ ... { me { id } } products { nodes { id } } }",
            None
        ));
        assert!(!public(
            "query { ...Mine } fragment Mine on Query { myWishlist { count } }",
            None
        ));
        assert!(!public("mutation { logout }", None));
        assert!(!public("{ __schema { types { name } } }", None));
        // Of several operations, the one named.
        let two = "query A { products { nodes { id } } } query B { myCart { id } }";
        assert!(public(two, Some("A")));
        assert!(!public(two, Some("B")));
        assert!(!public(two, None));
        assert!(!public(two, Some("C")));
    }

    fn entry(bytes: usize) -> Entry {
        Entry {
            version: [None, None],
            body: Bytes::from(vec![b'x'; bytes]),
        }
    }

    #[test]
    fn the_cache_is_bounded_by_bytes() {
        let cache = quick_cache::sync::Cache::with_weighter(16, 64 * 1024, BodyWeight);
        for i in 0..1_000 {
            cache.insert(
                Key {
                    query: format!("{{ products(first: {i}) {{ nodes {{ id }} }} }}").into(),
                    operation: None,
                    variables: "{}".into(),
                },
                entry(4 * 1024),
            );
        }
        assert!(cache.weight() <= 64 * 1024, "weight {}", cache.weight());
        assert!(cache.len() < 20, "{} entries kept", cache.len());
        assert!(!cache.is_empty());
    }
}
