//! Two "nodes" for the resync-gate tests, without Pacemaker: each node has its own
//! Maildir spool, state dir and runtime dir under a scratch dir, and reaches the other
//! with transport=local through a view directory of symlinks (`view-<node>`), the way
//! locally mounted storage would be. A node that is down has its directory renamed
//! away: the other's symlinks dangle and its receiver or pull cannot reach it.
//! The tests drive the OCF actions in the order Pacemaker would.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub const GATE: &str = env!("CARGO_BIN_EXE_resync-gate");
pub const MIRROR_AGENT: &str = env!("CARGO_BIN_EXE_file-mirror");
pub const MIRROR: &str = env!("CARGO_BIN_EXE_bulwark-mirror");
pub const BULWARK: &str = env!("CARGO_BIN_EXE_bulwark");

pub struct Lab {
    pub tmp: tempfile::TempDir,
    pub set: String,
    pub interval: String,
    /// A CIB file for Pacemaker's tools (crm_attribute, cibadmin), when the test uses one.
    pub cib: Option<PathBuf>,
    pub extra: Vec<(String, String)>,
    /// Extra environment for every action and admin command (e.g. HA_debug).
    pub env: std::cell::RefCell<Vec<(String, String)>>,
}

impl Lab {
    pub fn new(set: &str) -> Lab {
        let tmp = tempfile::Builder::new()
            .prefix("bulwark-gate-test.")
            .tempdir()
            .unwrap();
        let lab = Lab {
            tmp,
            set: set.into(),
            interval: "1h".into(),
            cib: None,
            extra: Vec::new(),
            env: Default::default(),
        };
        for n in ["alpha", "beta"] {
            std::fs::create_dir_all(lab.mail(n)).unwrap();
            std::fs::create_dir_all(lab.state(n)).unwrap();
            std::fs::create_dir_all(lab.run(n)).unwrap();
        }
        for (me, other) in [("alpha", "beta"), ("beta", "alpha")] {
            let view = lab.view(me);
            let copy = view.join(lab.mail(me).strip_prefix("/").unwrap());
            std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(lab.mail(other), &copy).unwrap();
            std::os::unix::fs::symlink(lab.state(other), view.join("state")).unwrap();
        }
        lab
    }

    /// Uses a CIB file with both nodes (real cibadmin/crm_attribute, no cluster).
    pub fn with_cib(mut self) -> Lab {
        let cib = self.tmp.path().join("cib.xml");
        let o = Command::new("cibadmin").arg("--empty").output().unwrap();
        assert!(o.status.success());
        std::fs::write(&cib, &o.stdout).unwrap();
        for (id, n) in [("1", "alpha"), ("2", "beta")] {
            let o = Command::new("cibadmin")
                .env("CIB_file", &cib)
                .args(["--create", "-o", "nodes", "-X"])
                .arg(format!("<node id=\"{id}\" uname=\"{n}\"/>"))
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", stderr(&o));
        }
        self.cib = Some(cib);
        self
    }

