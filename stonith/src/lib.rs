//! Fence agents: the native IPMI 2.0 RMCP+ client and agent, and the Redfish agent.

pub mod fence_ipmi;
pub mod ipmi;
pub mod redfish;
