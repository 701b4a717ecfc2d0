//! Query-shape limits, error codes and per-operation telemetry, as one async-graphql
//! extension ([`Guardrails`]).
//!
//! - aliases and directives are counted on the parsed document, before validation
//!   (async-graphql has no such limits);
//! - depth and complexity (per-field costs from `#[graphql(complexity)]`) are the
//!   values async-graphql's validation computes, compared here so the errors carry
//!   `LIMIT_EXCEEDED`;
//! - errors without a code get one (`GRAPHQL_PARSE_FAILED`,
//!   `GRAPHQL_VALIDATION_FAILED`, `BAD_USER_INPUT` for field arguments, else
//!   `BAD_REQUEST`);
//! - each operation gets a span (`graphql.operation`, with the W3C trace id the
//!   request joined, see [`crate::tracecontext`]) and
//!   `emporium_graphql_operations_total{operation, operation_type, status}` plus
//!   `emporium_graphql_operation_duration_seconds{operation, operation_type, status}`.
//!   `operation` names the operation by its root fields (`products`,
//!   `addToCart`, `me,products`), known only once validation has accepted them, so
//!   its values are bounded by the schema: a client-chosen operation name never
//!   becomes a label. A document that fails before validation is `invalid`; a
//!   selection of more than three root fields is `(multiple)`.
//!
//! Batch size and body size are limited in [`crate::http`], before any parsing of
//! GraphQL.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextPrepareRequest,
    NextRequest, NextValidation,
};
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet,
};
use async_graphql::{Request, Response, ServerError, ServerResult, ValidationResult, Variables};
use tracing::Instrument;

use crate::config::LimitSettings;
use crate::error::ApiError;

/// What a document holds that the limits count.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shape {
    pub(crate) aliases: usize,
    pub(crate) directives: usize,
}

impl Shape {
    fn selection_set(&mut self, set: &SelectionSet) {
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    self.aliases += usize::from(field.alias.is_some());
                    self.directives += field.directives.len();
                    self.selection_set(&field.selection_set.node);
                }
                Selection::FragmentSpread(spread) => {
                    self.directives += spread.node.directives.len();
                }
                Selection::InlineFragment(inline) => {
                    self.directives += inline.node.directives.len();
                    self.selection_set(&inline.node.selection_set.node);
                }
            }
        }
    }

    /// Counts over every operation and fragment of `doc`.
    pub(crate) fn of(doc: &ExecutableDocument) -> Self {
        let mut shape = Self::default();
        for (_, operation) in doc.operations.iter() {
            let operation = &operation.node;
            shape.directives += operation.directives.len();
            for variable in &operation.variable_definitions {
                shape.directives += variable.node.directives.len();
            }
            shape.selection_set(&operation.selection_set.node);
        }
        for fragment in doc.fragments.values() {
            shape.directives += fragment.node.directives.len();
            shape.selection_set(&fragment.node.selection_set.node);
        }
        shape
    }
}

/// The most root fields an `operation` label names.
const MAX_LABELLED_FIELDS: usize = 3;

fn collect_root_fields<'a>(
    doc: &'a ExecutableDocument,
    set: &'a SelectionSet,
    names: &mut Vec<&'a str>,
    depth: usize,
) {
    // Fragments nest; a cycle is a validation error, so stop early rather than loop.
    if depth > 8 {
        return;
    }
    for item in &set.items {
        match &item.node {
            Selection::Field(field) => names.push(field.node.name.node.as_str()),
            Selection::InlineFragment(inline) => {
                collect_root_fields(doc, &inline.node.selection_set.node, names, depth + 1);
            }
            Selection::FragmentSpread(spread) => {
                if let Some(fragment) = doc.fragments.get(&spread.node.fragment_name.node) {
                    collect_root_fields(doc, &fragment.node.selection_set.node, names, depth + 1);
                }
            }
        }
    }
}

