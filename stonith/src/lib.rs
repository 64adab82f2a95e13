//! Fence agents and the native IPMI 2.0 RMCP+ client.

pub mod fence_ipmi;
pub mod ipmi;
