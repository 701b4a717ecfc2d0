//! The viewer's address book: `myAddresses` and the address mutations.
//!
//! Inputs carry the address only (no owner: it is always the viewer's); an id that
//! is not in the viewer's book, someone else's included, is `NOT_FOUND`.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use emporium_domain::AddressInput as DomainAddressInput;
use uuid::Uuid;

use super::ContextExt;
use crate::auth::addresses::{AddressEntry, parse_address};
use crate::error::ApiError;

/// A postal address as the client sends it.
#[derive(Debug, Clone, InputObject)]
pub(crate) struct AddressInput {
    /// Recipient.
    full_name: String,
    /// Street and number.
    line1: String,
    /// Apartment, suite, ...
    line2: Option<String>,
    /// City or town.
    city: String,
    /// State, province or region.
    region: Option<String>,
    /// Postal or ZIP code.
    postal_code: String,
    /// ISO 3166-1 alpha-2 country code.
    country: String,
    /// Contact phone.
    phone: Option<String>,
}

impl From<AddressInput> for DomainAddressInput {
    fn from(a: AddressInput) -> Self {
        Self {
            full_name: a.full_name,
            line1: a.line1,
            line2: a.line2,
            city: a.city,
            region: a.region,
            postal_code: a.postal_code,
            country: a.country,
            phone: a.phone,
        }
    }
}

/// An entry of the viewer's address book.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "Address")]
pub(crate) struct AddressView {
    /// The address id.
    id: ID,
    /// Recipient.
    full_name: String,
    /// Street and number.
    line1: String,
    /// Second line.
    line2: Option<String>,
    /// City.
    city: String,
    /// Region.
    region: Option<String>,
    /// Postal code.
    postal_code: String,
    /// ISO 3166-1 alpha-2.
    country: String,
    /// Phone.
    phone: Option<String>,
    /// The default shipping address.
    default_shipping: bool,
    /// The default billing address.
    default_billing: bool,
}

impl From<AddressEntry> for AddressView {
    fn from(e: AddressEntry) -> Self {
        let a = &e.address;
        Self {
            id: ID(e.id.to_string()),
            full_name: a.full_name().to_owned(),
            line1: a.line1().to_owned(),
            line2: a.line2().map(ToOwned::to_owned),
            city: a.city().to_owned(),
            region: a.region().map(ToOwned::to_owned),
            postal_code: a.postal_code().to_owned(),
            country: a.country().as_str().to_owned(),
            phone: a.phone().map(ToOwned::to_owned),
            default_shipping: e.default_shipping,
            default_billing: e.default_billing,
        }
    }
}

fn address_id(id: &ID) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id.as_str()).map_err(|_| ApiError::NotFound { what: "address" })
}

/// The entry `id` of `book`.
fn pick(book: Vec<AddressEntry>, id: Uuid) -> Result<AddressView, ApiError> {
    book.into_iter()
        .find(|e| e.id == id)
        .map(AddressView::from)
        .ok_or(ApiError::NotFound { what: "address" })
}

fn views(book: Vec<AddressEntry>) -> Vec<AddressView> {
    book.into_iter().map(AddressView::from).collect()
}

/// The viewer's addresses.
#[derive(Debug, Default)]
pub(crate) struct AddressQuery;

#[Object]
impl AddressQuery {
    /// The viewer's address book.
    async fn my_addresses(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<AddressView>> {
        let viewer = ctx.viewer()?;
        Ok(views(ctx.accounts()?.my_addresses(viewer).await?))
    }
}

/// Changes to the viewer's address book.
#[derive(Debug, Default)]
pub(crate) struct AddressMutation;

#[Object]
impl AddressMutation {
    /// Adds an address; the first one becomes the default for shipping and billing.
    async fn add_address(
        &self,
        ctx: &Context<'_>,
        input: AddressInput,
    ) -> async_graphql::Result<AddressView> {
        let viewer = ctx.viewer()?;
        let address = parse_address(input.into())?;
        let (id, book) = ctx.accounts()?.add_address(viewer, address).await?;
        Ok(pick(book, id)?)
    }

    /// Replaces one of the viewer's addresses (defaults keep pointing at it).
    async fn update_address(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: AddressInput,
    ) -> async_graphql::Result<AddressView> {
        let viewer = ctx.viewer()?;
        let id = address_id(&id)?;
        let address = parse_address(input.into())?;
        let book = ctx.accounts()?.update_address(viewer, id, address).await?;
        Ok(pick(book, id)?)
    }

    /// Removes one of the viewer's addresses; answers the remaining book.
    async fn remove_address(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Vec<AddressView>> {
        let viewer = ctx.viewer()?;
        let id = address_id(&id)?;
        Ok(views(ctx.accounts()?.remove_address(viewer, id).await?))
    }

    /// Makes one of the viewer's addresses the default for shipping.
    async fn set_default_shipping_address(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<AddressView> {
        let viewer = ctx.viewer()?;
        let id = address_id(&id)?;
        let book = ctx
            .accounts()?
            .set_default_address(viewer, id, true)
            .await?;
        Ok(pick(book, id)?)
    }

    /// Makes one of the viewer's addresses the default for billing.
    async fn set_default_billing_address(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<AddressView> {
        let viewer = ctx.viewer()?;
        let id = address_id(&id)?;
        let book = ctx
            .accounts()?
            .set_default_address(viewer, id, false)
            .await?;
        Ok(pick(book, id)?)
    }
}
