//! fence_bulwark_redfish: Redfish power fencing (see `bulwark_stonith::redfish`).
fn main() {
    std::process::exit(bulwark_stonith::redfish::agent::main());
}