    pub fn node_dir(&self, n: &str) -> PathBuf {
        self.tmp.path().join(n)
    }
    pub fn mail(&self, n: &str) -> PathBuf {
        self.node_dir(n).join("mail")
    }
    pub fn state(&self, n: &str) -> PathBuf {
        self.node_dir(n).join("state")
    }
    pub fn run(&self, n: &str) -> PathBuf {
        self.tmp.path().join(format!("{n}-run"))
    }
    pub fn view(&self, n: &str) -> PathBuf {
        self.tmp.path().join(format!("view-{n}"))
    }
    pub fn other(n: &str) -> &'static str {
        if n == "alpha" {
            "beta"
        } else {
            "alpha"
        }
    }

    pub fn params(&self, n: &str) -> Vec<(String, String)> {
        let mut p = vec![
            ("set".to_string(), self.set.clone()),
            (
                "paths".into(),
                format!("{}:{}", self.mail(n).display(), self.interval),
            ),
            ("transport".into(), "local".into()),
            ("target".into(), self.view(n).display().to_string()),
            ("state_dir".into(), self.state(n).display().to_string()),
            (
                "peer_state_dir".into(),
                self.view(n).join("state").display().to_string(),
            ),
            ("peers".into(), Lab::other(n).into()),
        ];
        p.extend(self.extra.iter().cloned());
        p
    }

    fn env(&self, c: &mut Command, n: &str) {
        c.env("OCF_ROOT", "/usr/lib/ocf")
            .env("HA_RSCTMP", self.run(n))
            .env("OCF_RESKEY_CRM_meta_on_node", n);
        for (k, v) in self.env.borrow().iter() {
            c.env(k, v);
        }
        match &self.cib {
            Some(cib) => {
                c.env("CIB_file", cib);
            }
            None => {
                c.env("BULWARK_NO_CLUSTER", "1");
            }
        }
    }

    /// Runs an OCF action of `agent` on node `n`.
    pub fn action(&self, agent: &str, n: &str, action: &str) -> Output {
        let mut c = Command::new(agent);
        c.arg(action);
        self.env(&mut c, n);
        for (k, v) in self.params(n) {
            c.env(format!("OCF_RESKEY_{k}"), v);
        }
        c.output().unwrap()
    }

    pub fn gate(&self, n: &str, action: &str) -> Output {
        self.action(GATE, n, action)
    }
    pub fn mirror(&self, n: &str, action: &str) -> Output {
        self.action(MIRROR_AGENT, n, action)
    }

    /// The gate's start as a child process (the crash test kills it).
    pub fn gate_child(&self, n: &str) -> std::process::Child {
        let mut c = Command::new(GATE);
        c.arg("start");
        self.env(&mut c, n);
        for (k, v) in self.params(n) {
            c.env(format!("OCF_RESKEY_{k}"), v);
        }
        c.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    }

    /// `bulwark <args>` as run by an admin on node `n`.
    pub fn bulwark(&self, n: &str, args: &[&str]) -> Output {
        let mut c = Command::new(BULWARK);
        c.args(args).arg("--state-dir").arg(self.state(n));
        self.env(&mut c, n);
        c.output().unwrap()
    }

    /// `bulwark status --json` on node `n`: the report of the set whose state dir is
    /// `state(n)` (found under its parent, as under /var/lib/bulwark/mirror).
    pub fn status_report(&self, n: &str) -> serde_json::Value {
        let mut c = Command::new(BULWARK);
        c.args(["status", "--json", "--state-root"])
            .arg(self.node_dir(n));
        self.env(&mut c, n);
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let all: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        all.as_array()
            .and_then(|v| {
                v.iter()
                    .find(|r| r["state_dir"] == self.state(n).display().to_string())
            })
            .cloned()
            .unwrap_or_else(|| panic!("no report for {}: {all}", self.state(n).display()))
    }

    /// Node `n` crashes: its mirror daemon is killed (-9), its runtime dir is gone (as
    /// after a reboot) and its storage becomes unreachable for the other node.
    pub fn crash(&self, n: &str) {
        kill_mirror(&self.state(n));
        // The other node's sessions to it end too (its receivers and pull servers run as
        // local children there, found by the unique path they were given).
        let via = self.view(Lab::other(n)).join("state");
        for pid in procs_with_arg(via.to_str().unwrap()) {
            // SAFETY: a process this test's daemons started, found by its unique argument.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let _ = std::fs::remove_dir_all(self.run(n));
        std::fs::rename(self.node_dir(n), self.tmp.path().join(format!("{n}.down"))).unwrap();
    }

    /// Node `n` is back (after its reboot).
    pub fn back(&self, n: &str) {
        std::fs::rename(self.tmp.path().join(format!("{n}.down")), self.node_dir(n)).unwrap();
        std::fs::create_dir_all(self.run(n)).unwrap();
    }

    fn status(&self, n: &str) -> serde_json::Value {
        std::fs::read(self.state(n).join("status.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(serde_json::Value::Null)
    }

    /// Asks node `n`'s mirror daemon to send everything pending now (SIGUSR1) and
    /// waits until that pass is done.
    pub fn flush(&self, n: &str) {
        std::thread::sleep(Duration::from_millis(50)); // the events are read
        wait_for("the mirror's first pass", Duration::from_secs(30), || {
            self.status(n)["peers"][0]["state"] == "in-sync"
        });
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let pid = pidfile_pid(&self.state(n)).expect("mirror running");
        // SAFETY: the daemon this test started.
        unsafe { libc::kill(pid, libc::SIGUSR1) };
        wait_for("the forced pass", Duration::from_secs(30), || {
            let st = self.status(n);
            st["updated_ms"].as_u64().unwrap_or(0) > t + 20 && st["pending"] == 0
        });
    }

    pub fn gen(&self, n: &str) -> serde_json::Value {
        let b = std::fs::read(self.state(n).join("generation.json")).unwrap_or_default();
        serde_json::from_slice(&b).unwrap_or(serde_json::Value::Null)
    }

    /// Publishes a node's generation state in the CIB as its file-mirror does in a
    /// cluster (same attribute names, with Pacemaker's own crm_attribute).
    pub fn publish(&self, n: &str) {
        let cib = self.cib.as_ref().expect("with_cib");
        let g = self.gen(n);
        let cur = &g["current"];
        let hist: Vec<String> = cur["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h.as_str().unwrap().to_string())
            .collect();
        for (name, value) in [
            ("gen", cur["id"].as_str().unwrap().to_string()),
            ("consistent", g["consistent"].to_string()),
            ("history", hist.join(",")),
        ] {
            let o = Command::new("crm_attribute")
                .env("CIB_file", cib)
                .args([
                    "--type",
                    "nodes",
                    "--node",
                    n,
                    "--lifetime",
                    "forever",
                    "--name",
                ])
                .arg(format!("bulwark-{}-{name}", self.set))
                .args(["--update", &value])
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", stderr(&o));
        }
    }

    /// After a pull on `n`: the versions it replaced or deleted were moved to the
    /// trash (0700) and the detached release frees them all soon after the start.
    pub fn assert_trash_released(&self, n: &str) {
        use std::os::unix::fs::PermissionsExt;
        let trash = self.state(n).join("trash");
        let mode = std::fs::metadata(&trash).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "{}", trash.display());
        wait_for(
            "the replaced versions to be released",
            Duration::from_secs(10),
            || std::fs::read_dir(&trash).unwrap().next().is_none(),
        );
    }

    pub fn gate_log(&self) -> String {
        String::new()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for n in ["alpha", "beta"] {
            for d in [
                self.state(n),
                self.tmp.path().join(format!("{n}.down")).join("state"),
            ] {
                kill_mirror(&d);
            }
        }
    }
}

/// Processes one of whose arguments is exactly `arg` (a path unique to this test).
pub fn procs_with_arg(arg: &str) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Ok(c) = std::fs::read(format!("/proc/{pid}/cmdline")) {
            if c.split(|b| *b == 0).any(|w| w == arg.as_bytes()) {
                out.push(pid);
            }
        }
    }
    out
}

