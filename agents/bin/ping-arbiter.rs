//! ocf:bulwark:ping-arbiter — see bulwark_agents::ping_arbiter.
fn main() {
    std::process::exit(ocf_metadata::run(
        &bulwark_agents::ping_arbiter::PingArbiter,
    ));
}
