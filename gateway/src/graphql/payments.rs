//! Payments as their owners see them (`myPayments`, `payment`), and the staff-edited
//! e-mail templates (`emailTemplates`, `updateEmailTemplate`).
//!
//! Payments are read from the `payments` read model (`shop/payments.rs`), only the
//! viewer's rows: a foreign payment id answers `NOT_FOUND` exactly like a missing one. Templates are staff-only
//! (`FORBIDDEN` for customers); an update is stored only once it renders against the
//! kind's sample context, otherwise `BAD_USER_INPUT` with the reason.

use async_graphql::{Context, Enum, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::ContextExt;
use super::guard::RoleGuard;
use super::shop::Money;
use crate::error::ApiError;
use crate::notify::templates::{self, TemplateError, TemplateKind, UpdateTemplateError};
use crate::shop::PaymentRow;

/// Where a payment is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub(crate) enum PaymentStatus {
    /// The intent exists at the provider.
    Created,
    /// The customer must complete 3-D Secure.
    RequiresAction,
    /// Funds are held.
    Authorised,
    /// Funds are collected.
    Captured,
    /// Declined.
    Failed,
    /// Cancelled before capture.
    Voided,
    /// Everything captured was refunded.
    Refunded,
}

impl PaymentStatus {
    fn parse(s: &str) -> Result<Self, ApiError> {
        Ok(match s {
            "created" => Self::Created,
            "requires_action" => Self::RequiresAction,
            "authorised" => Self::Authorised,
            "captured" => Self::Captured,
            "failed" => Self::Failed,
            "voided" => Self::Voided,
            "refunded" => Self::Refunded,
            other => {
                return Err(ApiError::internal(anyhow::anyhow!(
                    "unknown payment status `{other}` in the read model"
                )));
            }
        })
    }
}

/// One payment (one per order).
#[derive(Debug, Clone, SimpleObject)]
pub(crate) struct Payment {
    /// The payment id.
    id: ID,
    /// The order it pays for.
    order_id: ID,
    /// Where it is.
    status: PaymentStatus,
    /// `offline` or `stripe`.
    provider: String,
    /// The amount to collect.
    amount: Money,
    /// Held at the provider.
    authorised: Money,
    /// Collected.
    captured: Money,
    /// Refunded so far.
    refunded: Money,
    /// Why it failed (`card_declined`, `insufficient_funds`, ...).
    failure_reason: Option<String>,
    /// When it was created.
    created_at: DateTime<Utc>,
    /// When it last changed.
    updated_at: DateTime<Utc>,
}