/// The metrics label of the operation `name` selects in `doc`: its root fields,
/// sorted, comma-separated.
pub(crate) fn operation_label(doc: &ExecutableDocument, name: Option<&str>) -> String {
    let operation = match (&doc.operations, name) {
        (DocumentOperations::Single(op), _) => Some(op),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next(),
        (DocumentOperations::Multiple(_), None) => None,
    };
    let Some(operation) = operation else {
        return "invalid".to_owned();
    };
    let mut names = Vec::new();
    collect_root_fields(doc, &operation.node.selection_set.node, &mut names, 0);
    names.sort_unstable();
    names.dedup();
    if names.len() > MAX_LABELLED_FIELDS {
        return "(multiple)".to_owned();
    }
    names.join(",")
}

/// The type of the operation `name` selects in `doc` (the only one when unnamed).
pub(crate) fn operation_type(
    doc: &ExecutableDocument,
    name: Option<&str>,
) -> Option<OperationType> {
    match (&doc.operations, name) {
        (DocumentOperations::Single(op), _) => Some(op.node.ty),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).map(|op| op.node.ty),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            ops.values().next().map(|op| op.node.ty)
        }
        (DocumentOperations::Multiple(_), None) => None,
    }
}

fn type_label(ty: Option<OperationType>) -> &'static str {
    match ty {
        Some(OperationType::Query) => "query",
        Some(OperationType::Mutation) => "mutation",
        Some(OperationType::Subscription) => "subscription",
        None => "unknown",
    }
}

/// The extension factory; one [`Guardrail`] per request.
#[derive(Debug, Clone)]
pub struct Guardrails {
    limits: Arc<LimitSettings>,
}

impl Guardrails {
    /// Guardrails enforcing `limits`.
    #[must_use]
    pub fn new(limits: LimitSettings) -> Self {
        Self {
            limits: Arc::new(limits),
        }
    }
}

impl ExtensionFactory for Guardrails {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Guardrail {
            limits: Arc::clone(&self.limits),
            state: Mutex::new(State::default()),
        })
    }
}

#[derive(Debug, Default)]
struct State {
    operation_name: Option<String>,
    operation_type: Option<OperationType>,
    /// The root fields, once parsed; a label only once validation accepted them.
    root_fields: Option<String>,
    validated: bool,
    executed: bool,
}

struct Guardrail {
    limits: Arc<LimitSettings>,
    state: Mutex<State>,
}

