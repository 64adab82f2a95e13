//! Logic of the bulwark OCF resource agents; the binaries in agents/bin are thin mains.

pub mod announce;
pub mod arp_refresh;
pub mod floating_ip;
pub mod gate;
pub mod mirror;
pub mod netlink;
pub mod ping_arbiter;
