//! The error type every agent returns. Each variant maps to exactly one OCF exit code.

use crate::exit::OcfExit;
use std::io;

/// An agent failure. The message is what the admin reads: on stderr and in the
/// `ocf-exit-reason:` line. It must never contain a secret.
#[derive(Debug, thiserror::Error)]
pub enum OcfError {
    /// Something failed at run time (1).
    #[error("{0}")]
    Generic(String),
    /// A parameter is invalid for this host, e.g. a missing interface (2).
    #[error("{0}")]
    Args(String),
    /// The action is not implemented (3).
    #[error("{0}")]
    Unimplemented(String),
    /// Not enough privilege, e.g. not root (4).
    #[error("{0}")]
    Perm(String),
    /// Required software or kernel facility is missing on this host (5).
    #[error("{0}")]
    NotInstalled(String),
    /// The configuration is invalid everywhere (6).
    #[error("{0}")]
    Configured(String),
    /// The resource is not running (7); a monitor/probe answer, never a stop failure.
    #[error("{0}")]
    NotRunning(String),
    /// An I/O failure with what we were doing (1).
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

impl OcfError {
    pub fn exit(&self) -> OcfExit {
        match self {
            OcfError::Generic(_) | OcfError::Io { .. } => OcfExit::ErrGeneric,
            OcfError::Args(_) => OcfExit::ErrArgs,
            OcfError::Unimplemented(_) => OcfExit::ErrUnimplemented,
            OcfError::Perm(_) => OcfExit::ErrPerm,
            OcfError::NotInstalled(_) => OcfExit::ErrInstalled,
            OcfError::Configured(_) => OcfExit::ErrConfigured,
            OcfError::NotRunning(_) => OcfExit::NotRunning,
        }
    }

    /// True for errors that describe the environment or configuration rather than
    /// a failure of the resource itself (2, 5, 6). Probes turn these into 7.
    pub fn is_invalid_env(&self) -> bool {
        matches!(
            self.exit(),
            OcfExit::ErrArgs | OcfExit::ErrInstalled | OcfExit::ErrConfigured | OcfExit::ErrPerm
        )
    }

    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        OcfError::Io {
            context: context.into(),
            source,
        }
    }

    pub fn generic(msg: impl Into<String>) -> Self {
        OcfError::Generic(msg.into())
    }
    pub fn args(msg: impl Into<String>) -> Self {
        OcfError::Args(msg.into())
    }
    pub fn configured(msg: impl Into<String>) -> Self {
        OcfError::Configured(msg.into())
    }
    pub fn not_installed(msg: impl Into<String>) -> Self {
        OcfError::NotInstalled(msg.into())
    }
    pub fn perm(msg: impl Into<String>) -> Self {
        OcfError::Perm(msg.into())
    }
}

pub type OcfResult<T> = Result<T, OcfError>;

/// Adds context to an `io::Result`, turning it into an `OcfError::Io`.
pub trait IoContext<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> OcfResult<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> OcfResult<T> {
        self.map_err(|e| OcfError::io(context(), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_maps_to_one_code() {
        let cases: Vec<(OcfError, i32)> = vec![
            (OcfError::generic("x"), 1),
            (OcfError::args("x"), 2),
            (OcfError::Unimplemented("x".into()), 3),
            (OcfError::perm("x"), 4),
            (OcfError::not_installed("x"), 5),
            (OcfError::configured("x"), 6),
            (OcfError::NotRunning("x".into()), 7),
            (OcfError::io("reading", io::Error::other("boom")), 1),
        ];
        for (e, code) in cases {
            assert_eq!(e.exit().code(), code, "{e:?}");
        }
        assert_eq!(
            OcfError::io("reading /x", io::Error::other("boom")).to_string(),
            "reading /x: boom"
        );
    }
}
