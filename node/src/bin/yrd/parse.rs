//! Parsers of command-line values: hex hashes and keys, USCCs and identifiers, calendar dates,
//! decimal CNY amounts and member keys with roles.
//!
//! Invariant: every parser either returns a value the node's stateless checks accept (for the
//! field it parses) or a message that names what is wrong; no float is ever involved in an
//! amount.

use yrd_chaincode::date::{civil_from_days, days_from_civil};
use yrd_chaincode::transaction::{Identifier, UnitId};
use yrd_chaincode::Uscc;
use yrd_proto::limits::ROLES_PER_KEY_MAX;
use yrd_proto::signing::{parse_public_key, Hash, PublicKeyBytes};
use yrd_proto::v1::Role;

/// Fen in one yuan.
const FEN_PER_YUAN: u64 = 100;
/// Digits after the decimal point of a CNY amount (fen are the smallest unit).
const CNY_FRACTION_DIGITS_MAX: usize = 2;
/// Longest decimal CNY string accepted, in bytes (u64 fen has at most 20 digits).
const CNY_TEXT_BYTES_MAX: usize = 24;
/// Longest date accepted (`YYYY-MM-DD`), in bytes.
const DATE_TEXT_BYTES_MAX: usize = 10;

/// Decodes hex (an optional `0x` prefix is allowed) into exactly `N` bytes.
fn hex_array<const N: usize>(text: &str, what: &str) -> Result<[u8; N], String> {
    let trimmed = text.trim();
    let digits = trimmed
        .strip_prefix("0x")
        .or_else(|| trimmed.strip_prefix("0X"))
        .unwrap_or(trimmed);
    if digits.len() != N * 2 {
        return Err(format!(
            "{what} must be {} hex digits ({N} bytes), found {} characters",
            N * 2,
            digits.len()
        ));
    }
    let bytes = hex::decode(digits).map_err(|error| format!("{what} is not hex: {error}"))?;
    bytes
        .try_into()
        .map_err(|_| format!("{what} must be {N} bytes"))
}

/// A 32-byte SHA-256 hash in hex (document, invoice, contract hashes).
pub fn sha256_hex(text: &str) -> Result<Hash, String> {
    hex_array::<32>(text, "a SHA-256 hash")
}

/// A 32-byte transaction or block hash in hex.
pub fn hash_hex(text: &str) -> Result<Hash, String> {
    hex_array::<32>(text, "a hash")
}

/// A 32-byte ed25519 public key in hex that is a valid point not of small order.
pub fn public_key_hex(text: &str) -> Result<PublicKeyBytes, String> {
    let bytes = hex_array::<32>(text, "a public key")?;
    parse_public_key(&bytes)
        .map(|_| bytes)
        .ok_or_else(|| "the public key is not a valid ed25519 key (or is of small order)".into())
}

/// A Unified Social Credit Code with a correct check character.
pub fn uscc(text: &str) -> Result<String, String> {
    Uscc::parse(text.trim())
        .map(|code| code.as_str().to_owned())
        .map_err(|error| format!("not a valid USCC: {error}"))
}

/// An identifier chosen by a member: 1 to 64 bytes of `A-Z a-z 0-9 . _ - :`.
pub fn identifier(text: &str) -> Result<String, String> {
    Identifier::parse("identifier", text)
        .map(|id| id.as_str().to_owned())
        .map_err(|error| error.problem)
}

/// A receivable unit id: `<receivable_id>` or `<receivable_id>#<part>`.
pub fn unit_id(text: &str) -> Result<String, String> {
    UnitId::parse("unit id", text)
        .map(|unit| unit.to_string())
        .map_err(|error| error.problem)
}

