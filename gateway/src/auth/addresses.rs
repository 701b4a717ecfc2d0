//! The viewer's address book, over the `User` aggregate.
//!
//! Reads load the aggregate rather than the `customers` read model: a user's stream
//! is short (registration and a few profile changes) and cached by the dispatcher
//! after each commit, so the answer shows the change at once without waiting for a
//! projection, exactly as `me` does. Ownership is structural: only the viewer's own
//! aggregate is ever loaded, so someone else's address id is simply not in it and is
//! answered `NOT_FOUND`, like a missing one.

use emporium_commands::CommandError;
use emporium_domain::user::{User, UserCommand, UserError};
use emporium_domain::{Address, AddressError, AddressInput};
use uuid::Uuid;

use super::{Accounts, Viewer};
use crate::error::ApiError;

/// An address-book entry with its default flags.
#[derive(Debug, Clone)]
pub(crate) struct AddressEntry {
    pub(crate) id: Uuid,
    pub(crate) address: Address,
    pub(crate) default_shipping: bool,
    pub(crate) default_billing: bool,
}

/// The address book of `user`, in id order.
fn entries(user: &User) -> Vec<AddressEntry> {
    let shipping = user.default_shipping_address();
    let billing = user.default_billing_address();
    user.addresses()
        .map(|(id, address)| AddressEntry {
            id,
            address: address.clone(),
            default_shipping: shipping == Some(id),
            default_billing: billing == Some(id),
        })
        .collect()
}

/// Validates an address from the client, naming the field (`input.<field>`).
pub(crate) fn parse_address(input: AddressInput) -> Result<Address, ApiError> {
    Address::parse(input).map_err(|e| {
        let field = match &e {
            AddressError::MissingField(f) | AddressError::TooLong { field: f, .. } => match *f {
                "full_name" => "input.fullName",
                "line1" => "input.line1",
                "line2" => "input.line2",
                "city" => "input.city",
                "region" => "input.region",
                "postal_code" => "input.postalCode",
                "phone" => "input.phone",
                _ => "input",
            },
            AddressError::InvalidCountry(_) => "input.country",
        };
        let rule = match &e {
            AddressError::MissingField(_) => "required",
            AddressError::TooLong { .. } => "too_long",
            AddressError::InvalidCountry(_) => "country_code",
        };
        ApiError::bad_input(field, rule, e)
    })
}

fn address_error(e: CommandError<UserError>) -> ApiError {
    match e {
        CommandError::Rejected(UserError::AddressNotFound { .. }) => {
            ApiError::NotFound { what: "address" }
        }
        CommandError::Rejected(UserError::TooManyAddresses { max }) => ApiError::bad_input(
            "input",
            "addresses_max",
            format!("an address book holds at most {max} addresses"),
        ),
        CommandError::Rejected(UserError::NotRegistered | UserError::Deactivated) => {
            ApiError::Unauthenticated
        }
        CommandError::Rejected(e) => ApiError::internal(anyhow::anyhow!("user refused: {e}")),
        CommandError::Conflict { .. } => ApiError::Conflict,
        CommandError::Unexpected(e) => ApiError::Internal(e),
    }
}

impl Accounts {
    /// The viewer's address book.
    ///
    /// # Errors
    /// `UNAUTHENTICATED` for an account that no longer exists.
    pub(crate) async fn my_addresses(
        &self,
        viewer: &Viewer,
    ) -> Result<Vec<AddressEntry>, ApiError> {
        Ok(entries(&self.load(viewer.user_id).await?))
    }

    async fn address_command(
        &self,
        viewer: &Viewer,
        command: UserCommand,
    ) -> Result<Vec<AddressEntry>, ApiError> {
        self.users
            .execute(viewer.user_id, command, &self.metadata(viewer.user_id))
            .await
            .map_err(address_error)?;
        self.my_addresses(viewer).await
    }

    /// Adds an address; the first one becomes both defaults. Returns the new id and
    /// the book.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` naming the field or a full book.
    pub(crate) async fn add_address(
        &self,
        viewer: &Viewer,
        address: Address,
    ) -> Result<(Uuid, Vec<AddressEntry>), ApiError> {
        let address_id = Uuid::new_v4();
        let first = self
            .load(viewer.user_id)
            .await?
            .addresses()
            .next()
            .is_none();
        let at = self.clock.now();
        let mut book = self
            .address_command(
                viewer,
                UserCommand::AddAddress {
                    address_id,
                    address,
                    at,
                },
            )
            .await?;
        if first {
            for command in [
                UserCommand::SetDefaultShippingAddress { address_id, at },
                UserCommand::SetDefaultBillingAddress { address_id, at },
            ] {
                book = self.address_command(viewer, command).await?;
            }
        }
        Ok((address_id, book))
    }

    /// Replaces one of the viewer's addresses.
    ///
    /// # Errors
    /// `NOT_FOUND` for a missing or foreign id.
    pub(crate) async fn update_address(
        &self,
        viewer: &Viewer,
        address_id: Uuid,
        address: Address,
    ) -> Result<Vec<AddressEntry>, ApiError> {
        let at = self.clock.now();
        self.address_command(
            viewer,
            UserCommand::UpdateAddress {
                address_id,
                address,
                at,
            },
        )
        .await
    }

    /// Removes one of the viewer's addresses (a default pointing at it is cleared).
    ///
    /// # Errors
    /// `NOT_FOUND` for a missing or foreign id.
    pub(crate) async fn remove_address(
        &self,
        viewer: &Viewer,
        address_id: Uuid,
    ) -> Result<Vec<AddressEntry>, ApiError> {
        let at = self.clock.now();
        self.address_command(viewer, UserCommand::RemoveAddress { address_id, at })
            .await
    }

    /// Makes one of the viewer's addresses the default for shipping or billing.
    ///
    /// # Errors
    /// `NOT_FOUND` for a missing or foreign id.
    pub(crate) async fn set_default_address(
        &self,
        viewer: &Viewer,
        address_id: Uuid,
        shipping: bool,
    ) -> Result<Vec<AddressEntry>, ApiError> {
        let at = self.clock.now();
        let command = if shipping {
            UserCommand::SetDefaultShippingAddress { address_id, at }
        } else {
            UserCommand::SetDefaultBillingAddress { address_id, at }
        };
        self.address_command(viewer, command).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_errors_name_the_input_field() {
        let input = AddressInput {
            full_name: "Ada".into(),
            line1: "1 Road".into(),
            city: "London".into(),
            postal_code: "N1".into(),
            country: "Britain".into(),
            ..AddressInput::default()
        };
        match parse_address(input) {
            Err(ApiError::BadUserInput { field, rule, .. }) => {
                assert_eq!((field, rule), ("input.country", "country_code"));
            }
            other => panic!("{other:?}"),
        }
    }
}
