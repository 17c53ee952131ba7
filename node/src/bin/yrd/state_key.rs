//! State keys named on the command line (`credit-report:CR-1`, `holding:F-1:<uscc>`,
//! `raw:<hex>`), built with the chaincode's own key functions (`yrd_chaincode::keys`).
//!
//! Invariant: a parsed key is exactly the key the chaincode writes for that record, and every
//! variable part passes the check the same field of a transaction passes (identifiers, USCCs,
//! positive numbers), so a malformed KEY is refused before any request is sent.

use std::fmt;

use yrd_chaincode::keys;
use yrd_proto::v1::QueryPurpose;

use crate::parse;

/// Longest raw key accepted, in bytes: the node's own limit on a requested key.
pub const RAW_KEY_BYTES_MAX: usize = yrd_node::proofs::KEY_BYTES_MAX;

/// The forms of KEY, for help texts and error messages.
pub const KEY_FORMS: &str = "member:USCC, credit-report:ID, report-version:ID:N, \
authorization:SUBJECT:GRANTEE:PURPOSE_NUMBER, receivable:ID, unit:ID:PART, fund:ID, \
holding:FUND:HOLDER, fund-pledge:N, freeze:N, raw:HEX";

/// A state key, with the text it was named by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateKey {
    /// The key's bytes in the state.
    pub bytes: Vec<u8>,
    /// The key in its command-line form, with its parts as checked (`credit-report:CR-1`).
    pub name: String,
}

impl fmt::Display for StateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// A decimal number of type `T`: digits only, no sign, no separators.
fn number<T: std::str::FromStr>(text: &str, what: &str) -> Result<T, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{what} {text:?} is not a decimal number"));
    }
    text.parse()
        .map_err(|_| format!("{what} {text:?} is out of range"))
}

/// A positive decimal number of type `T`.
fn positive<T: std::str::FromStr + Default + PartialEq>(
    text: &str,
    what: &str,
) -> Result<T, String> {
    let value: T = number(text, what)?;
    if value == T::default() {
        return Err(format!("{what} must be 1 or more"));
    }
    Ok(value)
}

/// A query purpose by its protobuf number (1 loan approval, 2 post-loan management,
/// 3 guarantee approval, 4 supply-chain finance), as the byte stored in the key.
fn purpose(text: &str) -> Result<u8, String> {
    let number: u8 = number(text, "purpose number")?;
    match QueryPurpose::try_from(i32::from(number)) {
        Ok(QueryPurpose::Unspecified) | Err(_) => Err(format!(
            "purpose number {number} is not a purpose (1 loan approval, 2 post-loan management, \
             3 guarantee approval, 4 supply-chain finance)"
        )),
        Ok(_) => Ok(number),
    }
}

/// Splits `text` at its last `:`; identifiers may contain `:`, numbers and USCCs never do.
fn last_part<'a>(text: &'a str, form: &str) -> Result<(&'a str, &'a str), String> {
    text.rsplit_once(':')
        .ok_or_else(|| format!("expected {form}"))
}