/// Days since 1970-01-01 (UTC) of a civil date `YYYY-MM-DD`; 1970-01-01 itself is day 0.
pub fn date_to_day(text: &str) -> Result<u32, String> {
    let text = text.trim();
    let invalid = || format!("{text:?} is not a date of the form YYYY-MM-DD");
    if text.len() != DATE_TEXT_BYTES_MAX {
        return Err(invalid());
    }
    let mut parts = text.split('-');
    let (Some(year), Some(month), Some(day), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid());
    };
    let all_digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    if year.len() != 4 || month.len() != 2 || day.len() != 2 {
        return Err(invalid());
    }
    if !(all_digits(year) && all_digits(month) && all_digits(day)) {
        return Err(invalid());
    }
    let year: i64 = year.parse().map_err(|_| invalid())?;
    let month: u32 = month.parse().map_err(|_| invalid())?;
    let day: u32 = day.parse().map_err(|_| invalid())?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return Err(invalid());
    }
    let days = days_from_civil(year, month, day);
    // A day past the end of its month (2026-02-30) converts to another date; refuse it.
    if civil_from_days(days) != (year, month, day) {
        return Err(format!("{text} is not a date in the calendar"));
    }
    u32::try_from(days).map_err(|_| format!("{text} is before 1970-01-01"))
}

/// The civil date `YYYY-MM-DD` of a day number (for display).
#[must_use]
pub fn day_to_date(day: u32) -> String {
    let (year, month, day_of_month) = civil_from_days(i64::from(day));
    format!("{year:04}-{month:02}-{day_of_month:02}")
}

/// A decimal CNY amount (`1234.56`, `1234.5`, `1234`) converted exactly into fen, with integer
/// arithmetic only. More than two decimals, signs, exponents and separators are refused.
pub fn cny_to_fen(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let invalid = |why: &str| format!("{text:?} is not a CNY amount like 1234.56: {why}");
    if text.is_empty() || text.len() > CNY_TEXT_BYTES_MAX {
        return Err(invalid("wrong length"));
    }
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        None => (text, ""),
    };
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("the part before the point must be digits"));
    }
    if text.contains('.') && fraction.is_empty() {
        return Err(invalid("digits must follow the point"));
    }
    if fraction.len() > CNY_FRACTION_DIGITS_MAX || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("at most two digits (fen) after the point"));
    }
    let overflow = || invalid("too large");
    let yuan: u64 = whole.parse().map_err(|_| overflow())?;
    let mut fen: u64 = 0;
    for (position, digit) in fraction.bytes().enumerate() {
        let value = u64::from(digit - b'0');
        fen += if position == 0 { value * 10 } else { value };
    }
    yuan.checked_mul(FEN_PER_YUAN)
        .and_then(|total| total.checked_add(fen))
        .ok_or_else(overflow)
}

/// Formats fen as a CNY amount with two decimals (for display).
#[must_use]
pub fn fen_to_cny(fen: u64) -> String {
    format!("{}.{:02}", fen / FEN_PER_YUAN, fen % FEN_PER_YUAN)
}

/// A member key and its roles, as given by `--member-key PUBHEX:role1,role2`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberKeyArg {
    /// The ed25519 public key.
    pub public_key: PublicKeyBytes,
    /// Its roles, in the order given, without repeats.
    pub roles: Vec<Role>,
}

/// Role names accepted on the command line, with their protobuf role.
pub const ROLE_NAMES: [(&str, Role); 6] = [
    ("credit-reporter", Role::CreditReporter),
    ("credit-querier", Role::CreditQuerier),
    ("financier", Role::Financier),
    ("registrar", Role::Registrar),
    ("enterprise", Role::Enterprise),
    ("supervisor", Role::Supervisor),
];

/// Parses `PUBHEX:role1,role2` (roles from [`ROLE_NAMES`]).
pub fn member_key(text: &str) -> Result<MemberKeyArg, String> {
    let Some((key, roles)) = text.trim().split_once(':') else {
        return Err(format!(
            "{text:?} is not PUBHEX:role1,role2 (roles: {})",
            role_list()
        ));
    };
    let public_key = public_key_hex(key)?;
    let mut parsed = Vec::new();
    for name in roles.split(',').map(str::trim) {
        let role = ROLE_NAMES
            .iter()
            .find(|(known, _)| *known == name)
            .map(|(_, role)| *role)
            .ok_or_else(|| format!("unknown role {name:?} (roles: {})", role_list()))?;
        if parsed.contains(&role) {
            return Err(format!("role {name:?} is given twice"));
        }
        parsed.push(role);
    }
    if parsed.len() > ROLES_PER_KEY_MAX {
        return Err(format!("a key has at most {ROLES_PER_KEY_MAX} roles"));
    }
    Ok(MemberKeyArg {
        public_key,
        roles: parsed,
    })
}

