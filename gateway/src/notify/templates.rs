//! E-mail templates: five kinds, each with a built-in default that staff may replace.
//!
//! Templates are [MiniJinja](https://docs.rs/minijinja) text (no HTML, no
//! auto-escaping): a subject line and a plain-text body over the kind's context (see
//! [`TemplateKind::sample_context`]). Undefined variables are errors, and rendering is
//! bounded by fuel, so a template staff save is proven to render against the kind's
//! sample context before it is stored; a stored template that still fails on a real
//! event falls back to the default (logged), so no mail is lost to a template.

use chrono::{DateTime, Utc};
use emporium_commands::args;
use emporium_commands::sql::Db;
use minijinja::{Environment, UndefinedBehavior};
use serde_json::{Value, json};
use uuid::Uuid;

/// What a mail is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TemplateKind {
    /// The order is paid (`OrderPaid`): the order confirmation.
    OrderConfirmation,
    /// The payment failed (`PaymentFailed`).
    PaymentFailed,
    /// The order left the warehouse (`OrderShipped`).
    OrderShipped,
    /// Money went back to the customer (`PaymentRefunded`).
    OrderRefunded,
    /// A SKU fell to its threshold (`LowStockDetected`), to staff.
    LowStock,
}

/// Longest subject, in characters.
const MAX_SUBJECT: usize = 200;
/// Longest template source or rendered body, in characters.
const MAX_BODY: usize = 20_000;
/// Rendering budget (instructions); generous for any sane template, fatal for a
/// runaway loop.
const FUEL: u64 = 200_000;

impl TemplateKind {
    /// Every kind.
    pub const ALL: [Self; 5] = [
        Self::OrderConfirmation,
        Self::PaymentFailed,
        Self::OrderShipped,
        Self::OrderRefunded,
        Self::LowStock,
    ];

    /// The stable name (the `email_templates` key).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::OrderConfirmation => "order_confirmation",
            Self::PaymentFailed => "payment_failed",
            Self::OrderShipped => "order_shipped",
            Self::OrderRefunded => "order_refunded",
            Self::LowStock => "low_stock",
        }
    }

    /// The kind named `name`.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// The built-in (subject, body).
    #[must_use]
    pub const fn default_template(self) -> (&'static str, &'static str) {
        match self {
            Self::OrderConfirmation => (
                "Order {{ order.reference }} confirmed",
                "Hello {{ customer.first_name }},\n\n\
                 thank you for your order {{ order.reference }} at {{ shop_name }}. We received your\n\
                 payment of {{ payment.amount }} and are preparing:\n\n\
                 {% for line in order.lines %}- {{ line.quantity }} x {{ line.name }} ({{ line.sku }}): {{ line.total }}\n{% endfor %}\n\
                 Total: {{ order.total }}\n\n\
                 We will write again when it ships.\n",
            ),
            Self::PaymentFailed => (
                "Payment for order {{ order.reference }} failed",
                "Hello {{ customer.first_name }},\n\n\
                 the payment of {{ order.total }} for your order {{ order.reference }} did not go\n\
                 through ({{ payment.reason_text }}). Nothing was charged. You are welcome to\n\
                 order again with another card.\n\n\
                 {{ shop_name }}\n",
            ),
            Self::OrderShipped => (
                "Order {{ order.reference }} shipped",
                "Hello {{ customer.first_name }},\n\n\
                 your order {{ order.reference }} is on its way.\n\
                 {% if shipment.tracking_number %}Tracking number: {{ shipment.tracking_number }}\n{% endif %}\n\
                 {{ shop_name }}\n",
            ),
            Self::OrderRefunded => (
                "Refund of {{ refund.amount }} for order {{ order.reference }}",
                "Hello {{ customer.first_name }},\n\n\
                 we refunded {{ refund.amount }} for your order {{ order.reference }}\
                 {% if refund.fully_refunded %} (the whole order){% else %} (refunded so far: {{ refund.total_refunded }}){% endif %}.\n\
                 It may take a few days to appear on your statement.\n\n\
                 {{ shop_name }}\n",
            ),
            Self::LowStock => (
                "Low stock: {{ stock.sku }} ({{ stock.available }} left)",
                "{{ stock.sku }} is down to {{ stock.available }} available unit(s), at or below\n\
                 its threshold of {{ stock.threshold }}. Time to reorder.\n\n\
                 {{ shop_name }}\n",
            ),
        }
    }

    /// A context with every variable the kind's mails carry, for validation and
    /// previews. Real mails carry the same shape.
    #[must_use]
    pub fn sample_context(self) -> Value {
        let order = json!({
            "id": "0190b7a2-0000-7000-8000-000000000000",
            "reference": "0190B7A2",
            "total": "59.90 EUR",
            "subtotal": "49.90 EUR",
            "tax": "9.48 EUR",
            "shipping": "10.00 EUR",
            "discount": "0.00 EUR",
            "lines": [
                { "name": "Linen shirt", "sku": "SHIRT-L", "quantity": 1, "unit_price": "49.90 EUR", "total": "49.90 EUR" }
            ],
        });
        let customer = json!({ "first_name": "Ada", "email": "ada@example.com" });
        let shop_name = "Emporium";
        match self {
            Self::OrderConfirmation => json!({
                "shop_name": shop_name, "customer": customer, "order": order,
                "payment": { "amount": "59.90 EUR" },
            }),
            Self::PaymentFailed => json!({
                "shop_name": shop_name, "customer": customer, "order": order,
                "payment": { "reason": "insufficient_funds", "reason_text": "insufficient funds" },
            }),
            Self::OrderShipped => json!({
                "shop_name": shop_name, "customer": customer, "order": order,
                "shipment": { "tracking_number": "1Z999AA10123456784" },
            }),
            Self::OrderRefunded => json!({
                "shop_name": shop_name, "customer": customer, "order": order,
                "refund": { "amount": "59.90 EUR", "total_refunded": "59.90 EUR", "fully_refunded": true },
            }),
            Self::LowStock => json!({
                "shop_name": shop_name,
                "stock": { "sku": "SHIRT-L", "available": 3, "threshold": 5 },
            }),
        }
    }
}

