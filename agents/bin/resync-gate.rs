//! ocf:bulwark:resync-gate
fn main() {
    std::process::exit(ocf_metadata::run(&bulwark_agents::gate::agent::ResyncGate));
}