fn role_list() -> String {
    ROLE_NAMES
        .iter()
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests fail loudly on purpose.
mod tests {
    use super::*;

    #[test]
    fn dates_convert_to_days_since_epoch() {
        assert_eq!(date_to_day("1970-01-01"), Ok(0));
        assert_eq!(date_to_day("1970-01-02"), Ok(1));
        assert_eq!(date_to_day("2026-01-01"), Ok(20454));
        assert_eq!(date_to_day("2024-02-29"), Ok(19782));
        assert_eq!(day_to_date(20454), "2026-01-01");
        for bad in [
            "2026-02-29",
            "2026-13-01",
            "2026-00-10",
            "2026-04-31",
            "1969-12-31",
            "2026-1-01",
            "20260101",
            "2026/01/01",
            "+026-01-01",
            "",
        ] {
            assert!(date_to_day(bad).is_err(), "{bad} must be refused");
        }
    }

    #[test]
    fn cny_parses_exactly_into_fen() {
        assert_eq!(cny_to_fen("1234.56"), Ok(123_456));
        assert_eq!(cny_to_fen("1234.5"), Ok(123_450));
        assert_eq!(cny_to_fen("1234"), Ok(123_400));
        assert_eq!(cny_to_fen("0.01"), Ok(1));
        assert_eq!(cny_to_fen("0.10"), Ok(10));
        assert_eq!(cny_to_fen("184467440737095516.15"), Ok(u64::MAX));
        assert!(cny_to_fen("184467440737095516.16").is_err(), "overflow");
        for bad in [
            "", "1.234", "-1", "+1", "1e3", "1,000", ".5", "1.", "abc", "1.2x",
        ] {
            assert!(cny_to_fen(bad).is_err(), "{bad} must be refused");
        }
        assert_eq!(fen_to_cny(123_456), "1234.56");
        assert_eq!(fen_to_cny(5), "0.05");
    }

    #[test]
    fn hex_values_are_length_checked() {
        let hash = "ab".repeat(32);
        assert_eq!(sha256_hex(&hash), Ok([0xab; 32]));
        assert_eq!(sha256_hex(&format!("0x{hash}")), Ok([0xab; 32]));
        assert!(sha256_hex(&"ab".repeat(31)).is_err());
        assert!(sha256_hex(&"zz".repeat(32)).is_err());
        assert!(public_key_hex(&"00".repeat(32)).is_err(), "small order");
    }

    #[test]
    fn member_keys_carry_roles() {
        let key = yrd_node::keyfile::generate();
        let hex_key = hex::encode(key.verifying_key().to_bytes());
        let parsed = member_key(&format!("{hex_key}:credit-reporter,enterprise")).unwrap();
        assert_eq!(parsed.public_key, key.verifying_key().to_bytes());
        assert_eq!(parsed.roles, vec![Role::CreditReporter, Role::Enterprise]);
        assert!(member_key(&hex_key).is_err(), "roles are required");
        assert!(member_key(&format!("{hex_key}:banker")).is_err());
        assert!(member_key(&format!("{hex_key}:financier,financier")).is_err());
    }

    #[test]
    fn usccs_and_identifiers_are_checked() {
        assert_eq!(
            uscc("91310115MA1HT7Q4X0"),
            Ok("91310115MA1HT7Q4X0".to_owned())
        );
        assert!(uscc("91310115MA1HT7Q4X1").is_err());
        assert!(identifier("R-2026/1").is_err());
        assert_eq!(identifier("R-2026.1"), Ok("R-2026.1".to_owned()));
        assert_eq!(unit_id("AR-1#2"), Ok("AR-1#2".to_owned()));
        assert!(unit_id("AR-1#0").is_err());
    }
}
