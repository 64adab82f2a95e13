//! Scenario b in CI: a two-node lab whose heartbeat is cut while both nodes still see the
//! LAN. ping-arbiter's scores and the fencing delay decide; the node that sees fewer
//! devices loses, is fenced through its BMC, and (surrender=standby) stays in standby.
//! Exactly one node holds the VIP at the end; the teardown leaves nothing behind.
//! Needs root; skips with a printed reason only when not root. About a minute.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Own namespace prefix per checkout: neither a developer's lab (bwl), nor tests/lab.rs,
/// nor the same test in another worktree.
fn prefix() -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    env!("CARGO_MANIFEST_DIR").hash(&mut h);
    format!("bwb{:04x}", h.finish() & 0xffff)
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn lab(program: &Path, args: &[&str], state: &Path, bin_dir: &Path) -> (bool, String) {
    let out = Command::new(program)
        .args(args)
        .env("LAB_STATE", state)
        .env("LAB_PREFIX", prefix())
        .env("LAB_NODES", "2")
        .env("LAB_TOKEN", "1000")
        .env("LAB_BIN_DIR", bin_dir)
        .env("AGENTS", "bulwark")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("$ {} {}\n{text}", program.display(), args.join(" "));
    (out.status.success(), text)
}

struct Down<'a>(&'a Path, &'a Path, &'a Path);
impl Drop for Down<'_> {
    fn drop(&mut self) {
        let _ = lab(self.0, &["down"], self.1, self.2);
    }
}

#[test]
fn split_brain_two_nodes_exactly_one_holder_and_the_loser_stays_in_standby() {
    if !is_root() {
        println!("SKIP lab_split: needs root (network, mount, UTS and PID namespaces)");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_ping-arbiter"))
        .parent()
        .expect("binary dir")
        .to_path_buf();
    let script = root.join("tests/lab/lab");
    let state = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("lab-split");
    let _ = lab(&script, &["down"], &state, &bin_dir);
    {
        let _guard = Down(&script, &state, &bin_dir);
        let (ok, _) = lab(&script, &["up"], &state, &bin_dir);
        assert!(ok, "lab up (two nodes) failed");
        let (ok, out) = lab(
            &root.join("tests/lab/scenarios/b-split-brain.sh"),
            &[],
            &state,
            &bin_dir,
        );
        let results: Vec<&str> = out.lines().filter(|l| l.starts_with("RESULT ")).collect();
        assert!(ok, "scenario b failed: {results:#?}");
        assert_eq!(results.len(), 1, "{results:#?}");
        let r = results[0];
        assert!(r.contains("scenario=b") && r.contains("set=bulwark"), "{r}");
        assert!(
            r.contains("holders_at_end=1") && r.ends_with(" PASS"),
            "{r}"
        );
    }
    let (ok, out) = lab(&script, &["check-clean"], &state, &bin_dir);
    assert!(ok, "teardown left something behind:\n{out}");
}
