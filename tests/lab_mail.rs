//! Scenario c of the cluster lab as CI runs it: the mail-spool failback story of issue 7 with
//! real Pacemaker moves and real fencing (tests/lab/scenarios/c-mail-failback.sh): `lab up`
//! (3 nodes, fence_bulwark_ipmi), the scenario twice in the same lab, `lab down` and the
//! teardown check. First as is (B's mirror pushes its changes to A itself), then with
//! `C_PULL=1`: B's own firewall rejects B's ssh to A from A's crash until the failback, so
//! the resync-gate on A must pull B's changes over ssh.
//! Its own lab prefix (per checkout) and state dir, so it never meets a developer's lab or
//! the other lab tests'.
//! Needs root; skips with a printed reason only when not root. Takes about 65 s.

use std::path::{Path, PathBuf};
use std::process::Command;

/// "bwm" + 4 hex digits of this checkout's path: worktrees running it at once do not collide
/// (as tests/lab_split.rs does).
fn prefix() -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    env!("CARGO_MANIFEST_DIR").hash(&mut h);
    format!("bwm{:04x}", h.finish() & 0xffff)
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
    /// Runs a lab program with this lab's settings, echoes its output (the timeline belongs
    /// in the test log), returns (success, stdout+stderr).
    fn run(&self, program: &Path, args: &[&str]) -> (bool, String) {
        self.run_env(program, args, &[])
    }

    /// `run` with more environment (a scenario's variant).
    fn run_env(&self, program: &Path, args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
        let out = Command::new(program)
            .args(args)
            .envs(env.iter().copied())
            .env("LAB_STATE", &self.state)
            .env("LAB_PREFIX", prefix())
            .env("LAB_NODES", "3")
            .env("LAB_TOKEN", "1000")
            .env("LAB_BIN_DIR", &self.bin_dir)
            .env("AGENTS", "bulwark")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let env: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v} ")).collect();
        println!(
            "$ {}{} {}\n{text}",
            env.concat(),
            program.display(),
            args.join(" ")
        );
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

#[test]
fn lab_mail_spool_failback_with_fencing() {
    if !is_root() {
        println!("SKIP lab_mail: needs root (network, mount, UTS and PID namespaces)");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // The agents the group uses are built with this test; the lab installs them from here.
    let gate = Path::new(env!("CARGO_BIN_EXE_resync-gate"));
    for b in [
        env!("CARGO_BIN_EXE_file-mirror"),
        env!("CARGO_BIN_EXE_floating-ip"),
        env!("CARGO_BIN_EXE_bulwark-mirror"),
        env!("CARGO_BIN_EXE_bulwark"),
        env!("CARGO_BIN_EXE_fence_bulwark_ipmi"),
    ] {
        assert!(Path::new(b).exists(), "{b} not built");
    }
    let mut lab = Lab {
        script: root.join("tests/lab/lab"),
        state: PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("lab-mail"),
        bin_dir: gate.parent().expect("binary dir").to_path_buf(),
        down_done: false,
    };
    let script = lab.script.clone();
    let _ = lab.run(&script, &["down"]); // left over by an interrupted run

    let (ok, _) = lab.run(&script, &["up"]);
    assert!(ok, "lab up failed");
    let scenario = root.join("tests/lab/scenarios/c-mail-failback.sh");

    // B's mirror pushes B's changes to A when it can (A back, or B's stop during the move).
    let out = scenario_c(&lab, &scenario, &[], "variant=push");
    assert!(
        out.contains("ok: B's mirror stopped (flushed) before the gate started on A"),
        "missing: B's mirror flushed before the gate started on A"
    );

    // The same lab again: B cannot reach A's sshd (an nft rule in B's namespace) while A
    // reaches B's, so B's changes reach A only by the gate's pull.
    let out = scenario_c(&lab, &scenario, &[("C_PULL", "1")], "variant=pull-reject");
    for check in [
        "ok: before the move node2 could not reach node1's sshd while node1 reached node2's",
        "ok: B's mirror stopped before the gate started on A",
        "ok: B's mirror stop succeeded although A was unreachable (changes left unmirrored)",
        "ok: node2 was not fenced (no power_off in its BMC log)",
        "ok: the gate's start on A pulled from B (its output in A's pacemaker log)",
        "ok: the pull installed the 11 entries B wrote during the outage, or more",
        "ok: the firewall table in node2's namespace is gone",
    ] {
        assert!(out.contains(check), "missing: {check}");
    }
    assert!(
        out.contains("mail-gate: INFO: set 'mail': pulled from node2 in "),
        "the gate's pull is not in the timeline"
    );

    let (ok, _) = lab.down();
    assert!(ok, "lab down failed");
    let (ok, out) = lab.run(&script, &["check-clean"]);
    assert!(ok, "teardown left something behind:\n{out}");
}

/// Runs scenario c in the lab with `env` on top, asserts what every variant must show (the
/// story's checks, `variant` in the RESULT line) and returns the scenario's output.
fn scenario_c(lab: &Lab, scenario: &Path, env: &[(&str, &str)], variant: &str) -> String {
    let (ok, out) = lab.run_env(scenario, &[], env);
    let result = out
        .lines()
        .find(|l| l.starts_with("RESULT scenario=c"))
        .unwrap_or("no RESULT line");
    assert!(
        ok && out.contains("== scenario c: PASS"),
        "scenario c ({variant}) failed: {result}"
    );
    assert!(result.ends_with(" PASS"), "{result}");
    assert!(result.contains(&format!(" {variant} ")), "{result}");
    assert!(result.contains("fenced=yes"), "{result}");
    // every assertion the scenario names must have been made and passed
    for check in [
        "ok: node1 was fenced through its BMC",
        "ok: the group runs on node1 at the end",
        "ok: B stopped the service before the gate started on A",
        "ok: the gate's start on A finished before the mirror, IP and service started there",
        "ok: every message on node2 is on node1",
        "ok: no message is duplicated on node1",
        "ok: the 10 messages delivered on node2 during the outage are on node1",
        "ok: m005 expunged on node2 is gone on node1",
    ] {
        assert!(out.contains(check), "{variant}: missing: {check}");
    }
    for m in ["m021", "m022", "m023", "m024", "m025"] {
        assert!(
            out.lines()
                .any(|l| l.starts_with("  ok: node1's unmirrored ") && l.contains(m)),
            "{variant}: node1's unmirrored {m} is neither in place nor a listed conflict copy"
        );
    }
    out
}