/// A template as staff see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailTemplate {
    /// Its kind.
    pub kind: TemplateKind,
    /// The subject template.
    pub subject: String,
    /// The body template.
    pub body: String,
    /// Whether staff replaced the default.
    pub customised: bool,
    /// When staff last changed it.
    pub updated_at: Option<DateTime<Utc>>,
}

impl EmailTemplate {
    fn default_for(kind: TemplateKind) -> Self {
        let (subject, body) = kind.default_template();
        Self {
            kind,
            subject: subject.to_owned(),
            body: body.to_owned(),
            customised: false,
            updated_at: None,
        }
    }
}

/// A rendered mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// One line.
    pub subject: String,
    /// Plain text.
    pub body: String,
}

/// Why a template was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The subject or body does not parse or render (the message says where).
    #[error("{part} does not render: {message}")]
    Render {
        /// `subject` or `body`.
        part: &'static str,
        /// MiniJinja's explanation.
        message: String,
    },
    /// Empty, too long, or a subject over several lines.
    #[error("{part} {rule}")]
    Shape {
        /// `subject` or `body`.
        part: &'static str,
        /// What is wrong.
        rule: &'static str,
    },
}

fn render_one(part: &'static str, source: &str, context: &Value) -> Result<String, TemplateError> {
    if source.chars().count() > MAX_BODY {
        return Err(TemplateError::Shape {
            part,
            rule: "is too long",
        });
    }
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    let failed = |e: minijinja::Error| TemplateError::Render {
        part,
        message: format!("{e:#}"),
    };
    let template = env.template_from_str(source).map_err(failed)?;
    template
        .render(minijinja::value::Serde(context))
        .map_err(failed)
}

/// Renders a subject and body against `context`.
///
/// # Errors
/// [`TemplateError`] when either does not render or the result is malformed (an empty
/// or multi-line subject, an empty body, more than the size limits).
pub fn render(subject: &str, body: &str, context: &Value) -> Result<Rendered, TemplateError> {
    let subject = render_one("subject", subject, context)?.trim().to_owned();
    if subject.is_empty() {
        return Err(TemplateError::Shape {
            part: "subject",
            rule: "renders empty",
        });
    }
    if subject.contains(['\r', '\n']) {
        return Err(TemplateError::Shape {
            part: "subject",
            rule: "must be one line",
        });
    }
    if subject.chars().count() > MAX_SUBJECT {
        return Err(TemplateError::Shape {
            part: "subject",
            rule: "is longer than 200 characters",
        });
    }
    let body = render_one("body", body, context)?;
    if body.trim().is_empty() {
        return Err(TemplateError::Shape {
            part: "body",
            rule: "renders empty",
        });
    }
    if body.chars().count() > MAX_BODY {
        return Err(TemplateError::Shape {
            part: "body",
            rule: "renders longer than 20000 characters",
        });
    }
    Ok(Rendered { subject, body })
}

