//! The user's value objects: each one is valid by construction (`parse` / `TryFrom`),
//! and deserialising one validates it again.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Currency;

/// Why an e-mail address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    /// Empty after trimming.
    #[error("email must not be empty")]
    Empty,
    /// Longer than [`Email::MAX_LEN`].
    #[error("email must be at most {max} characters")]
    TooLong {
        /// The bound.
        max: usize,
    },
    /// Not exactly one `@` separating a local part from a domain.
    #[error("email must contain exactly one `@` between a local part and a domain")]
    MissingAt,
    /// The part before the `@` is empty, too long or has characters outside the
    /// unquoted RFC 5322 set.
    #[error("email local part is not valid")]
    InvalidLocalPart,
    /// The part after the `@` is not a dotted host name.
    #[error("email domain is not valid")]
    InvalidDomain,
}

/// An e-mail address, trimmed and lowercased, with a validated shape
/// (`local@domain.tld`, ASCII only: internationalised domains arrive punycode-encoded).
///
/// Normalisation is what lets the command layer reserve an address for one user:
/// `Ada@Example.org ` and `ada@example.org` are the same address.
#[derive(
    Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    /// The longest address accepted (RFC 5321's path limit minus the brackets).
    pub const MAX_LEN: usize = 254;
    const MAX_LOCAL_LEN: usize = 64;

    /// Validates and normalises an address.
    ///
    /// # Errors
    /// [`EmailError`] naming the broken rule.
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let s = raw.trim().to_ascii_lowercase();
        if s.is_empty() {
            return Err(EmailError::Empty);
        }
        if s.chars().count() > Self::MAX_LEN {
            return Err(EmailError::TooLong { max: Self::MAX_LEN });
        }
        let mut parts = s.split('@');
        let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(EmailError::MissingAt);
        };
        if !valid_local_part(local) {
            return Err(EmailError::InvalidLocalPart);
        }
        if !valid_domain(domain) {
            return Err(EmailError::InvalidDomain);
        }
        Ok(Self(s))
    }

    /// The normalised address.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn valid_local_part(local: &str) -> bool {
    const SPECIALS: &str = "!#$%&'*+/=?^_`{|}~-.";
    !local.is_empty()
        && local.len() <= Email::MAX_LOCAL_LEN
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || SPECIALS.contains(c))
}

fn valid_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        // A top-level domain is never all digits (that would be an IP address).
        && labels
            .last()
            .is_some_and(|tld| !tld.chars().all(|c| c.is_ascii_digit()))
}

