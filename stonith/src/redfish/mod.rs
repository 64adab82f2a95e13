//! fence_bulwark_redfish: power fencing through a BMC's Redfish service over HTTPS.
//!
//! - [`client`]: the HTTPS client (reqwest blocking on rustls/ring), Basic
//!   authentication, time limits, HTTP status checked on every answer.
//! - [`resource`]: what is read from the service root, the Systems collection and a
//!   ComputerSystem (PowerState, the Reset action and its allowed ResetTypes).
//! - [`agent`]: the option table (fence_redfish's names) and the [`PowerDevice`]
//!   plugged into the shared fence-agents engine of `ocf_metadata::fence`.
//!
//! [`PowerDevice`]: ocf_metadata::fence::PowerDevice

pub mod agent;
pub mod client;
pub mod resource;

use ocf_metadata::fence::FenceError;

/// A Redfish failure. Messages never contain the password.
#[derive(Debug, thiserror::Error)]
pub enum RedfishError {
    /// A bad option, or a choice the admin must make (several systems).
    #[error("{0}")]
    Config(String),
    /// The BMC could not be reached, did not answer in time, or TLS failed.
    #[error("{0}")]
    Connection(String),
    /// HTTP 401/403.
    #[error("{0}")]
    Auth(String),
    /// HTTP 404 or an empty Systems collection.
    #[error("{0}")]
    NotFound(String),
    /// Any other HTTP status that is not 2xx.
    #[error("{0}")]
    Http(String),
    /// The answer is not what Redfish promises (not JSON, fields missing).
    #[error("{0}")]
    Protocol(String),
    /// The BMC cannot do what fencing needs.
    #[error("{0}")]
    Device(String),
}

impl From<RedfishError> for FenceError {
    fn from(e: RedfishError) -> FenceError {
        match e {
            RedfishError::Config(m) => FenceError::BadInput(m),
            RedfishError::Connection(m) => FenceError::Connection(m),
            RedfishError::Auth(m) => FenceError::Login(m),
            RedfishError::NotFound(m)
            | RedfishError::Http(m)
            | RedfishError::Protocol(m)
            | RedfishError::Device(m) => FenceError::Device(m),
        }
    }
}