pub fn pidfile_pid(state: &Path) -> Option<i32> {
    let s = std::fs::read_to_string(state.join("daemon.pid")).ok()?;
    let pid: i32 = s.trim().parse().ok()?;
    // SAFETY: existence check only.
    (pid > 0 && unsafe { libc::kill(pid, 0) } == 0).then_some(pid)
}

/// Kills a node's mirror daemon and its worker (found through its pidfile and status),
/// as a node crash would.
pub fn kill_mirror(state: &Path) {
    let worker = std::fs::read(state.join("status.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["worker_pid"].as_i64())
        .unwrap_or(0) as i32;
    if let Some(pid) = pidfile_pid(state) {
        // SAFETY: the daemon and worker this test started, found through their files.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            if worker > 0 {
                libc::kill(worker, libc::SIGKILL);
            }
        }
        let t = Instant::now();
        while pidfile_pid(state).is_some() && t.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Delivers a message the way an MTA does: written in tmp/, renamed into new/.
pub fn deliver(mail: &Path, name: &str, body: &str) {
    let user = mail.join("user");
    for d in ["tmp", "new", "cur"] {
        std::fs::create_dir_all(user.join(d)).unwrap();
    }
    std::fs::write(user.join("tmp").join(name), body).unwrap();
    std::fs::rename(user.join("tmp").join(name), user.join("new").join(name)).unwrap();
}

/// Every message below `mail` (any folder): name -> (folder, body).
pub fn messages(mail: &Path) -> BTreeMap<String, Vec<(String, Vec<u8>)>> {
    let mut out: BTreeMap<String, Vec<(String, Vec<u8>)>> = BTreeMap::new();
    for d in ["new", "cur"] {
        let Ok(rd) = std::fs::read_dir(mail.join("user").join(d)) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let base = name.split(':').next().unwrap().to_string();
            out.entry(base)
                .or_default()
                .push((d.to_string(), std::fs::read(e.path()).unwrap_or_default()));
        }
    }
    out
}

/// Files (not directories) below `root`: relative path -> (content, mode, mtime).
pub fn files(root: &Path) -> BTreeMap<PathBuf, (Vec<u8>, u32, i64, i64)> {
    let mut out = BTreeMap::new();
    fn walk(root: &Path, rel: &Path, out: &mut BTreeMap<PathBuf, (Vec<u8>, u32, i64, i64)>) {
        let Ok(rd) = std::fs::read_dir(root.join(rel)) else {
            return;
        };
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with(".bulwark-tmp.") {
                continue; // a recognisable partial file (checked by the crash test)
            }
            let r = rel.join(e.file_name());
            let Ok(md) = std::fs::symlink_metadata(e.path()) else {
                continue; // raced away
            };
            if md.is_dir() {
                walk(root, &r, out);
            } else if md.is_file() {
                out.insert(
                    r,
                    (
                        std::fs::read(e.path()).unwrap_or_default(),
                        md.mode() & 0o7777,
                        md.mtime(),
                        md.mtime_nsec(),
                    ),
                );
            } else {
                out.insert(
                    r,
                    (
                        std::fs::read_link(e.path())
                            .unwrap_or_default()
                            .into_os_string()
                            .into_encoded_bytes(),
                        0,
                        0,
                        0,
                    ),
                );
            }
        }
    }
    walk(root, Path::new(""), &mut out);
    out
}

/// Waits until `f` holds.
pub fn wait_for(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < within, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
