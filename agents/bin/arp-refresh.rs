//! ocf:bulwark:arp-refresh: announces addresses on the LAN (see bulwark_agents::arp_refresh).
fn main() {
    std::process::exit(ocf_metadata::run(&bulwark_agents::arp_refresh::ArpRefresh));
}