impl TryFrom<String> for Email {
    type Error = EmailError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Email> for String {
    fn from(e: Email) -> Self {
        e.0
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Email").field(&self.0).finish()
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a password hash was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordHashError {
    /// Not a PHC string of the argon2id algorithm.
    #[error("password hash must be an argon2id PHC string starting with `$argon2id$`")]
    NotArgon2id,
    /// Starts like argon2id but its parameters, salt or hash segment is missing or
    /// malformed.
    #[error("password hash is not a well-formed argon2id PHC string")]
    Malformed,
}

/// An argon2id password hash in PHC string format
/// (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`).
///
/// The domain never hashes nor verifies passwords: the command layer hashes with the
/// `argon2` crate and passes the result in. This type only checks the shape, so a
/// plain-text password can never be stored by mistake. Its `Debug` output is redacted.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub struct PasswordHash(String);

impl PasswordHash {
    const PREFIX: &'static str = "$argon2id$";
    const MAX_LEN: usize = 512;

    /// Checks that `phc` looks like an argon2id PHC string.
    ///
    /// # Errors
    /// [`PasswordHashError`] naming the broken rule.
    pub fn parse(phc: &str) -> Result<Self, PasswordHashError> {
        let Some(rest) = phc.strip_prefix(Self::PREFIX) else {
            return Err(PasswordHashError::NotArgon2id);
        };
        if phc.len() > Self::MAX_LEN {
            return Err(PasswordHashError::Malformed);
        }
        let segments: Vec<&str> = rest.split('$').collect();
        // `v=19$m=..,t=..,p=..$salt$hash`; the version segment is optional in PHC.
        let (params, salt, hash) = match segments.as_slice() {
            [version, params, salt, hash] if valid_version(version) => (*params, *salt, *hash),
            [params, salt, hash] => (*params, *salt, *hash),
            _ => return Err(PasswordHashError::Malformed),
        };
        if !valid_params(params) || !valid_b64(salt) || !valid_b64(hash) {
            return Err(PasswordHashError::Malformed);
        }
        Ok(Self(phc.to_owned()))
    }

    /// The PHC string, for the verifier.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn valid_version(segment: &str) -> bool {
    segment
        .strip_prefix("v=")
        .is_some_and(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_digit()))
}

fn valid_params(segment: &str) -> bool {
    let mut seen = Vec::new();
    for pair in segment.split(',') {
        let Some((key, value)) = pair.split_once('=') else {
            return false;
        };
        if value.is_empty() || !value.chars().all(|c| c.is_ascii_digit()) {
            return false;
        }
        seen.push(key);
    }
    ["m", "t", "p"].iter().all(|k| seen.contains(k))
}

fn valid_b64(segment: &str) -> bool {
    !segment.is_empty()
        && segment
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/')
}

impl TryFrom<String> for PasswordHash {
    type Error = PasswordHashError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<PasswordHash> for String {
    fn from(h: PasswordHash) -> Self {
        h.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(\"$argon2id$<redacted>\")")
    }
}

/// Why a password-reset token hash was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResetTokenHashError {
    /// Fewer than [`ResetTokenHash::MIN_LEN`] or more than [`ResetTokenHash::MAX_LEN`]
    /// characters.
    #[error("reset token hash must be {min} to {max} characters long")]
    Length {
        /// Lower bound.
        min: usize,
        /// Upper bound.
        max: usize,
    },
    /// A character that is not a hexadecimal digit.
    #[error("reset token hash must be hexadecimal")]
    NotHex,
}

/// The hex-encoded digest (SHA-256, say) of a password-reset token, lowercased.
///
/// The token itself is generated and mailed by the command layer and never reaches
/// the domain; the aggregate only stores and compares its hash.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub struct ResetTokenHash(String);

impl ResetTokenHash {
    /// Shortest accepted digest (128 bits).
    pub const MIN_LEN: usize = 32;
    /// Longest accepted digest (512 bits).
    pub const MAX_LEN: usize = 128;

    /// Validates and normalises a hex digest.
    ///
    /// # Errors
    /// [`ResetTokenHashError`] naming the broken rule.
    pub fn parse(raw: &str) -> Result<Self, ResetTokenHashError> {
        let s = raw.trim().to_ascii_lowercase();
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&s.len()) {
            return Err(ResetTokenHashError::Length {
                min: Self::MIN_LEN,
                max: Self::MAX_LEN,
            });
        }
        if !s.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(ResetTokenHashError::NotHex);
        }
        Ok(Self(s))
    }

    /// The digest, lowercase hex.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Compares two digests in time independent of where they first differ.
    #[must_use]
    pub fn matches(&self, other: &Self) -> bool {
        let (a, b) = (self.0.as_bytes(), other.0.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl TryFrom<String> for ResetTokenHash {
    type Error = ResetTokenHashError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<ResetTokenHash> for String {
    fn from(h: ResetTokenHash) -> Self {
        h.0
    }
}

impl fmt::Debug for ResetTokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A prefix is enough to tell two hashes apart in a test failure.
        let prefix: String = self.0.chars().take(8).collect();
        write!(f, "ResetTokenHash(\"{prefix}...\")")
    }
}

/// Why a personal name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PersonNameError {
    /// Empty after trimming.
    #[error("name must not be empty")]
    Empty,
    /// Longer than [`PersonName::MAX_LEN`] characters.
    #[error("name must be at most {max} characters")]
    TooLong {
        /// The bound.
        max: usize,
    },
    /// Contains a control character (a newline, say).
    #[error("name must not contain control characters")]
    ControlCharacter,
}

/// A first or last name: trimmed, non-empty, at most 100 characters, no control
/// characters, any script.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(try_from = "String", into = "String")]
pub struct PersonName(String);

impl PersonName {
    /// The longest name accepted, in characters.
    pub const MAX_LEN: usize = 100;

