//! The cluster lab end to end, as CI runs it: `tests/lab/lab up` (3 real Pacemaker/Corosync
//! nodes in namespaces, one ipmi_sim BMC each, fencing enabled), scenario a (the VIP owner
//! crashes / is cut off / loses corosync; it must be fenced through its BMC and the client
//! must reach the VIP on the new owner), scenario d (admin view), then `lab down` and the
//! teardown check: no namespace, mount or process of the lab may be left.
//!
//! Runs with the reference agents plus, side by side, every bulwark agent that is built
//! (`AGENTS=auto`). Needs root; skips with a printed reason only when not root.
//! Takes about 2 minutes.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The lab's namespace prefix: "bwt" + 4 hex digits of this checkout's path, so that two
/// checkouts on one machine (worktrees, CI runners) never tear down each other's lab
/// (a developer's lab (bwl) and the guide's test (bwg....) may be up).
fn prefix() -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    env!("CARGO_MANIFEST_DIR").hash(&mut h);
    format!("bwt{:04x}", h.finish() & 0xffff)
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

struct Lab {
    script: PathBuf,
    state: PathBuf,
    bin_dir: PathBuf,
    down_done: bool,
}

impl Lab {
    fn cmd(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        c.env("LAB_STATE", &self.state)
            .env("LAB_PREFIX", prefix())
            .env("LAB_NODES", "3")
            .env("LAB_TOKEN", "1000")
            .env("LAB_BIN_DIR", &self.bin_dir)
            .env("AGENTS", "auto");
        c
    }

    /// Runs a lab program, echoes its output (the timelines belong in the test log),
    /// returns (success, stdout+stderr).
    fn run(&self, program: &Path, args: &[&str]) -> (bool, String) {
        let out = self
            .cmd(program)
            .args(args)
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

    fn down(&mut self) -> (bool, String) {
        self.down_done = true;
        let script = self.script.clone();
        self.run(&script, &["down"])
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if !self.down_done {
            let _ = self.down();
        }
    }
}

fn result_lines(out: &str) -> Vec<&str> {
    out.lines().filter(|l| l.starts_with("RESULT ")).collect()
}

fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
}

#[test]
fn lab_vip_failover_with_fencing_and_clean_teardown() {
    if !is_root() {
        println!("SKIP lab: needs root (network, mount, UTS and PID namespaces)");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_floating-ip"))
        .parent()
        .expect("binary dir")
        .to_path_buf();
    let mut lab = Lab {
        script: root.join("tests/lab/lab"),
        state: PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("lab"),
        bin_dir,
        down_done: false,
    };
    let script = lab.script.clone();
    // a lab left over by an interrupted earlier run
    let _ = lab.run(&script, &["down"]);

    let (ok, out) = lab.run(&script, &["up"]);
    assert!(ok, "lab up failed");
    assert!(
        out.contains("totem.token=1000 ms"),
        "lab up must state the token"
    );

    // crash and corokill (the old owner keeps the VIP until fenced) keep the test near 2 minutes
    // with both agent sets; LAB_TEST_MODES="crash linkcut corokill" runs all three
    let modes_env = std::env::var("LAB_TEST_MODES").unwrap_or_else(|_| "crash corokill".into());
    let modes: Vec<&str> = modes_env.split_whitespace().collect();
    let (ok, out) = lab.run(&root.join("tests/lab/scenarios/a-vip-failover.sh"), &modes);
    let results = result_lines(&out);
    assert!(ok, "scenario a failed: {results:#?}");
    assert!(
        results.len() >= modes.len(),
        "one RESULT per mode and agent set expected, got {results:#?}"
    );
    for r in &results {
        assert!(r.ends_with(" PASS"), "run failed: {r}");
        assert_ne!(field(r, "from"), field(r, "to"), "VIP did not move: {r}");
        for key in ["t_reply", "fence_agent_s", "vip_agent_s", "t_fenced"] {
            let v = field(r, key).unwrap_or("none");
            assert!(
                v.parse::<f64>().is_ok_and(|x| x > 0.0),
                "{key} missing in {r}"
            );
        }
    }
    // reference always; bulwark's agents whenever both are built (fencing through our agent)
    let mut sets = vec!["reference"];
    if lab.bin_dir.join("floating-ip").exists() && lab.bin_dir.join("fence_bulwark_ipmi").exists() {
        sets.push("bulwark");
    }
    // the bulwark set runs floating-ip with arp-refresh after it (group vip-group)
    for r in results
        .iter()
        .filter(|r| field(r, "set") == Some("bulwark"))
    {
        let v = field(r, "arp_agent_s").unwrap_or("none");
        assert!(
            v.parse::<f64>().is_ok_and(|x| x > 0.0),
            "arp_agent_s missing in {r}"
        );
    }
    for &mode in &modes {
        for set in &sets {
            assert!(
                results
                    .iter()
                    .any(|r| field(r, "mode") == Some(mode) && field(r, "set") == Some(set)),
                "no {set} run for {mode}"
            );
        }
    }

    let (ok, out) = lab.run(&root.join("tests/lab/scenarios/d-admin-view.sh"), &[]);
    assert!(ok && out.contains("scenario d: PASS"), "scenario d failed");

    let (ok, _) = lab.down();
    assert!(ok, "lab down failed");
    let (ok, out) = lab.run(&script, &["check-clean"]);
    assert!(ok, "teardown left something behind:\n{out}");

    // and independently of the lab's own check
    let netns = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let netns = String::from_utf8_lossy(&netns.stdout);
    assert!(
        !netns
            .lines()
            .any(|l| l.starts_with(&format!("{}-", prefix()))),
        "namespaces left: {netns}"
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let state = lab.state.to_string_lossy().into_owned();
    let nsdir = format!("/run/bulwark-lab/{}", prefix());
    assert!(
        !mounts
            .lines()
            .any(|l| l.contains(&state) || l.contains(&nsdir)),
        "mounts left"
    );
    let marker = format!("BULWARK_LAB={}", prefix());
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(env) = std::fs::read(entry.path().join("environ")) {
            let left = env.split(|b| *b == 0).any(|v| v == marker.as_bytes());
            assert!(
                !left,
                "process {:?} of the lab is still running",
                entry.file_name()
            );
        }
    }
}
