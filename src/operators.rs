//! Operators: the nurses, techs and admins who sign in to the screens (issue #12). The rules
//! are here and pure but for the PIN hash: who an operator id may be, what a PIN must be, the
//! roles, and how many wrong PINs lock an operator out. The journal keeps the operators
//! (`journal::operators`); the daemon signs them in (`agent::signin`).

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};

/// Wrong PINs in a row that lock an operator out.
pub const MAX_WRONG_PINS: i64 = 5;
/// How long a locked-out operator waits.
pub const LOCKOUT: jiff::SignedDuration = jiff::SignedDuration::from_mins(5);
/// The shortest PIN.
pub const MIN_PIN: usize = 6;
/// The longest PIN (a PIN is typed, not pasted).
pub const MAX_PIN: usize = 32;
/// The longest operator id (a badge or user id).
pub const MAX_ID: usize = 64;
/// The longest display name.
pub const MAX_NAME: usize = 80;

/// What an operator may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Apheresis nurse: the print station.
    Nurse,
    /// Cell-lab tech: the receipt station.
    Tech,
    /// Site admin: every screen, devices, outbox, audit, operators.
    Admin,
}

impl Role {
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "nurse" => Some(Role::Nurse),
            "tech" => Some(Role::Tech),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Nurse => "nurse",
            Role::Tech => "tech",
            Role::Admin => "admin",
        }
    }

    /// The screen an operator of this role starts on.
    pub fn home(self) -> &'static str {
        match self {
            Role::Nurse => "/print",
            Role::Tech => "/receive",
            Role::Admin => "/admin",
        }
    }
}

/// Why an operator id, name or PIN is refused (never echoing the value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("operator id: 1 to {MAX_ID} letters, digits, '.', '_' or '-' (a badge or user id)")]
    Id,
    #[error("name: 1 to {MAX_NAME} printable characters")]
    Name,
    #[error("PIN: {MIN_PIN} to {MAX_PIN} digits")]
    Pin,
    #[error("PIN: not one digit repeated, and not digits counting up or down (such as 123456)")]
    GuessablePin,
}

/// An operator id as it may be recorded: a badge's or a user's id.
///
/// # Errors
/// [`Invalid::Id`].
pub fn check_id(id: &str) -> Result<(), Invalid> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok { Ok(()) } else { Err(Invalid::Id) }
}

/// A display name: printable, not blank.
///
/// # Errors
/// [`Invalid::Name`].
pub fn check_name(name: &str) -> Result<(), Invalid> {
    let ok = !name.trim().is_empty()
        && name.chars().count() <= MAX_NAME
        && !name.chars().any(char::is_control);
    if ok { Ok(()) } else { Err(Invalid::Name) }
}

/// A PIN: digits only, at least [`MIN_PIN`].
///
/// # Errors
/// [`Invalid::Pin`].
pub fn check_pin(pin: &str) -> Result<(), Invalid> {
    if (MIN_PIN..=MAX_PIN).contains(&pin.len()) && pin.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(Invalid::Pin)
    }
}

/// A new PIN: a valid one that is not a run anyone would try first (one digit repeated, or
/// digits counting up or down, such as 123456).
///
/// # Errors
/// [`Invalid::Pin`] or [`Invalid::GuessablePin`].
pub fn check_new_pin(pin: &str) -> Result<(), Invalid> {
    check_pin(pin)?;
    let digits = pin.as_bytes();
    let steps: Vec<i16> = digits
        .windows(2)
        .map(|w| i16::from(w[1]) - i16::from(w[0]))
        .collect();
    let run = |step: i16| steps.iter().all(|s| *s == step);
    if run(0) || run(1) || run(-1) {
        return Err(Invalid::GuessablePin);
    }
    Ok(())
}

/// The PIN's Argon2id hash (PHC string: algorithm, parameters and a random salt).
///
/// # Errors
/// The PIN is not a valid PIN, or the hash could not be made.
pub fn hash_pin(pin: &str) -> Result<String, Invalid> {
    check_pin(pin)?;
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    argon2::Argon2::default()
        .hash_password(pin.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|_| Invalid::Pin)
}

/// Whether `pin` is the one hashed in `hash`. Costs one Argon2id evaluation (tens of
/// milliseconds): call it off the async workers and off the journal's owner.
pub fn pin_matches(hash: &str, pin: &str) -> bool {
    if check_pin(pin).is_err() {
        return false;
    }
    PasswordHash::new(hash).is_ok_and(|parsed| {
        argon2::Argon2::default()
            .verify_password(pin.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A hash no PIN matches, to spend the same time on an unknown operator as on a known one.
pub fn decoy_hash() -> &'static str {
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$xqUGnUmE1JZ3k0Cyr2Q0iQGKxAyQ1zBRB7BTzBQsRFo"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_six_or_more_digits() {
        assert_eq!(check_pin("12345"), Err(Invalid::Pin));
        assert_eq!(check_pin("12345a"), Err(Invalid::Pin));
        assert_eq!(check_pin(" 123456"), Err(Invalid::Pin));
        assert_eq!(check_pin(&"1".repeat(33)), Err(Invalid::Pin));
        assert_eq!(check_pin("123456"), Ok(()));
    }

    #[test]
    fn new_pins_are_not_runs() {
        for pin in ["111111", "123456", "987654", "0123456789"] {
            assert_eq!(check_new_pin(pin), Err(Invalid::GuessablePin), "{pin}");
        }
        assert_eq!(check_new_pin("12345"), Err(Invalid::Pin));
        assert_eq!(check_new_pin("135790"), Ok(()));
        assert_eq!(check_new_pin("112233"), Ok(()));
    }

    #[test]
    fn ids_are_badge_like_and_names_printable() {
        assert_eq!(check_id("RN-0042"), Ok(()));
        assert_eq!(check_id("a b"), Err(Invalid::Id));
        assert_eq!(check_id(""), Err(Invalid::Id));
        assert_eq!(check_id("x\u{1b}[2J"), Err(Invalid::Id));
        assert_eq!(check_name("Ana Müller"), Ok(()));
        assert_eq!(check_name("  "), Err(Invalid::Name));
        assert_eq!(check_name("a\nb"), Err(Invalid::Name));
    }

    #[test]
    fn a_pin_matches_only_its_own_argon2id_hash() {
        let hash = hash_pin("246810").expect("hash");
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(pin_matches(&hash, "246810"));
        assert!(!pin_matches(&hash, "246811"));
        assert!(!pin_matches(&hash, "24681"));
        assert!(!pin_matches("not a hash", "246810"));
        assert!(!pin_matches(decoy_hash(), "246810"));
        // Two hashes of one PIN differ (random salt).
        assert_ne!(hash, hash_pin("246810").expect("hash"));
    }
}
