//! IPMI 2.0 RMCP+ over UDP: cryptography, framing and a blocking client session.

pub mod client;
pub mod crypto;
pub mod packet;
