//! ocf:bulwark:file-mirror
fn main() {
    std::process::exit(ocf_metadata::run(
        &bulwark_agents::mirror::agent::FileMirror,
    ));
}
