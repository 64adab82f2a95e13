//! ocf:bulwark:floating-ip: a virtual IPv4/IPv6 address (see bulwark_agents::floating_ip).
fn main() {
    std::process::exit(ocf_metadata::run(&bulwark_agents::floating_ip::FloatingIp));
}