/// The template of `kind`: the stored one, else the default.
///
/// # Errors
/// When the database cannot be read.
pub async fn load(db: &Db, kind: TemplateKind) -> anyhow::Result<EmailTemplate> {
    let row: Option<(String, String, DateTime<Utc>)> = db
        .fetch_optional(
            "SELECT subject, body, updated_at FROM email_templates WHERE kind = $1",
            args![kind.as_str()],
        )
        .await?;
    Ok(match row {
        Some((subject, body, updated_at)) => EmailTemplate {
            kind,
            subject,
            body,
            customised: true,
            updated_at: Some(updated_at),
        },
        None => EmailTemplate::default_for(kind),
    })
}

/// Every kind's template, in [`TemplateKind::ALL`] order.
///
/// # Errors
/// When the database cannot be read.
pub async fn all(db: &Db) -> anyhow::Result<Vec<EmailTemplate>> {
    let mut templates = Vec::with_capacity(TemplateKind::ALL.len());
    for kind in TemplateKind::ALL {
        templates.push(load(db, kind).await?);
    }
    Ok(templates)
}

/// Why an update failed.
#[derive(Debug, thiserror::Error)]
pub enum UpdateTemplateError {
    /// The template does not render against the kind's sample context.
    #[error(transparent)]
    Invalid(#[from] TemplateError),
    /// The database failed.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Stores staff's template for `kind` after proving it renders against the kind's
/// sample context; `None` for both restores the default.
///
/// # Errors
/// [`UpdateTemplateError::Invalid`] (nothing stored) or a database failure.
pub async fn update(
    db: &Db,
    kind: TemplateKind,
    template: Option<(&str, &str)>,
    staff_id: Uuid,
    now: DateTime<Utc>,
) -> Result<EmailTemplate, UpdateTemplateError> {
    let Some((subject, body)) = template else {
        db.execute(
            "DELETE FROM email_templates WHERE kind = $1",
            args![kind.as_str()],
        )
        .await
        .map_err(anyhow::Error::from)?;
        return Ok(EmailTemplate::default_for(kind));
    };
    render(subject, body, &kind.sample_context())?;
    db.execute(
        "INSERT INTO email_templates (kind, subject, body, updated_at, updated_by)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (kind) DO UPDATE
           SET subject = excluded.subject, body = excluded.body,
               updated_at = excluded.updated_at, updated_by = excluded.updated_by",
        args![kind.as_str(), subject, body, now, staff_id],
    )
    .await
    .map_err(anyhow::Error::from)?;
    Ok(EmailTemplate {
        kind,
        subject: subject.to_owned(),
        body: body.to_owned(),
        customised: true,
        updated_at: Some(now),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_renders_its_sample() {
        for kind in TemplateKind::ALL {
            let (subject, body) = kind.default_template();
            let rendered = render(subject, body, &kind.sample_context())
                .unwrap_or_else(|e| panic!("{}: {e}", kind.as_str()));
            assert!(!rendered.subject.is_empty());
            assert_eq!(TemplateKind::parse(kind.as_str()), Some(kind));
        }
        let r = render(
            TemplateKind::OrderShipped.default_template().0,
            TemplateKind::OrderShipped.default_template().1,
            &TemplateKind::OrderShipped.sample_context(),
        )
        .unwrap();
        assert_eq!(r.subject, "Order 0190B7A2 shipped");
        assert!(
            r.body.contains("Tracking number: 1Z999AA10123456784"),
            "{}",
            r.body
        );
    }

    #[test]
    fn broken_templates_are_refused_with_the_reason() {
        let ctx = TemplateKind::OrderShipped.sample_context();
        assert!(matches!(
            render("{{ order.reference", "x", &ctx),
            Err(TemplateError::Render {
                part: "subject",
                ..
            })
        ));
        // A typo in a variable name is an error, not an empty string.
        assert!(matches!(
            render("ok", "{{ order.refrence }}", &ctx),
            Err(TemplateError::Render { part: "body", .. })
        ));
        assert!(matches!(
            render("a\n{{ order.reference }}", "x", &ctx),
            Err(TemplateError::Shape {
                part: "subject",
                ..
            })
        ));
        assert!(matches!(
            render("  ", "x", &ctx),
            Err(TemplateError::Shape { .. })
        ));
        assert!(matches!(
            render("s", " \n", &ctx),
            Err(TemplateError::Shape { part: "body", .. })
        ));
        // A runaway loop runs out of fuel.
        let runaway =
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}";
        assert!(matches!(
            render("s", runaway, &ctx),
            Err(TemplateError::Render { part: "body", .. })
        ));
    }
}
