//! The OCF core shared by every bulwark agent: exit codes and the error type, one
//! declaration per parameter (driving `OCF_RESKEY_*` parsing, validation, meta-data XML
//! and man pages), action dispatch with the probe/stop rules, OCF-style logging, and
//! the fence-agents argument API.

pub mod error;
pub mod exit;
pub mod fence;
pub mod log;
pub mod man;
pub mod param;
pub mod run;
pub mod spec;
pub mod xml;

pub use error::{IoContext, OcfError, OcfResult};
pub use exit::OcfExit;
pub use param::{Kind, Param, Unit, Value, Values};
pub use run::{run, Action, Context, ResourceAgent};
pub use spec::{ActionSpec, AgentSpec, STANDARD_ACTIONS};
