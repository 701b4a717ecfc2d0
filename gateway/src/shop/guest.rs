//! Guest cart tokens.
//!
//! An anonymous shopper's cart is reached through a token the gateway mints: 32
//! random bytes, base64url (43 characters), handed to the client once and sent back
//! in the `X-Cart-Token` header. The token itself is never stored or published: the
//! cart's `GuestKey` (in its events and the `carts` read model) is the SHA-256 of the
//! token, and the guest's cart ids are derived from that key like a user's from the
//! user id. Knowing a cart id, a key, or anything on the event stream therefore does
//! not let anyone act on the cart; only the token does, and a token that was never
//! minted (its first cart does not exist) finds nothing.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use emporium_domain::cart::GuestKey;
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::ApiError;

/// The token's length in characters (32 bytes, base64url without padding).
const TOKEN_LEN: usize = 43;

/// A fresh, unguessable guest token.
pub(crate) fn mint() -> String {
    let mut bytes = [0_u8; 32];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The guest key a token stands for. A malformed token names no cart.
///
/// # Errors
/// `NOT_FOUND` (a cart) for anything that is not a minted token's shape.
pub(crate) fn key_for(token: &str) -> Result<GuestKey, ApiError> {
    let well_formed = token.len() == TOKEN_LEN
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !well_formed {
        return Err(ApiError::NotFound { what: "cart" });
    }
    let mut hash = Sha256::new();
    hash.update(b"emporium.guest-cart-token.v1");
    hash.update(token.as_bytes());
    GuestKey::parse(&URL_SAFE_NO_PAD.encode(hash.finalize()))
        .map_err(|e| ApiError::internal(anyhow::anyhow!("guest key: {e}")))
}

/// The id of generation `generation` of the guest's cart.
pub(crate) fn cart_id(key: &GuestKey, generation: u32) -> Uuid {
    let mut hash = Sha256::new();
    hash.update(b"emporium.cart.guest.v1");
    hash.update(key.as_str().as_bytes());
    hash.update(generation.to_be_bytes());
    let digest = hash.finalize();
    let mut bytes = [0_u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_keyed_by_their_hash() {
        let (a, b) = (mint(), mint());
        assert_ne!(a, b);
        assert_eq!(a.len(), TOKEN_LEN);
        let key = key_for(&a).unwrap();
        assert_ne!(key.as_str(), a, "the key is not the token");
        assert_eq!(key_for(&a).unwrap(), key);
        assert_ne!(key_for(&b).unwrap(), key);
        assert_ne!(cart_id(&key, 0), cart_id(&key, 1));
        assert_eq!(cart_id(&key, 0).get_version_num(), 8);
    }

    #[test]
    fn malformed_tokens_name_no_cart() {
        for bad in [
            "",
            "short",
            &"x".repeat(44),
            &format!("{}!", "a".repeat(42)),
        ] {
            assert!(matches!(
                key_for(bad),
                Err(ApiError::NotFound { what: "cart" })
            ));
        }
    }
}
