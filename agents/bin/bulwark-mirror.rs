//! The file-mirror daemon, its worker and the receiver (installed to /usr/libexec/bulwark/).
fn main() {
    std::process::exit(bulwark_agents::mirror::cli::mirror_main(
        std::env::args_os().collect(),
    ));
}
