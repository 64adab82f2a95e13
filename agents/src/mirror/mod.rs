//! `ocf:bulwark:file-mirror`: per-path interval mirroring whose cost follows the
//! changes, not the tree. See `../shared/design/mirror-and-resync.md` for the contract.
//!
//! - [`wire`]: the framed protocol; [`receiver`]: the peer side (atomic, durable, path-safe);
//! - [`journal`]: inotify change journal; [`daemon`]: supervisor + worker; [`session`]: one
//!   session per peer (local child or ssh);
//! - [`gen`]: generations (shared with the resync gate); [`cluster`]: CIB attributes;
//! - [`delta`]: large-file block delta; [`agent`]: the OCF agent; [`cli`]: binaries' entry points.

pub mod agent;
pub mod changelog;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod daemon;
pub mod delta;
pub mod fsops;
pub mod gen;
pub mod journal;
pub mod receiver;
pub mod session;
pub mod status;
pub mod wire;
