//! Issue 8: the .deb and .rpm are built from the same staged tree, lint clean, and the
//! installed package is described by Pacemaker, pcs and crmsh; removal leaves nothing.
//! Runs on the CI machine itself (as root); see packaging/install-check.sh.

use std::path::Path;
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn deb_and_rpm_build_lint_install_and_remove_cleanly() {
    if !is_root() {
        eprintln!("skipped: installing a package needs root");
        return;
    }
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_floating-ip"))
        .parent()
        .unwrap();
    let out = tempfile::tempdir().unwrap();
    let st = Command::new(root().join("packaging/build.sh"))
        .arg("--bin-dir")
        .arg(bin_dir)
        .arg("--out")
        .arg(out.path())
        .status()
        .unwrap();
    assert!(st.success(), "packaging/build.sh failed");
    let find = |suffix: &str| {
        std::fs::read_dir(out.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().ends_with(suffix))
            .unwrap_or_else(|| panic!("no *{suffix} built"))
    };
    let deb = find(".deb");
    let rpm = find(".rpm");

    let lint = Command::new("lintian")
        .args(["--no-tag-display-limit"])
        .arg(&deb)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&lint.stdout);
    println!("lintian:\n{text}");
    assert!(
        !text.lines().any(|l| l.starts_with("E: ")),
        "lintian reports errors:\n{text}"
    );
    assert!(
        !text.lines().any(|l| l.starts_with("W: ")),
        "lintian warnings must be fixed or overridden with a reason:\n{text}"
    );

    let rl = Command::new("rpmlint")
        .arg("-c")
        .arg(root().join("packaging/rpm/rpmlint.toml"))
        .arg(&rpm)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&rl.stdout);
    println!("rpmlint:\n{text}");
    assert!(
        text.contains(" 0 errors,"),
        "rpmlint reports errors:\n{text}"
    );

    let st = Command::new(root().join("packaging/install-check.sh"))
        .arg(&deb)
        .arg(&rpm)
        .status()
        .unwrap();
    assert!(st.success(), "packaging/install-check.sh failed");
}