    /// Validates and trims a name.
    ///
    /// # Errors
    /// [`PersonNameError`] naming the broken rule.
    pub fn parse(raw: &str) -> Result<Self, PersonNameError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(PersonNameError::Empty);
        }
        if s.chars().count() > Self::MAX_LEN {
            return Err(PersonNameError::TooLong { max: Self::MAX_LEN });
        }
        if s.chars().any(char::is_control) {
            return Err(PersonNameError::ControlCharacter);
        }
        Ok(Self(s.to_owned()))
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PersonName {
    type Error = PersonNameError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<PersonName> for String {
    fn from(n: PersonName) -> Self {
        n.0
    }
}

impl fmt::Display for PersonName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a phone number was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneNumberError {
    /// A character other than digits, a leading `+`, spaces, `-`, `.`, `(` and `)`.
    #[error("phone number may contain only digits, a leading `+` and separators")]
    InvalidCharacter,
    /// Fewer than 7 or more than 15 digits (the E.164 maximum).
    #[error("phone number must have {min} to {max} digits")]
    DigitCount {
        /// Lower bound.
        min: usize,
        /// Upper bound.
        max: usize,
    },
}

/// A phone number, normalised to its digits with an optional leading `+`
/// (`+44 20 7946-0018` becomes `+442079460018`).
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

impl PhoneNumber {
    const MIN_DIGITS: usize = 7;
    const MAX_DIGITS: usize = 15;

    /// Validates and normalises a phone number.
    ///
    /// # Errors
    /// [`PhoneNumberError`] naming the broken rule.
    pub fn parse(raw: &str) -> Result<Self, PhoneNumberError> {
        let s = raw.trim();
        let (plus, rest) = match s.strip_prefix('+') {
            Some(rest) => ("+", rest),
            None => ("", s),
        };
        let mut digits = String::with_capacity(rest.len());
        for c in rest.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' | '.' | '(' | ')' => {}
                _ => return Err(PhoneNumberError::InvalidCharacter),
            }
        }
        if !(Self::MIN_DIGITS..=Self::MAX_DIGITS).contains(&digits.len()) {
            return Err(PhoneNumberError::DigitCount {
                min: Self::MIN_DIGITS,
                max: Self::MAX_DIGITS,
            });
        }
        Ok(Self(format!("{plus}{digits}")))
    }

    /// The normalised number.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PhoneNumber {
    type Error = PhoneNumberError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<PhoneNumber> for String {
    fn from(p: PhoneNumber) -> Self {
        p.0
    }
}

/// Why a language tag was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LanguageError {
    /// Not `language[-Script][-REGION]` with a 2-3 letter language, a 4-letter script
    /// and a 2-letter or 3-digit region.
    #[error("language must be a short BCP 47 tag such as `en`, `pt-BR` or `zh-Hant-TW`, got `{0}`")]
    InvalidTag(String),
}

/// A short BCP 47 language tag: `language[-Script][-REGION]`, case-normalised
/// (`EN_us` becomes `en-US`). Extensions and private-use subtags are not accepted.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(try_from = "String", into = "String")]
pub struct Language(String);

impl Language {
    /// Validates and normalises a tag.
    ///
    /// # Errors
    /// [`LanguageError::InvalidTag`].
    pub fn parse(raw: &str) -> Result<Self, LanguageError> {
        let invalid = || LanguageError::InvalidTag(raw.to_owned());
        let normalised = raw.trim().replace('_', "-");
        let mut subtags = normalised.split('-');
        let language = subtags.next().unwrap_or_default();
        if !(2..=3).contains(&language.len()) || !language.chars().all(|c| c.is_ascii_alphabetic())
        {
            return Err(invalid());
        }
        let mut tag = language.to_ascii_lowercase();
        let mut script_allowed = true;
        let mut region_allowed = true;
        for subtag in subtags {
            let alphabetic = subtag.chars().all(|c| c.is_ascii_alphabetic());
            let numeric = subtag.chars().all(|c| c.is_ascii_digit());
            if script_allowed && subtag.len() == 4 && alphabetic {
                let (head, tail) = subtag.split_at(1);
                tag.push('-');
                tag.push_str(&head.to_ascii_uppercase());
                tag.push_str(&tail.to_ascii_lowercase());
                script_allowed = false;
            } else if region_allowed
                && ((subtag.len() == 2 && alphabetic) || (subtag.len() == 3 && numeric))
            {
                tag.push('-');
                tag.push_str(&subtag.to_ascii_uppercase());
                script_allowed = false;
                region_allowed = false;
            } else {
                return Err(invalid());
            }
        }
        Ok(Self(tag))
    }

