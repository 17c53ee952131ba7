//! The one error type of the `yrd` CLI and its mapping to exit codes and to JSON.
//!
//! Invariant: every failure the CLI reports goes through [`CliError`], so the exit code and the
//! stderr/JSON rendering are decided in one place (documented in `yrd --help`).

use serde_json::{json, Value};
use tonic::Code;
use yrd_chaincode::transaction::MalformedError;
use yrd_node::keyfile::KeyFileError;
use yrd_proto::signing::SigningError;

/// Exit code of success.
pub const EXIT_OK: u8 = 0;
/// Exit code of any failure not listed below.
pub const EXIT_OTHER: u8 = 1;
/// Exit code of a bad command line or bad local input.
pub const EXIT_USAGE: u8 = 2;
/// Exit code of gRPC `INVALID_ARGUMENT`.
pub const EXIT_INVALID_ARGUMENT: u8 = 3;
/// Exit code of gRPC `NOT_FOUND`.
pub const EXIT_NOT_FOUND: u8 = 4;
/// Exit code of gRPC `PERMISSION_DENIED`.
pub const EXIT_PERMISSION_DENIED: u8 = 5;
/// Exit code of gRPC `DEADLINE_EXCEEDED` or a local timeout.
pub const EXIT_DEADLINE_EXCEEDED: u8 = 6;
/// Exit code of gRPC `RESOURCE_EXHAUSTED`.
pub const EXIT_RESOURCE_EXHAUSTED: u8 = 7;
/// Exit code of a transaction that was committed with a rejection receipt.
pub const EXIT_REJECTED: u8 = 8;
/// Exit code of an answer that does not verify against the genesis file.
pub const EXIT_NOT_VERIFIED: u8 = 9;

/// Why a `yrd` command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A local input (flag value, file content) is not acceptable.
    #[error("{0}")]
    Input(String),
    /// A key file cannot be read or written.
    #[error("key file {0}")]
    KeyFile(#[from] KeyFileError),
    /// A local file cannot be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The transaction fails the node's stateless checks (checked locally before sending).
    #[error("invalid transaction: {0}")]
    Malformed(#[from] MalformedError),
    /// The transaction cannot be signed or is too large.
    #[error("cannot sign the transaction: {0}")]
    Signing(#[from] SigningError),
    /// The node cannot be reached.
    #[error("cannot connect to {endpoint}: {reason}")]
    Connect {
        /// The endpoint tried.
        endpoint: String,
        /// What went wrong.
        reason: String,
    },
    /// The node answered a call with a gRPC error status.
    #[error("{call} failed: {} ({}): {}", code_name(.status.code()), i32::from(.status.code()), .status.message())]
    Status {
        /// The gRPC method.
        call: &'static str,
        /// The status returned.
        status: tonic::Status,
    },
    /// No answer came within the timeout.
    #[error("{call} failed: DEADLINE_EXCEEDED: no answer within {seconds} s")]
    Timeout {
        /// The gRPC method.
        call: &'static str,
        /// The timeout, in seconds.
        seconds: u64,
    },
    /// The node answered something the CLI cannot use.
    #[error("{call} returned an unexpected response: {problem}")]
    Response {
        /// The gRPC method.
        call: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// An answer does not verify against the genesis file, or does not answer what was asked.
    #[error("{what} does not verify: {problem}")]
    NotVerified {
        /// The answer (which call or file).
        what: String,
        /// The check that failed.
        problem: String,
    },
}

impl CliError {
    /// The process exit code for this error (see `yrd --help`).
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Input(_)
            | Self::KeyFile(_)
            | Self::Io { .. }
            | Self::Malformed(_)
            | Self::Signing(_) => EXIT_USAGE,
            Self::Status { status, .. } => exit_code_of(status.code()),
            Self::Timeout { .. } => EXIT_DEADLINE_EXCEEDED,
            Self::Connect { .. } | Self::Response { .. } => EXIT_OTHER,
            Self::NotVerified { .. } => EXIT_NOT_VERIFIED,
        }
    }

    /// The error as the one JSON object printed on stdout under `--json`.
    #[must_use]
    pub fn to_json(&self) -> Value {
        let (code, grpc_message) = match self {
            Self::Status { status, .. } => (
                Some(code_name(status.code())),
                Some(status.message().to_owned()),
            ),
            Self::Timeout { .. } => (Some(code_name(Code::DeadlineExceeded)), None),
            Self::Connect { .. } => (Some(code_name(Code::Unavailable)), None),
            _ => (None, None),
        };
        json!({
            "error": {
                "message": self.to_string(),
                "grpc_code": code,
                "grpc_message": grpc_message,
                "exit_code": self.exit_code(),
            }
        })
    }
}

/// The exit code of a gRPC status code.
#[must_use]
pub fn exit_code_of(code: Code) -> u8 {
    match code {
        Code::Ok => EXIT_OK,
        Code::InvalidArgument => EXIT_INVALID_ARGUMENT,
        Code::NotFound => EXIT_NOT_FOUND,
        Code::PermissionDenied => EXIT_PERMISSION_DENIED,
        Code::DeadlineExceeded => EXIT_DEADLINE_EXCEEDED,
        Code::ResourceExhausted => EXIT_RESOURCE_EXHAUSTED,
        _ => EXIT_OTHER,
    }
}

/// The canonical name of a gRPC status code (`NOT_FOUND`).
#[must_use]
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests fail loudly on purpose.
mod tests {
    use super::*;

    #[test]
    fn grpc_codes_map_to_documented_exit_codes() {
        let status = |code| CliError::Status {
            call: "GetStatus",
            status: tonic::Status::new(code, "because"),
        };
        assert_eq!(status(Code::InvalidArgument).exit_code(), 3);
        assert_eq!(status(Code::NotFound).exit_code(), 4);
        assert_eq!(status(Code::PermissionDenied).exit_code(), 5);
        assert_eq!(status(Code::DeadlineExceeded).exit_code(), 6);
        assert_eq!(status(Code::ResourceExhausted).exit_code(), 7);
        assert_eq!(status(Code::Unavailable).exit_code(), 1);
        let error = status(Code::NotFound);
        assert_eq!(
            error.to_string(),
            "GetStatus failed: NOT_FOUND (5): because"
        );
        let json = error.to_json();
        assert_eq!(json["error"]["grpc_code"], "NOT_FOUND");
        assert_eq!(json["error"]["exit_code"], 4);
        assert_eq!(CliError::Input("x".into()).exit_code(), EXIT_USAGE);
        let not_verified = CliError::NotVerified {
            what: "bundle".into(),
            problem: "proof: root".into(),
        };
        assert_eq!(not_verified.exit_code(), 9);
        assert_eq!(not_verified.to_json()["error"]["exit_code"], 9);
    }
}
