//! The cluster side of generations: permanent node attributes in the CIB
//! (`bulwark-<set>-gen`, `bulwark-<set>-consistent`, `bulwark-<set>-history`), read and
//! written with Pacemaker's own tools. Without a running cluster this is skipped and
//! logged once; the state dir stays the source of truth on the node. The resync gate
//! reads and writes the same attributes with [`query_generation`] and
//! [`write_generation`], under its own condition (it also works against a `CIB_file`).

use super::gen::{GenState, Generation};
use ocf_metadata::log;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Runs a Pacemaker tool (fixed argv, no shell) with a timeout; stdout on success.
/// Shared with the resync gate (`gate::cib`).
pub(crate) fn tool(prog: &str, args: &[&str], timeout: Duration) -> Option<String> {
    let mut child = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(st)) => {
                let out = child.wait_with_output().ok()?;
                return st
                    .success()
                    .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string());
            }
            Ok(None) if start.elapsed() < timeout => std::thread::sleep(Duration::from_millis(5)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// This node's cluster name when a cluster is running here.
pub fn cluster_node() -> Option<String> {
    static NODE: OnceLock<Option<String>> = OnceLock::new();
    NODE.get_or_init(|| {
        if std::env::var_os("BULWARK_NO_CLUSTER").is_some() {
            return None;
        }
        // Pacemaker names the node in every action's environment: no fork needed.
        if let Ok(n) = std::env::var("OCF_RESKEY_CRM_meta_on_node") {
            if !n.trim().is_empty() {
                return Some(n.trim().to_string());
            }
        }
        let n = tool("crm_node", &["-n"], Duration::from_secs(5)).filter(|n| !n.is_empty());
        if n.is_none() {
            log::info("no running cluster found (crm_node -n failed): generations are kept in the state dir only");
        }
        n
    })
    .clone()
}

/// The node name: the cluster's, else the host name.
pub fn node_name() -> String {
    cluster_node().unwrap_or_else(hostname)
}

pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: buffer of the given size.
    if unsafe { libc::gethostname(buf.as_mut_ptr() as *mut libc::c_char, buf.len()) } == 0 {
        let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
        return String::from_utf8_lossy(&buf[..end]).into_owned();
    }
    "localhost".into()
}

/// The other cluster members (`crm_node -l`), when a cluster runs.
pub fn other_nodes() -> Vec<String> {
    let Some(me) = cluster_node() else {
        return Vec::new();
    };
    let Some(out) = tool("crm_node", &["-l"], Duration::from_secs(5)) else {
        return Vec::new();
    };
    out.lines()
        .filter_map(|l| l.split_whitespace().nth(1).map(str::to_string))
        .filter(|n| *n != me)
        .collect()
}

fn attr(set: &str, what: &str) -> String {
    format!("bulwark-{set}-{what}")
}

/// Publishes this node's generation state as permanent node attributes.
pub fn publish_generation(set: &str, state: &GenState) {
    let Some(node) = cluster_node() else {
        return;
    };
    let Some(cur) = &state.current else {
        return;
    };
    write_generation(set, &node, cur, state.consistent);
}

/// A node's published generation, if any.
pub fn read_generation(set: &str, node: &str) -> Option<(Generation, bool)> {
    cluster_node()?;
    query_generation(set, node)
}

/// Writes `node`'s generation attributes (`-gen`, `-consistent`, at most 16 ids of
/// `-history`) with `crm_attribute --lifetime forever`; a failed write is logged.
/// Ungated: the caller has decided that there is a CIB to write (the mirror: a running
/// cluster; the resync gate: also a `CIB_file`).
pub(crate) fn write_generation(set: &str, node: &str, cur: &Generation, consistent: bool) {
    let history = cur
        .history
        .iter()
        .take(16)
        .cloned()
        .collect::<Vec<_>>()
        .join(",");
    let consistent = if consistent { "true" } else { "false" };
    for (name, value) in [
        (attr(set, "gen"), cur.id.as_str()),
        (attr(set, "consistent"), consistent),
        (attr(set, "history"), history.as_str()),
    ] {
        let ok = tool(
            "crm_attribute",
            &[
                "--type",
                "nodes",
                "--node",
                node,
                "--name",
                &name,
                "--update",
                value,
                "--lifetime",
                "forever",
            ],
            Duration::from_secs(10),
        );
        if ok.is_none() {
            log::warn(&format!(
                "could not publish {name}={value} for node {node} in the CIB"
            ));
        }
    }
}

/// Reads `node`'s generation attributes: `None` when it has no `-gen`. Ungated, like
/// [`write_generation`].
pub(crate) fn query_generation(set: &str, node: &str) -> Option<(Generation, bool)> {
    let get = |what: &str| {
        tool(
            "crm_attribute",
            &[
                "--type",
                "nodes",
                "--node",
                node,
                "--name",
                &attr(set, what),
                "--query",
                "--quiet",
            ],
            Duration::from_secs(10),
        )
        .filter(|v| !v.is_empty())
    };
    let id = get("gen")?;
    let history = get("history")
        .map(|h| {
            h.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let consistent = get("consistent").as_deref() == Some("true");
    Some((Generation { id, history }, consistent))
}
