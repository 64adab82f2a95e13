//! The gate's view of the cluster: this node's name (`OCF_RESKEY_CRM_meta_on_node`, which
//! Pacemaker passes to every action, else `crm_node -n`), the nodes of the CIB
//! (`cibadmin --query --scope nodes`) and their generation attributes
//! (`bulwark-<set>-gen`, `-consistent`, `-history`, the file-mirror's names), read and
//! written with `crm_attribute` by the file-mirror's own code (`mirror::cluster`), under
//! the gate's condition. Pacemaker's tools honour `CIB_file`, so the same code runs
//! against a CIB file where no cluster runs (the tests do that).

use crate::mirror::cluster::{query_generation, tool, write_generation};
use crate::mirror::gen::{GenState, Generation};
use std::time::Duration;

fn no_cluster() -> bool {
    std::env::var_os("BULWARK_NO_CLUSTER").is_some()
}

/// This node's cluster name, when there is a cluster (or a CIB file).
pub fn my_node() -> Option<String> {
    if let Ok(n) = std::env::var("OCF_RESKEY_CRM_meta_on_node") {
        if !n.trim().is_empty() {
            return Some(n.trim().to_string());
        }
    }
    if no_cluster() {
        return None;
    }
    tool("crm_node", &["-n"], Duration::from_secs(5)).filter(|n| !n.is_empty())
}

/// The node names in the CIB's `<nodes>` section.
pub fn nodes() -> Vec<String> {
    if no_cluster() {
        return Vec::new();
    }
    let Some(xml) = tool(
        "cibadmin",
        &["--query", "--scope", "nodes"],
        Duration::from_secs(10),
    ) else {
        return Vec::new();
    };
    // <node id="1" uname="alpha" .../>: the uname attributes, in order.
    let mut out = Vec::new();
    for part in xml.split("<node ").skip(1) {
        if let Some(i) = part.find("uname=\"") {
            let rest = &part[i + 7..];
            if let Some(j) = rest.find('"') {
                out.push(rest[..j].to_string());
            }
        }
    }
    out
}

/// A node's published generation and consistency.
pub fn read_generation(set: &str, node: &str) -> Option<(Generation, bool)> {
    if no_cluster() {
        return None;
    }
    query_generation(set, node)
}

/// Publishes `state` as `node`'s permanent attributes; a copy with a pass under way is
/// published as not consistent.
pub fn publish(set: &str, node: &str, state: &GenState) {
    if no_cluster() {
        return;
    }
    let Some(cur) = &state.current else {
        return;
    };
    write_generation(
        set,
        node,
        cur,
        state.consistent && state.receiving.is_none(),
    );
}