impl Guardrail {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn set_code_if_missing(error: &mut ServerError, code: &str) {
    let extensions = error.extensions.get_or_insert_with(Default::default);
    if extensions.get("code").is_none() {
        extensions.set("code", code);
    }
}

#[async_trait::async_trait]
impl Extension for Guardrail {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let trace = crate::tracecontext::current();
        let span = tracing::info_span!(
            "graphql.operation",
            otel.kind = "server",
            operation_type = tracing::field::Empty,
            operation_name = tracing::field::Empty,
            operation = tracing::field::Empty,
            trace_id = trace
                .as_ref()
                .map(crate::tracecontext::TraceContext::trace_id),
            span_id = trace
                .as_ref()
                .map(crate::tracecontext::TraceContext::span_id),
        );
        let started = Instant::now();
        let started_at = std::time::SystemTime::now();
        let mut response = next.run(ctx).instrument(span).await;
        let (operation_type, operation, executed) = {
            let mut state = self.state();
            let operation = match (state.validated, state.root_fields.take()) {
                (true, Some(fields)) => fields,
                _ => "invalid".to_owned(),
            };
            (type_label(state.operation_type), operation, state.executed)
        };
        for error in &mut response.errors {
            let code = if error.path.is_empty() {
                "BAD_REQUEST"
            } else {
                "BAD_USER_INPUT"
            };
            set_code_if_missing(error, code);
        }
        let status = match (response.errors.is_empty(), executed) {
            (true, _) => "ok",
            (false, true) => "error",
            (false, false) => "rejected",
        };
        if let Some(trace) = &trace {
            let mut attributes = vec![
                ("graphql.operation.type", operation_type.to_owned()),
                ("graphql.operation.fields", operation.clone()),
                ("graphql.outcome", status.to_owned()),
            ];
            if let Some(name) = self.state().operation_name.clone() {
                attributes.push(("graphql.operation.name", name));
            }
            crate::telemetry::traces::record(
                format!("graphql {operation_type} {operation}"),
                trace,
                started_at,
                attributes,
                status == "ok",
            );
        }
        metrics::counter!(
            "emporium_graphql_operations_total",
            "operation" => operation.clone(),
            "operation_type" => operation_type,
            "status" => status
        )
        .increment(1);
        metrics::histogram!(
            "emporium_graphql_operation_duration_seconds",
            "operation" => operation,
            "operation_type" => operation_type,
            "status" => status
        )
        .record(started.elapsed().as_secs_f64());
        response
    }

    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        self.state().operation_name = request.operation_name.clone();
        next.run(ctx, request).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await.map_err(|mut e| {
            set_code_if_missing(&mut e, "GRAPHQL_PARSE_FAILED");
            e
        })?;
        {
            let mut state = self.state();
            state.operation_type = operation_type(&doc, state.operation_name.as_deref());
            state.root_fields = Some(operation_label(&doc, state.operation_name.as_deref()));
            let span = tracing::Span::current();
            span.record("operation_type", type_label(state.operation_type));
            if let Some(name) = &state.operation_name {
                span.record("operation_name", name.as_str());
            }
        }
        let shape = Shape::of(&doc);
        let limits = &self.limits;
        if shape.aliases > limits.max_aliases {
            return Err(ApiError::LimitExceeded {
                limit: "aliases",
                max: limits.max_aliases,
                actual: shape.aliases,
            }
            .to_server_error());
        }
        if shape.directives > limits.max_directives {
            return Err(ApiError::LimitExceeded {
                limit: "directives",
                max: limits.max_directives,
                actual: shape.directives,
            }
            .to_server_error());
        }
        Ok(doc)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await.map_err(|mut errors| {
            for e in &mut errors {
                set_code_if_missing(e, "GRAPHQL_VALIDATION_FAILED");
            }
            errors
        })?;
        {
            let mut state = self.state();
            state.validated = true;
            if let Some(fields) = &state.root_fields {
                tracing::Span::current().record("operation", fields.as_str());
            }
        }
        let limits = &self.limits;
        if result.depth > limits.max_depth {
            return Err(vec![
                ApiError::LimitExceeded {
                    limit: "depth",
                    max: limits.max_depth,
                    actual: result.depth,
                }
                .to_server_error(),
            ]);
        }
        if result.complexity > limits.max_complexity {
            return Err(vec![
                ApiError::LimitExceeded {
                    limit: "complexity",
                    max: limits.max_complexity,
                    actual: result.complexity,
                }
                .to_server_error(),
            ]);
        }
        Ok(result)
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        self.state().executed = true;
        next.run(ctx, operation_name).await
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::parser::parse_query;

    use super::*;

    #[test]
    fn counts_aliases_and_directives_everywhere() {
        let doc = parse_query(
            "query Q($v: Int @a) @b { a: x @c { b: y ...F @d ... on T @e { c: z } } }
             fragment F on T @f { d: w @g }",
        )
        .unwrap();
        assert_eq!(
            Shape::of(&doc),
            Shape {
                aliases: 4,
                directives: 7
            }
        );
    }

    #[test]
    fn labels_operations_by_their_root_fields() {
        let doc = parse_query(
            "query A { products { nodes { id } } me { id } ...F } fragment F on QueryRoot { version }
             mutation B { addToCart(sku: \"X\", quantity: 1) { id } }",
        )
        .unwrap();
        assert_eq!(operation_label(&doc, Some("A")), "me,products,version");
        assert_eq!(operation_label(&doc, Some("B")), "addToCart");
        assert_eq!(operation_label(&doc, None), "invalid");
        let many = parse_query("{ a b c d }").unwrap();
        assert_eq!(operation_label(&many, None), "(multiple)");
    }

    #[test]
    fn finds_the_selected_operation_type() {
        let doc = parse_query("query A { x } mutation B { y }").unwrap();
        assert_eq!(
            operation_type(&doc, Some("B")),
            Some(OperationType::Mutation)
        );
        assert_eq!(operation_type(&doc, Some("A")), Some(OperationType::Query));
        assert_eq!(operation_type(&doc, None), None);
        let single = parse_query("mutation { y }").unwrap();
        assert_eq!(operation_type(&single, None), Some(OperationType::Mutation));
    }
}
