//! Validated identifiers.
//!
//! Every identifier that crosses a trust boundary (HTTP path, CLI argument, JSON body)
//! is parsed into one of these types first. Parsing rejects empty values, values that
//! are too long and characters outside a safe set, with an [`IdError`] that names the
//! field, so a bad id never reaches a store, a blob key or a log line.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why an identifier was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The value was empty.
    #[error("{field} must not be empty")]
    Empty {
        /// The field that was being parsed (`tenant`, `execution_id`, ...).
        field: &'static str,
    },
    /// The value was longer than allowed.
    #[error("{field} is {len} bytes long; at most {max} are allowed")]
    TooLong {
        /// The field that was being parsed.
        field: &'static str,
        /// Length of the rejected value in bytes.
        len: usize,
        /// The maximum length.
        max: usize,
    },
    /// The value contained a character outside the allowed set.
    #[error("{field} contains the character {ch:?} at byte {at}; allowed: {allowed}")]
    BadChar {
        /// The field that was being parsed.
        field: &'static str,
        /// The offending character.
        ch: char,
        /// Its byte offset.
        at: usize,
        /// A human description of the allowed characters.
        allowed: &'static str,
    },
}

fn validate(
    field: &'static str,
    value: &str,
    max: usize,
    allowed: &'static str,
    ok: fn(char) -> bool,
    first_ok: fn(char) -> bool,
) -> Result<(), IdError> {
    if value.is_empty() {
        return Err(IdError::Empty { field });
    }
    if value.len() > max {
        return Err(IdError::TooLong {
            field,
            len: value.len(),
            max,
        });
    }
    for (at, ch) in value.char_indices() {
        let good = if at == 0 { first_ok(ch) } else { ok(ch) };
        if !good {
            return Err(IdError::BadChar {
                field,
                ch,
                at,
                allowed,
            });
        }
    }
    Ok(())
}

macro_rules! validated_id {
    (
        $(#[$meta:meta])*
        $name:ident, field = $field:literal, max = $max:expr, allowed = $allowed:literal,
        ok = $ok:expr, first = $first:expr
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The field name used in error messages.
            pub const FIELD: &'static str = $field;
            /// Maximum length in bytes.
            pub const MAX_LEN: usize = $max;

            /// Parses and validates `value`.
            ///
            /// # Errors
            /// [`IdError`] naming the field when the value is empty, too long or contains
            /// a character outside the allowed set.
            pub fn new(value: impl Into<String>) -> Result<Self, IdError> {
                let value = value.into();
                validate($field, &value, $max, $allowed, $ok, $first)?;
                Ok(Self(value))
            }

            /// The identifier as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::new(s).map_err(serde::de::Error::custom)
            }
        }
    };
}

fn slug_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'
}
fn slug_first(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}
fn token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}
fn token_first(c: char) -> bool {
    c.is_ascii_alphanumeric()
}
fn subject_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@' | '+' | ':' | '|')
}
fn key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '+' | '=' | '/')
}

validated_id!(
    /// A tenant: lowercase letters, digits, `-` and `_`, starting with a letter or digit,
    /// at most 63 bytes. The tenant is part of every key (DESIGN.md rule 3), including
    /// blob keys, so its charset is deliberately narrow.
    ///
    /// ```
    /// use mc_core::TenantId;
    /// assert!(TenantId::new("acme").is_ok());
    /// assert!(TenantId::new("../etc").is_err());
    /// ```
    TenantId, field = "tenant", max = 63, allowed = "a-z 0-9 - _ (first: a-z 0-9)",
    ok = slug_char, first = slug_first
);

validated_id!(
    /// An execution id such as `exec_123`: ASCII letters, digits, `-`, `_`, `.`,
    /// starting with a letter or digit, at most 128 bytes.
    ExecutionId, field = "execution_id", max = 128, allowed = "A-Z a-z 0-9 - _ . (first: alphanumeric)",
    ok = token_char, first = token_first
);

validated_id!(
    /// A task's id within its workflow manifest (`fetch`): ASCII letters, digits, `-`,
    /// `_`, `.`, starting with a letter or digit, at most 128 bytes.
    TaskId, field = "task_id", max = 128, allowed = "A-Z a-z 0-9 - _ . (first: alphanumeric)",
    ok = token_char, first = token_first
);

validated_id!(
    /// The subject of an actor (`alice@company`, an OAuth `sub`): ASCII letters,
    /// digits and `-_.@+:|`, at most 256 bytes.
    ActorId, field = "actor", max = 256, allowed = "A-Z a-z 0-9 - _ . @ + : | (first: alphanumeric)",
    ok = subject_char, first = token_first
);

validated_id!(
    /// A client-chosen idempotency key (the `Idempotency-Key` header): ASCII
    /// letters, digits and `-_.:+=/`, at most 255 bytes.
    IdempotencyKey, field = "idempotency_key", max = 255, allowed = "A-Z a-z 0-9 - _ . : + = / (first: alphanumeric)",
    ok = key_char, first = token_first
);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn errors_name_the_field() {
        assert_eq!(
            TenantId::new("").unwrap_err(),
            IdError::Empty { field: "tenant" }
        );
        let e = ExecutionId::new("exec/1").unwrap_err();
        assert!(matches!(
            e,
            IdError::BadChar {
                field: "execution_id",
                ch: '/',
                at: 4,
                ..
            }
        ));
        let e = IdempotencyKey::new("k".repeat(256)).unwrap_err();
        assert!(e.to_string().starts_with("idempotency_key is 256 bytes"));
    }

    #[test]
    fn tenant_rejects_uppercase_and_traversal() {
        assert!(TenantId::new("Acme").is_err());
        assert!(TenantId::new("-acme").is_err());
        assert!(TenantId::new("a..b").is_err());
        assert!(TenantId::new("acme-eu_1").is_ok());
    }

    #[test]
    fn deserialize_validates() {
        let bad: Result<ActorId, _> = serde_json::from_str("\"bob smith\"");
        assert!(bad.unwrap_err().to_string().contains("actor"));
        let good: ActorId = serde_json::from_str("\"alice@company\"").unwrap();
        assert_eq!(good.as_str(), "alice@company");
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_accepted_ids_roundtrip(s in ".{0,300}") {
            if let Ok(id) = ExecutionId::new(s.clone()) {
                prop_assert_eq!(id.as_str(), s.as_str());
                prop_assert!(!s.contains('/'));
            }
            let _ = TenantId::new(s.clone());
            let _ = ActorId::new(s.clone());
            let _ = IdempotencyKey::new(s);
        }
    }
}