impl TryFrom<PaymentRow> for Payment {
    type Error = ApiError;
    fn try_from(r: PaymentRow) -> Result<Self, ApiError> {
        let c = r.currency.as_str();
        Ok(Self {
            id: ID(r.payment_id.to_string()),
            order_id: ID(r.order_id.to_string()),
            status: PaymentStatus::parse(&r.status)?,
            provider: r.provider,
            amount: Money::new(r.amount_minor, c),
            authorised: Money::new(r.authorised_minor, c),
            captured: Money::new(r.captured_minor, c),
            refunded: Money::new(r.refunded_minor, c),
            failure_reason: r.failure_reason,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// What an e-mail template is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub(crate) enum EmailTemplateKind {
    /// Sent when an order is paid.
    OrderConfirmation,
    /// Sent when a payment fails.
    PaymentFailed,
    /// Sent when an order ships.
    OrderShipped,
    /// Sent when money is refunded.
    OrderRefunded,
    /// Sent to staff when a SKU runs low.
    LowStock,
}

impl From<EmailTemplateKind> for TemplateKind {
    fn from(k: EmailTemplateKind) -> Self {
        match k {
            EmailTemplateKind::OrderConfirmation => Self::OrderConfirmation,
            EmailTemplateKind::PaymentFailed => Self::PaymentFailed,
            EmailTemplateKind::OrderShipped => Self::OrderShipped,
            EmailTemplateKind::OrderRefunded => Self::OrderRefunded,
            EmailTemplateKind::LowStock => Self::LowStock,
        }
    }
}

impl From<TemplateKind> for EmailTemplateKind {
    fn from(k: TemplateKind) -> Self {
        match k {
            TemplateKind::OrderConfirmation => Self::OrderConfirmation,
            TemplateKind::PaymentFailed => Self::PaymentFailed,
            TemplateKind::OrderShipped => Self::OrderShipped,
            TemplateKind::OrderRefunded => Self::OrderRefunded,
            TemplateKind::LowStock => Self::LowStock,
        }
    }
}

/// An e-mail template (MiniJinja text): the stored one, or the built-in default.
#[derive(Debug, Clone, SimpleObject)]
pub(crate) struct EmailTemplate {
    /// What it is for.
    kind: EmailTemplateKind,
    /// The subject line template.
    subject: String,
    /// The plain-text body template.
    body: String,
    /// Whether staff replaced the default.
    customised: bool,
    /// When staff last changed it.
    updated_at: Option<DateTime<Utc>>,
    /// The variables it may use, as a JSON example.
    sample_context: async_graphql::Json<serde_json::Value>,
}

impl From<templates::EmailTemplate> for EmailTemplate {
    fn from(t: templates::EmailTemplate) -> Self {
        Self {
            kind: t.kind.into(),
            sample_context: async_graphql::Json(t.kind.sample_context()),
            subject: t.subject,
            body: t.body,
            customised: t.customised,
            updated_at: t.updated_at,
        }
    }
}

/// The viewer's payments; staff's e-mail templates.
#[derive(Debug, Default)]
pub(crate) struct PaymentsQuery;

#[Object]
impl PaymentsQuery {
    /// The viewer's payments, newest first (at most 100).
    async fn my_payments(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: i32,
    ) -> async_graphql::Result<Vec<Payment>> {
        let viewer = ctx.viewer()?;
        let rows = ctx
            .shop()?
            .my_payments(viewer.user_id, i64::from(first))
            .await?;
        Ok(rows
            .into_iter()
            .map(Payment::try_from)
            .collect::<Result<_, _>>()?)
    }

    /// One of the viewer's payments (`NOT_FOUND` for anyone else's).
    async fn payment(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Payment> {
        let viewer = ctx.viewer()?;
        let not_found = || ApiError::NotFound { what: "payment" };
        let id = Uuid::parse_str(id.as_str()).map_err(|_| not_found())?;
        let row = ctx.shop()?.my_payment(viewer.user_id, id).await?;
        Ok(Payment::try_from(row.ok_or_else(not_found)?)?)
    }

    /// Every e-mail template (staff).
    #[graphql(guard = "RoleGuard::staff()")]
    async fn email_templates(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<EmailTemplate>> {
        let all = templates::all(ctx.accounts()?.db())
            .await
            .map_err(ApiError::internal)?;
        Ok(all.into_iter().map(EmailTemplate::from).collect())
    }
}

/// Staff's changes to e-mail templates.
#[derive(Debug, Default)]
pub(crate) struct PaymentsMutation;

fn template_error(e: TemplateError) -> ApiError {
    let (field, rule) = match &e {
        TemplateError::Render { part, .. } => (*part, "template_renders"),
        TemplateError::Shape { part, .. } => (*part, "template_shape"),
    };
    ApiError::BadUserInput {
        field,
        rule,
        message: e.to_string(),
    }
}

#[Object]
impl PaymentsMutation {
    /// Replaces a template (staff). It must render against the kind's sample context
    /// (`emailTemplates { sampleContext }`); undefined variables are errors. Omit both
    /// `subject` and `body` to restore the default.
    #[graphql(guard = "RoleGuard::staff()")]
    async fn update_email_template(
        &self,
        ctx: &Context<'_>,
        kind: EmailTemplateKind,
        subject: Option<String>,
        body: Option<String>,
    ) -> async_graphql::Result<EmailTemplate> {
        let viewer = ctx.viewer()?;
        let template = match (&subject, &body) {
            (Some(s), Some(b)) => Some((s.as_str(), b.as_str())),
            (None, None) => None,
            (None, Some(_)) | (Some(_), None) => {
                return Err(ApiError::BadUserInput {
                    field: if subject.is_none() { "subject" } else { "body" },
                    rule: "template_both_parts",
                    message: "give both subject and body, or neither to restore the default"
                        .to_owned(),
                }
                .into());
            }
        };
        let shop = ctx.shop()?;
        let updated = templates::update(
            ctx.accounts()?.db(),
            kind.into(),
            template,
            viewer.user_id,
            shop.now(),
        )
        .await
        .map_err(|e| match e {
            UpdateTemplateError::Invalid(e) => template_error(e),
            UpdateTemplateError::Unexpected(e) => ApiError::internal(e),
        })?;
        Ok(updated.into())
    }
}
