//! The propagation test over ssh between two network namespaces the test creates
//! (veth pair, 10.213.x.0/24), with its own sshd in the peer namespace and a throwaway
//! key. Everything it creates is removed by name or PID at the end.

#[path = "mirror_util/mod.rs"]
mod util;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use util::*;

fn run(args: &[&str]) -> Result<(), String> {
    let o = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{args:?}: {e}"))?;
    if o.status.success() {
        Ok(())
    } else {
        Err(format!("{args:?}: {}", String::from_utf8_lossy(&o.stderr)))
    }
}

/// Two namespaces joined by a veth pair, and an sshd in the second one.
struct Net {
    a: String,
    b: String,
    peer_ip: String,
    sshd: Option<Child>,
    dir: PathBuf,
}

impl Net {
    fn new(dir: &Path) -> Result<Net, String> {
        let id = std::process::id();
        let subnet = 100 + id % 150;
        let mut n = Net {
            a: format!("bwm-a-{id}"),
            b: format!("bwm-b-{id}"),
            peer_ip: format!("10.213.{subnet}.2"),
            sshd: None,
            dir: dir.to_path_buf(),
        };
        run(&["ip", "netns", "add", &n.a])?;
        run(&["ip", "netns", "add", &n.b])?;
        let (va, vb) = (
            format!("bwma{}", id % 100000),
            format!("bwmb{}", id % 100000),
        );
        run(&[
            "ip", "-n", &n.a, "link", "add", &va, "type", "veth", "peer", "name", &vb, "netns",
            &n.b,
        ])?;
        run(&[
            "ip",
            "-n",
            &n.a,
            "addr",
            "add",
            &format!("10.213.{subnet}.1/24"),
            "dev",
            &va,
        ])?;
        run(&[
            "ip",
            "-n",
            &n.b,
            "addr",
            "add",
            &format!("10.213.{subnet}.2/24"),
            "dev",
            &vb,
        ])?;
        for (ns, dev) in [(&n.a, &va), (&n.b, &vb)] {
            run(&["ip", "-n", ns, "link", "set", "lo", "up"])?;
            run(&["ip", "-n", ns, "link", "set", dev, "up"])?;
        }
        n.start_sshd()?;
        Ok(n)
    }