    /// The normalised tag.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Language {
    fn default() -> Self {
        Self("en".to_owned())
    }
}

impl TryFrom<String> for Language {
    type Error = LanguageError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Language> for String {
    fn from(l: Language) -> Self {
        l.0
    }
}

/// What a user chose about communication and display. Every field is already a valid
/// value, so the struct is plain data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Preferences {
    /// Whether the user wants the newsletter.
    pub newsletter: bool,
    /// Language for the storefront and e-mails.
    pub language: Language,
    /// Currency prices are shown in.
    pub currency: Currency,
}

impl Default for Preferences {
    /// No newsletter, English, US dollars: what a user gets until they choose.
    fn default() -> Self {
        Self {
            newsletter: false,
            language: Language::default(),
            currency: Currency::USD,
        }
    }
}

/// What a user may do on the platform. The domain records the role; the gateway
/// enforces what each role may access.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Buys things. The role every self-registered user gets.
    #[default]
    Customer,
    /// Runs the shop: catalog, orders, moderation.
    Staff,
    /// Everything staff can do, plus users and settings.
    Admin,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_trimmed_lowercased_and_shape_checked() {
        assert_eq!(
            Email::parse("  Ada.Lovelace+shop@Example.ORG ")
                .unwrap()
                .as_str(),
            "ada.lovelace+shop@example.org"
        );
        assert_eq!(Email::parse("  "), Err(EmailError::Empty));
        assert_eq!(Email::parse("ada.example.org"), Err(EmailError::MissingAt));
        assert_eq!(Email::parse("a@b@example.org"), Err(EmailError::MissingAt));
        assert_eq!(
            Email::parse("@example.org"),
            Err(EmailError::InvalidLocalPart)
        );
        assert_eq!(
            Email::parse("a..b@example.org"),
            Err(EmailError::InvalidLocalPart)
        );
        assert_eq!(
            Email::parse("a b@example.org"),
            Err(EmailError::InvalidLocalPart)
        );
        assert_eq!(
            Email::parse("ada@localhost"),
            Err(EmailError::InvalidDomain)
        );
        assert_eq!(
            Email::parse("ada@-example.org"),
            Err(EmailError::InvalidDomain)
        );
        assert_eq!(
            Email::parse("ada@example..org"),
            Err(EmailError::InvalidDomain)
        );
        assert_eq!(Email::parse("ada@10.0.0.1"), Err(EmailError::InvalidDomain));
        let long = format!("{}@example.org", "a".repeat(250));
        assert_eq!(Email::parse(&long), Err(EmailError::TooLong { max: 254 }));
        let long_local = format!("{}@example.org", "a".repeat(65));
        assert_eq!(Email::parse(&long_local), Err(EmailError::InvalidLocalPart));
        assert!(serde_json::from_str::<Email>("\"not-an-email\"").is_err());
        assert_eq!(
            serde_json::from_str::<Email>("\"A@B.CO\"")
                .unwrap()
                .as_str(),
            "a@b.co"
        );
    }

    #[test]
    fn password_hash_must_be_an_argon2id_phc_string() {
        let ok = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG";
        assert_eq!(PasswordHash::parse(ok).unwrap().as_str(), ok);
        assert!(PasswordHash::parse("$argon2id$m=19456,t=2,p=1$c29tZXNhbHQ$RdescudvJCsg").is_ok());
        assert_eq!(
            PasswordHash::parse("hunter2"),
            Err(PasswordHashError::NotArgon2id)
        );
        assert_eq!(
            PasswordHash::parse("$argon2i$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$RdescudvJCsg"),
            Err(PasswordHashError::NotArgon2id)
        );
        assert_eq!(
            PasswordHash::parse("$argon2id$"),
            Err(PasswordHashError::Malformed)
        );
        assert_eq!(
            PasswordHash::parse("$argon2id$v=19$m=19456,t=2$c29tZXNhbHQ$RdescudvJCsg"),
            Err(PasswordHashError::Malformed)
        );
        assert_eq!(
            PasswordHash::parse("$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$"),
            Err(PasswordHashError::Malformed)
        );
        assert_eq!(
            PasswordHash::parse(&format!("{ok}{}", "A".repeat(512))),
            Err(PasswordHashError::Malformed)
        );
        assert!(!format!("{:?}", PasswordHash::parse(ok).unwrap()).contains("c29tZXNhbHQ"));
    }

    #[test]
    fn reset_token_hash_is_lowercase_hex_of_bounded_length() {
        let h = ResetTokenHash::parse(&"AB".repeat(32)).unwrap();
        assert_eq!(h.as_str(), "ab".repeat(32));
        assert!(h.matches(&ResetTokenHash::parse(&"ab".repeat(32)).unwrap()));
        assert!(!h.matches(&ResetTokenHash::parse(&"ac".repeat(32)).unwrap()));
        assert!(!h.matches(&ResetTokenHash::parse(&"ab".repeat(31)).unwrap()));
        assert_eq!(
            ResetTokenHash::parse("abc"),
            Err(ResetTokenHashError::Length { min: 32, max: 128 })
        );
        assert_eq!(
            ResetTokenHash::parse(&"zz".repeat(32)),
            Err(ResetTokenHashError::NotHex)
        );
    }

    #[test]
    fn person_name_is_trimmed_and_bounded() {
        assert_eq!(PersonName::parse("  Ada ").unwrap().as_str(), "Ada");
        assert_eq!(PersonName::parse("Søren").unwrap().as_str(), "Søren");
        assert_eq!(PersonName::parse(" "), Err(PersonNameError::Empty));
        assert_eq!(
            PersonName::parse(&"x".repeat(101)),
            Err(PersonNameError::TooLong { max: 100 })
        );
        assert_eq!(
            PersonName::parse("Ada\nLovelace"),
            Err(PersonNameError::ControlCharacter)
        );
    }

    #[test]
    fn phone_number_keeps_digits_and_leading_plus() {
        assert_eq!(
            PhoneNumber::parse("+44 (20) 7946-0018").unwrap().as_str(),
            "+442079460018"
        );
        assert_eq!(
            PhoneNumber::parse("030.1234567").unwrap().as_str(),
            "0301234567"
        );
        assert_eq!(
            PhoneNumber::parse("+44 ext 1"),
            Err(PhoneNumberError::InvalidCharacter)
        );
        assert_eq!(
            PhoneNumber::parse("12-34"),
            Err(PhoneNumberError::DigitCount { min: 7, max: 15 })
        );
        assert_eq!(
            PhoneNumber::parse("1234567890123456"),
            Err(PhoneNumberError::DigitCount { min: 7, max: 15 })
        );
    }

    #[test]
    fn language_tags_are_short_and_case_normalised() {
        for (raw, expected) in [
            ("en", "en"),
            ("EN_us", "en-US"),
            ("pt-br", "pt-BR"),
            ("zh-hant-tw", "zh-Hant-TW"),
            ("es-419", "es-419"),
            ("fil", "fil"),
        ] {
            assert_eq!(Language::parse(raw).unwrap().as_str(), expected, "{raw}");
        }
        for raw in [
            "",
            "e",
            "english",
            "en-USA",
            "en-US-Latn",
            "en-US-US",
            "en-",
            "x-klingon",
            "e1",
        ] {
            assert_eq!(
                Language::parse(raw),
                Err(LanguageError::InvalidTag(raw.to_owned())),
                "{raw}"
            );
        }
    }

    #[test]
    fn roles_and_preferences_serialise_as_documented() {
        assert_eq!(serde_json::to_string(&Role::Staff).unwrap(), "\"staff\"");
        assert_eq!(
            serde_json::to_value(Preferences::default()).unwrap(),
            serde_json::json!({"newsletter": false, "language": "en", "currency": "USD"})
        );
    }
}