/// Parses KEY (see [`KEY_FORMS`]).
pub fn state_key(text: &str) -> Result<StateKey, String> {
    let text = text.trim();
    let Some((kind, rest)) = text.split_once(':') else {
        return Err(format!("{text:?} is not a KEY; the forms are {KEY_FORMS}"));
    };
    let (bytes, name) = match kind {
        "member" => {
            let uscc = parse::uscc(rest)?;
            (keys::member(&uscc), format!("member:{uscc}"))
        }
        "credit-report" => {
            let id = parse::identifier(rest)?;
            (keys::credit_report(&id), format!("credit-report:{id}"))
        }
        "report-version" => {
            let (id, version) = last_part(rest, "report-version:ID:N")?;
            let id = parse::identifier(id)?;
            let version: u32 = positive(version, "report version")?;
            (
                keys::credit_report_version(&id, version),
                format!("report-version:{id}:{version}"),
            )
        }
        "authorization" => {
            let parts: Vec<&str> = rest.split(':').collect();
            let [subject, grantee, purpose_number] = parts.as_slice() else {
                return Err("expected authorization:SUBJECT:GRANTEE:PURPOSE_NUMBER".to_owned());
            };
            let subject = parse::uscc(subject)?;
            let grantee = parse::uscc(grantee)?;
            let purpose = purpose(purpose_number)?;
            (
                keys::authorization(&subject, &grantee, purpose),
                format!("authorization:{subject}:{grantee}:{purpose}"),
            )
        }
        "receivable" => {
            let id = parse::identifier(rest)?;
            (keys::receivable(&id), format!("receivable:{id}"))
        }
        "unit" => {
            let (id, part) = last_part(rest, "unit:ID:PART")?;
            let id = parse::identifier(id)?;
            // Part 0 is the root unit of the receivable.
            let part: u32 = number(part, "unit part")?;
            (
                keys::receivable_unit(&id, part),
                format!("unit:{id}:{part}"),
            )
        }
        "fund" => {
            let id = parse::identifier(rest)?;
            (keys::fund(&id), format!("fund:{id}"))
        }
        "holding" => {
            let (fund, holder) = last_part(rest, "holding:FUND:HOLDER")?;
            let fund = parse::identifier(fund)?;
            let holder = parse::uscc(holder)?;
            (
                keys::holding(&fund, &holder),
                format!("holding:{fund}:{holder}"),
            )
        }
        "fund-pledge" => {
            let id: u64 = positive(rest, "pledge id")?;
            (keys::fund_pledge(id), format!("fund-pledge:{id}"))
        }
        "freeze" => {
            let id: u64 = positive(rest, "freeze id")?;
            (keys::freeze(id), format!("freeze:{id}"))
        }
        "raw" => {
            let digits = rest
                .strip_prefix("0x")
                .or_else(|| rest.strip_prefix("0X"))
                .unwrap_or(rest);
            let bytes =
                hex::decode(digits).map_err(|error| format!("raw key is not hex: {error}"))?;
            if bytes.is_empty() || bytes.len() > RAW_KEY_BYTES_MAX {
                return Err(format!(
                    "a raw key is 1 to {RAW_KEY_BYTES_MAX} bytes, found {}",
                    bytes.len()
                ));
            }
            let name = format!("raw:{}", hex::encode(&bytes));
            (bytes, name)
        }
        other => {
            return Err(format!(
                "unknown key kind {other:?}; the forms are {KEY_FORMS}"
            ))
        }
    };
    Ok(StateKey { bytes, name })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests fail loudly on purpose.
mod tests {
    use super::*;

    const USCC_A: &str = "91310115MA1HT7Q4X0";
    const USCC_B: &str = "914403001922038216";

    fn bytes(text: &str) -> Vec<u8> {
        state_key(text).unwrap().bytes
    }

    #[test]
    fn every_form_builds_the_chaincode_key() {
        assert_eq!(bytes(&format!("member:{USCC_A}")), keys::member(USCC_A));
        assert_eq!(bytes("credit-report:CR-1"), keys::credit_report("CR-1"));
        assert_eq!(
            bytes("report-version:CR-1:2"),
            keys::credit_report_version("CR-1", 2)
        );
        assert_eq!(
            bytes(&format!("authorization:{USCC_A}:{USCC_B}:3")),
            keys::authorization(USCC_A, USCC_B, 3)
        );
        assert_eq!(bytes("receivable:AR-1"), keys::receivable("AR-1"));
        assert_eq!(bytes("unit:AR-1:0"), keys::receivable_unit("AR-1", 0));
        assert_eq!(bytes("unit:AR-1:7"), keys::receivable_unit("AR-1", 7));
        assert_eq!(bytes("fund:F.1"), keys::fund("F.1"));
        assert_eq!(
            bytes(&format!("holding:F.1:{USCC_B}")),
            keys::holding("F.1", USCC_B)
        );
        assert_eq!(bytes("fund-pledge:12"), keys::fund_pledge(12));
        assert_eq!(bytes("freeze:1"), keys::freeze(1));
        assert_eq!(bytes("raw:632f722f52"), b"c/r/R".to_vec());
        assert_eq!(bytes("raw:0x632F"), b"c/".to_vec());
    }

    #[test]
    fn identifiers_with_colons_keep_their_colons() {
        assert_eq!(
            bytes("report-version:CR:2026:1:4"),
            keys::credit_report_version("CR:2026:1", 4)
        );
        assert_eq!(bytes("unit:AR:9:2"), keys::receivable_unit("AR:9", 2));
        assert_eq!(
            bytes(&format!("holding:F:1:{USCC_A}")),
            keys::holding("F:1", USCC_A)
        );
        assert_eq!(bytes("credit-report:a:b"), keys::credit_report("a:b"));
    }

    #[test]
    fn names_are_canonical() {
        let key = state_key(" raw:0X632F ").unwrap();
        assert_eq!(key.name, "raw:632f");
        assert_eq!(key.to_string(), "raw:632f");
        assert_eq!(
            state_key("credit-report:CR-1").unwrap().name,
            "credit-report:CR-1"
        );
    }

    #[test]
    fn malformed_keys_are_refused() {
        let long_id = "A".repeat(65);
        let long_raw = format!("raw:{}", "00".repeat(RAW_KEY_BYTES_MAX + 1));
        for bad in [
            "",
            "credit-report",
            "credit-report:",
            "credit-report:R/1",
            &format!("credit-report:{long_id}"),
            "report:CR-1",
            "CREDIT-REPORT:CR-1",
            "member:91310115MA1HT7Q4X1",
            "member:",
            "report-version:CR-1",
            "report-version:CR-1:0",
            "report-version:CR-1:-1",
            "report-version:CR-1:+1",
            "report-version:CR-1:4294967296",
            "report-version::1",
            &format!("authorization:{USCC_A}:{USCC_B}"),
            &format!("authorization:{USCC_A}:{USCC_B}:0"),
            &format!("authorization:{USCC_A}:{USCC_B}:5"),
            &format!("authorization:{USCC_A}:{USCC_B}:loan"),
            &format!("authorization:{USCC_A}:{USCC_B}:1:2"),
            &format!("authorization:{USCC_A}:91310115MA1HT7Q4X1:1"),
            "receivable:AR 1",
            "unit:AR-1",
            "unit:AR-1:x",
            "unit:AR-1:4294967296",
            "fund:",
            "holding:F-1",
            "holding:F-1:91310115MA1HT7Q4X1",
            &format!("holding::{USCC_A}"),
            "fund-pledge:0",
            "fund-pledge:",
            "fund-pledge:18446744073709551616",
            "freeze:abc",
            "freeze:1.5",
            "raw:",
            "raw:0",
            "raw:zz",
            &long_raw,
        ] {
            assert!(state_key(bad).is_err(), "{bad:?} must be refused");
        }
        let longest = format!("raw:{}", "00".repeat(RAW_KEY_BYTES_MAX));
        assert_eq!(state_key(&longest).unwrap().bytes.len(), RAW_KEY_BYTES_MAX);
    }
}
