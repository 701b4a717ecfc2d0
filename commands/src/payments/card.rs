//! Card numbers, held only as long as a provider call needs them.

use std::fmt;

use emporium_domain::payment::{CardBrand, Last4};

/// Why a card number was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CardNumberError {
    /// Not 12 to 19 digits (spaces and dashes aside).
    #[error("card number must be 12 to 19 digits")]
    Length,
    /// A character other than a digit, a space or a dash.
    #[error("card number may contain only digits, spaces and dashes")]
    InvalidCharacter,
    /// The Luhn check digit is wrong (a typo).
    #[error("card number fails its check digit")]
    Checksum,
}

/// A primary account number, validated (length, digits, Luhn). It has no `Display`,
/// no `Serialize` and a `Debug` that shows only brand and last four, so it cannot end
/// up in a log, an event or a database by accident; keep a [`CardSummary`] instead.
#[derive(Clone, PartialEq, Eq)]
pub struct CardNumber(String);

impl CardNumber {
    /// Validates a number as typed (`4242 4242 4242 4242` or `4242-...` are fine).
    ///
    /// # Errors
    /// [`CardNumberError`].
    pub fn parse(raw: &str) -> Result<Self, CardNumberError> {
        let mut digits = String::with_capacity(19);
        for c in raw.trim().chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' => {}
                _ => return Err(CardNumberError::InvalidCharacter),
            }
        }
        if !(12..=19).contains(&digits.len()) {
            return Err(CardNumberError::Length);
        }
        if !luhn(&digits) {
            return Err(CardNumberError::Checksum);
        }
        Ok(Self(digits))
    }

    /// The card network, from the number's prefix (IIN ranges).
    #[must_use]
    pub fn brand(&self) -> CardBrand {
        let prefix = |n: usize| self.0[..n].parse::<u32>().unwrap_or(0);
        match (prefix(1), prefix(2), prefix(3), prefix(4)) {
            (4, ..) => CardBrand::Visa,
            (_, 34 | 37, ..) => CardBrand::Amex,
            (_, 51..=55, ..) | (.., 2221..=2720) => CardBrand::Mastercard,
            (.., 6011) | (_, 65, ..) | (_, _, 644..=649, _) => CardBrand::Discover,
            (_, 36 | 38 | 39, ..) | (_, _, 300..=305, _) => CardBrand::Diners,
            (_, 35, ..) => CardBrand::Jcb,
            (_, 62, ..) => CardBrand::Unionpay,
            _ => CardBrand::Unknown,
        }
    }

    /// The last four digits.
    #[must_use]
    pub fn last4(&self) -> Last4 {
        let tail = &self.0[self.0.len() - 4..];
        // Four ASCII digits by construction.
        Last4::parse(tail).unwrap_or_else(|_| unreachable!("validated digits"))
    }

    /// The digits, for the provider call that needs them and nothing else.
    pub(crate) fn digits(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for CardNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CardNumber({:?} ****{})", self.brand(), self.last4())
    }
}

/// The Luhn (mod 10) check over ASCII digits.
fn luhn(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// What a payment keeps of a card: brand, last four, and a fingerprint that is the
/// same for the same card at the same provider (for velocity rules), never the number.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CardSummary {
    /// The network.
    pub brand: CardBrand,
    /// The last four digits.
    pub last4: Last4,
    /// An opaque, provider-scoped identifier of the card.
    pub fingerprint: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_validated_and_never_shown() {
        let n = CardNumber::parse("4242 4242 4242 4242").unwrap();
        assert_eq!(n.brand(), CardBrand::Visa);
        assert_eq!(n.last4().as_str(), "4242");
        assert_eq!(format!("{n:?}"), "CardNumber(Visa ****4242)");
        assert_eq!(n.digits(), "4242424242424242");
        assert_eq!(
            CardNumber::parse("4242424242424241"),
            Err(CardNumberError::Checksum)
        );
        assert_eq!(CardNumber::parse("4242"), Err(CardNumberError::Length));
        assert_eq!(
            CardNumber::parse("4242x4242"),
            Err(CardNumberError::InvalidCharacter)
        );
    }

    #[test]
    fn brands_come_from_the_prefix() {
        for (number, brand) in [
            ("5555555555554444", CardBrand::Mastercard),
            ("2223003122003222", CardBrand::Mastercard),
            ("378282246310005", CardBrand::Amex),
            ("6011111111111117", CardBrand::Discover),
            ("3056930009020004", CardBrand::Diners),
            ("3566002020360505", CardBrand::Jcb),
            ("6200000000000005", CardBrand::Unionpay),
            ("4000002760003184", CardBrand::Visa),
        ] {
            assert_eq!(
                CardNumber::parse(number).unwrap().brand(),
                brand,
                "{number}"
            );
        }
    }
}
