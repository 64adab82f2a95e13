//! fence_bulwark_ipmi: IPMI 2.0 RMCP+ power fencing (see `bulwark_stonith::fence_ipmi`).
fn main() {
    std::process::exit(bulwark_stonith::fence_ipmi::main());
}
