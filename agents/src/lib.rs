//! Logic of the bulwark OCF resource agents; the binaries in agents/bin are thin mains.

pub mod announce;
pub mod arp_refresh;
pub mod floating_ip;
pub mod gate;
pub mod mirror;
pub mod netlink;
pub mod ping_arbiter;

#[cfg(test)]
mod tests {
    /// Every resource agent's declarations agree with themselves (defaults parse, no
    /// twice-declared or required-with-default parameter).
    #[test]
    fn every_agents_declarations_are_consistent() {
        for spec in [
            &crate::floating_ip::SPEC,
            &crate::arp_refresh::SPEC,
            &crate::ping_arbiter::SPEC,
            &crate::mirror::agent::SPEC,
            &crate::gate::agent::SPEC,
        ] {
            if let Err(e) = spec.check() {
                panic!("{e}");
            }
        }
    }
}
