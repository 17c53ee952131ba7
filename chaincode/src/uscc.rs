//! The Unified Social Credit Code (GB 32100-2015) that identifies every member organisation.
//!
//! Invariant: a [`Uscc`] value always holds 18 characters of the code alphabet, digits in
//! positions 3 to 8, and a correct check character.

use std::fmt;

/// The 31 characters of the code alphabet, in value order 0..=30.
const ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
/// Weights `3^i mod 31` for positions 0..=16.
const WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];
/// Length of a code.
pub const USCC_LENGTH: usize = 18;

/// Why a string is not a valid USCC.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsccError {
    /// Not 18 characters.
    #[error("a USCC has 18 characters, found {0}")]
    Length(usize),
    /// A character outside the alphabet.
    #[error("character {position} ({found:?}) is not in the USCC alphabet")]
    Character {
        /// 1-based position.
        position: usize,
        /// The character.
        found: char,
    },
    /// The administrative-area characters 3 to 8 are not all digits.
    #[error("characters 3 to 8 of a USCC are digits, found {0:?}")]
    Area(String),
    /// The check character does not match.
    #[error("check character is {found:?}, expected {expected:?}")]
    Check {
        /// The check character computed from the first 17.
        expected: char,
        /// The 18th character given.
        found: char,
    },
}

/// A validated Unified Social Credit Code.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Uscc(String);

fn value_of(character: u8) -> Option<u32> {
    ALPHABET
        .iter()
        .position(|&c| c == character)
        .map(|v| v as u32)
}

impl Uscc {
    /// Parses and checks a code.
    pub fn parse(text: &str) -> Result<Self, UsccError> {
        let bytes = text.as_bytes();
        if bytes.len() != USCC_LENGTH || text.chars().count() != USCC_LENGTH {
            return Err(UsccError::Length(text.chars().count()));
        }
        let mut values = [0u32; USCC_LENGTH];
        for (index, &byte) in bytes.iter().enumerate() {
            values[index] = value_of(byte).ok_or(UsccError::Character {
                position: index + 1,
                found: byte as char,
            })?;
        }
        if !bytes[2..8].iter().all(u8::is_ascii_digit) {
            return Err(UsccError::Area(text[2..8].to_owned()));
        }
        let sum: u32 = values[..17].iter().zip(WEIGHTS).map(|(v, w)| v * w).sum();
        let check = (31 - sum % 31) % 31;
        if values[17] != check {
            return Err(UsccError::Check {
                expected: ALPHABET[check as usize] as char,
                found: bytes[17] as char,
            });
        }
        Ok(Self(text.to_owned()))
    }

    /// The code as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Uscc {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl fmt::Debug for Uscc {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "Uscc({})", self.0)
    }
}

impl TryFrom<&str> for Uscc {
    type Error = UsccError;
    fn try_from(text: &str) -> Result<Self, Self::Error> {
        Self::parse(text)
    }
}

/// Computes the check character for the first 17 characters of a code, for tools and tests
/// that make codes. Returns `None` if a character is outside the alphabet.
#[must_use]
pub fn check_character(first_17: &str) -> Option<char> {
    if first_17.len() != 17 {
        return None;
    }
    let mut sum = 0u32;
    for (byte, weight) in first_17.bytes().zip(WEIGHTS) {
        sum += value_of(byte)? * weight;
    }
    Some(ALPHABET[((31 - sum % 31) % 31) as usize] as char)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLES: [&str; 4] = [
        "914403001922038216",
        "9144030071526726XG",
        "91310115MA1HT7Q4X0",
        "91320594MA1NT7Q45Q",
    ];

    #[test]
    fn accepts_the_domain_examples() {
        for example in EXAMPLES {
            assert_eq!(Uscc::parse(example).expect(example).as_str(), example);
            assert_eq!(check_character(&example[..17]), example.chars().last());
        }
    }

    #[test]
    fn rejects_each_example_with_its_last_character_changed() {
        for example in EXAMPLES {
            for replacement in ALPHABET.iter().map(|&b| b as char) {
                if example.ends_with(replacement) {
                    continue;
                }
                let changed = format!("{}{}", &example[..17], replacement);
                assert!(
                    matches!(Uscc::parse(&changed), Err(UsccError::Check { .. })),
                    "{changed} must be rejected"
                );
            }
        }
    }

    #[test]
    fn rejects_malformed_codes() {
        assert_eq!(Uscc::parse("91440300192203821"), Err(UsccError::Length(17)));
        assert!(matches!(
            Uscc::parse("9144030019220382I6"),
            Err(UsccError::Character { position: 17, .. })
        ));
        assert!(matches!(
            Uscc::parse("91A403001922038216"),
            Err(UsccError::Area(_))
        ));
        assert!(Uscc::parse("91440300192203821é").is_err());
    }
}
