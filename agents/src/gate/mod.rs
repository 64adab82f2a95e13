//! `ocf:bulwark:resync-gate`: a returning node's services wait until the takeover node's
//! changes are mirrored back; generations decide the direction; conflicts are kept.
//! The contract (guarantees 2, 4, 5) is `../shared/design/mirror-and-resync.md`.
//!
//! - [`agent`]: the OCF agent and the decision from every node's generation;
//! - [`pull`]: the copy-back (change logs or manifests, conflicts, atomic apply);
//! - [`client`], [`serve`], [`proto`]: the read-only pull session over the mirror's transport;
//! - [`cib`]: node names and generation attributes; [`records`]: kept conflicts;
//! - [`admin`]: `bulwark resync` and `bulwark conflicts`.

pub mod admin;
pub mod agent;
pub mod cib;
pub mod client;
pub mod protect;
pub mod proto;
pub mod pull;
pub mod records;
pub mod serve;
