//! Parsed query documents by query text, so a client sending the same operation again
//! (every client does: queries are constants in its code) is not parsed again.
//!
//! Parsing was a twentieth of the gateway's CPU on the addToCart benchmark (pest,
//! allocating a node per token); a kept document is cloned instead. Only documents
//! that parsed are kept, and only from texts of at most [`MAX_TEXT`] bytes; the
//! schema still runs every check on a kept document (recursion depth, directives,
//! the guardrail's alias and directive counts, validation against the variables).
//! Bounded by weight (an estimate of the document's size from its text's), so a
//! client sending ever new texts only evicts.

use async_graphql::Request;
use async_graphql::parser::types::ExecutableDocument;

/// Longest query text whose document is kept, in bytes.
const MAX_TEXT: usize = 8 * 1024;
/// Documents kept at most (about), and their weight in all.
const DOCUMENTS: usize = 2_048;
const WEIGHT: u64 = 16 * 1024 * 1024;

#[derive(Debug, Clone, Copy)]
struct DocumentWeight;

impl quick_cache::Weighter<Box<str>, ExecutableDocument> for DocumentWeight {
    fn weight(&self, text: &Box<str>, _: &ExecutableDocument) -> u64 {
        // A document takes some ten times its text (boxed nodes, positions).
        u64::try_from(text.len() * 11 + 256).unwrap_or(u64::MAX)
    }
}

/// See the module docs.
pub(crate) struct ParsedQueries {
    documents: quick_cache::sync::Cache<Box<str>, ExecutableDocument, DocumentWeight>,
}

impl std::fmt::Debug for ParsedQueries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParsedQueries")
            .field("documents", &self.documents.len())
            .finish()
    }
}

impl Default for ParsedQueries {
    fn default() -> Self {
        Self {
            documents: quick_cache::sync::Cache::with_weighter(DOCUMENTS, WEIGHT, DocumentWeight),
        }
    }
}

impl ParsedQueries {
    /// Hands `request` its document: the kept one, or parsed now and kept. A text
    /// that does not parse is left to the schema, which reports it as usual.
    pub(crate) fn prepare(&self, request: &mut Request) {
        if request.query.len() > MAX_TEXT {
            return;
        }
        if let Some(document) = self.documents.get(request.query.as_str()) {
            metrics::counter!(METRIC, "answer" => "kept").increment(1);
            request.set_parsed_query(document);
            return;
        }
        metrics::counter!(METRIC, "answer" => "parsed").increment(1);
        let text: Box<str> = request.query.as_str().into();
        if let Ok(document) = request.parsed_query() {
            self.documents.insert(text, document.clone());
        }
    }
}

/// Query documents handed to the schema, by `answer`: `kept` or `parsed`.
pub(crate) const METRIC: &str = "emporium_graphql_documents_total";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_is_parsed_once_and_a_broken_one_is_left_to_the_schema() {
        let parsed = ParsedQueries::default();
        let mut first = Request::new("{ products { totalCount } }");
        parsed.prepare(&mut first);
        assert_eq!(parsed.documents.len(), 1);
        let mut again = Request::new("{ products { totalCount } }");
        parsed.prepare(&mut again);
        assert_eq!(parsed.documents.len(), 1);
        assert_eq!(
            format!("{:?}", again.parsed_query().expect("kept document")),
            format!("{:?}", first.parsed_query().expect("parsed document")),
        );

        let mut broken = Request::new("{ products { ");
        parsed.prepare(&mut broken);
        assert_eq!(
            parsed.documents.len(),
            1,
            "a text that does not parse was kept"
        );

        let long = format!("{{ {} }}", "products { totalCount } ".repeat(MAX_TEXT / 8));
        let mut long = Request::new(long);
        parsed.prepare(&mut long);
        assert_eq!(parsed.documents.len(), 1, "a long text was kept");
    }
}