    fn start_sshd(&mut self) -> Result<(), String> {
        let d = &self.dir;
        for (key, _) in [("hostkey", ()), ("id", ())] {
            run(&[
                "ssh-keygen",
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-f",
                d.join(key).to_str().unwrap(),
            ])?;
        }
        std::fs::copy(d.join("id.pub"), d.join("authorized_keys")).map_err(|e| e.to_string())?;
        let cfg = format!(
            "ListenAddress {}:2222\nHostKey {}\nAuthorizedKeysFile {}\nPermitRootLogin prohibit-password\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n\
             PidFile {}\nLogLevel VERBOSE\n",
            self.peer_ip,
            d.join("hostkey").display(),
            d.join("authorized_keys").display(),
            d.join("sshd.pid").display()
        );
        std::fs::write(d.join("sshd_config"), cfg).map_err(|e| e.to_string())?;
        // sshd needs its privilege-separation directory.
        std::fs::create_dir_all("/run/sshd").map_err(|e| e.to_string())?;
        let child = Command::new("ip")
            .args(["netns", "exec", &self.b, "/usr/sbin/sshd", "-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("sshd.log")).unwrap())
            .spawn()
            .map_err(|e| e.to_string())?;
        self.sshd = Some(child);
        // Wait until it accepts our key.
        let t = Instant::now();
        loop {
            let ok = Command::new("ip")
                .args(["netns", "exec", &self.a, "ssh"])
                .args(self.ssh_options())
                .args(["-o", "BatchMode=yes", &self.peer_ip, "true"])
                .stdin(Stdio::null())
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false);
            if ok {
                return Ok(());
            }
            if t.elapsed() > Duration::from_secs(10) {
                return Err(format!(
                    "sshd did not come up: {}",
                    std::fs::read_to_string(d.join("sshd.log")).unwrap_or_default()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn ssh_options(&self) -> Vec<String> {
        vec![
            "-i".into(),
            self.dir.join("id").display().to_string(),
            "-p".into(),
            "2222".into(),
            "-o".into(),
            "StrictHostKeyChecking=no".into(),
            "-o".into(),
            "UserKnownHostsFile=/dev/null".into(),
            "-o".into(),
            "LogLevel=ERROR".into(),
        ]
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        if let Some(mut c) = self.sshd.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Ok(pid) = std::fs::read_to_string(self.dir.join("sshd.pid")) {
            if let Ok(pid) = pid.trim().parse::<i32>() {
                // SAFETY: the sshd this test started (pid from its own pidfile).
                unsafe { libc::kill(pid, libc::SIGTERM) };
            }
        }
        let _ = run(&["ip", "netns", "del", &self.a]);
        let _ = run(&["ip", "netns", "del", &self.b]);
    }
}

/// Runs the agent inside namespace `ns`.
fn agent_in(ns: &str, lab: &Lab, action: &str) -> std::process::Output {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns, AGENT, action])
        .env("BULWARK_NO_CLUSTER", "1");
    for (k, v) in &lab.params {
        c.env(format!("OCF_RESKEY_{k}"), v);
    }
    c.output().unwrap()
}

#[test]
fn propagation_over_ssh_between_two_namespaces() {
    if !is_root() {
        eprintln!("SKIP: needs root to create network namespaces (CI runs as root)");
        return;
    }
    let mut lab = Lab::new("sshm");
    let keys = lab.src("keys");
    let net = Net::new(&keys).unwrap_or_else(|e| panic!("namespace setup: {e}"));
    let fast = lab.src("fast");
    let slow = lab.src("slow");
    seed(&fast);
    seed(&slow);
    let peer_state = lab.tmp.path().join("peer-state");
    lab.param("transport", "ssh");
    lab.param("peers", &net.peer_ip);
    lab.param("ssh_options", &net.ssh_options().join(" "));
    lab.param("receiver_path", MIRROR);
    lab.param("peer_state_dir", &peer_state.display().to_string());
    lab.param(
        "paths",
        &format!("{}:change {}:2s", fast.display(), slow.display()),
    );
    let o = agent_in(&net.a, &lab, "start");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    wait_same(&fast, &lab.peer(&fast), Duration::from_secs(15), true)
        .unwrap_or_else(|d| panic!("{d}\n{}", lab.log()));
    wait_same(&slow, &lab.peer(&slow), Duration::from_secs(15), true).unwrap();
    for round in 0..3 {
        churn(&fast, round);
        churn(&slow, round);
        let took = wait_same(&fast, &lab.peer(&fast), Duration::from_secs(3), true)
            .unwrap_or_else(|d| panic!("change path over ssh, round {round}: {d}\n{}", lab.log()));
        eprintln!("round {round}: change path matched after {took:?}");
        let took = wait_same(&slow, &lab.peer(&slow), Duration::from_secs(5), true)
            .unwrap_or_else(|d| panic!("2s path over ssh, round {round}: {d}\n{}", lab.log()));
        eprintln!("round {round}: 2s path matched after {took:?}");
    }
    // One long-lived session: sshd logged exactly one accepted login for the mirror
    // (plus the readiness probe), however many passes ran.
    let sshd_log = std::fs::read_to_string(keys.join("sshd.log")).unwrap_or_default();
    assert_eq!(
        sshd_log.matches("Accepted publickey").count(),
        3,
        "{sshd_log}"
    );
    // The peer adopted the writer's generation.
    let mine: serde_json::Value =
        serde_json::from_slice(&std::fs::read(lab.state.join("generation.json")).unwrap()).unwrap();
    let theirs: serde_json::Value =
        serde_json::from_slice(&std::fs::read(peer_state.join("generation.json")).unwrap())
            .unwrap();
    assert_eq!(mine["current"]["id"], theirs["current"]["id"]);
    assert_eq!(theirs["consistent"], true);
    assert_eq!(code(&agent_in(&net.a, &lab, "monitor")), 0);
    let o = agent_in(&net.a, &lab, "stop");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}
