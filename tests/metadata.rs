//! Every resource agent's meta-data validates against all three schemas Debian ships:
//! the resource-agents DTD (as ocf-tester checks it), resource-agents' metadata.rng,
//! and pcs's ocf-1.x.rng matching the emitted <version>. The validator wrapper is
//! itself checked against documents that must fail, so this test cannot pass vacuously.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Every OCF resource agent the package ships (binaries in the root package).
const AGENTS: &[&str] = &[
    "floating-ip",
    "arp-refresh",
    "ping-arbiter",
    "file-mirror",
    "resync-gate",
];

const DTD_DIR: &str = "/usr/share/resource-agents";
const RA_RNG: &str = "/usr/share/resource-agents/metadata.rng";
const PCS_RNG_DIR: &str = "/usr/share/pcs/data";

fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_floating-ip"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn xmllint(args: &[&str], cwd: &str, doc: &str) -> Result<(), String> {
    let mut child = Command::new("xmllint")
        .args(args)
        .arg("-")
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run xmllint (install libxml2-utils): {e}"))?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(doc.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn ocf_version(doc: &str) -> &str {
    let start = doc.find("<version>").map(|i| i + "<version>".len());
    let end = doc.find("</version>");
    match (start, end) {
        (Some(s), Some(e)) if s < e => &doc[s..e],
        _ => "1.0",
    }
}

/// Runs the three validators; returns the list of failures.
fn validate_all(doc: &str) -> Vec<String> {
    let mut failures = Vec::new();
    if let Err(e) = xmllint(&["--noout", "--valid"], DTD_DIR, doc) {
        failures.push(format!("DTD (ocf-tester): {e}"));
    }
    if let Err(e) = xmllint(&["--noout", "--relaxng", RA_RNG], "/", doc) {
        failures.push(format!("resource-agents metadata.rng: {e}"));
    }
    let pcs_rng = format!("{PCS_RNG_DIR}/ocf-{}.rng", ocf_version(doc));
    if !Path::new(&pcs_rng).exists() {
        failures.push(format!(
            "pcs has no schema for <version>{}</version>",
            ocf_version(doc)
        ));
    } else if let Err(e) = xmllint(&["--noout", "--relaxng", &pcs_rng], "/", doc) {
        failures.push(format!("pcs {pcs_rng}: {e}"));
    }
    failures
}

fn tools_present() -> bool {
    for f in [DTD_DIR, RA_RNG, PCS_RNG_DIR] {
        if !Path::new(f).exists() {
            // CI installs resource-agents, pcs and libxml2-utils; a developer machine
            // without them gets a loud failure, not a silent pass.
            panic!("{f} missing: run tests/setup-debian.sh (installs resource-agents, pcs, libxml2-utils)");
        }
    }
    true
}

#[test]
fn every_agent_metadata_passes_dtd_ra_rng_and_pcs_rng() {
    assert!(tools_present());
    for agent in AGENTS {
        let path = bin_dir().join(agent);
        // meta-data needs no parameters and no root: run with a clean environment.
        let out = Command::new(&path)
            .arg("meta-data")
            .env_clear()
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", path.display()));
        assert_eq!(out.status.code(), Some(0), "{agent} meta-data exit");
        let doc = String::from_utf8(out.stdout).expect("utf-8 meta-data");
        assert!(doc.contains(&format!("<resource-agent name=\"{agent}\"")));
        let failures = validate_all(&doc);
        assert!(failures.is_empty(), "{agent}: {failures:#?}\n{doc}");
    }
}

#[test]
fn the_validators_reject_what_each_schema_forbids() {
    assert!(tools_present());
    let good = r#"<?xml version="1.0"?>
<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">
<resource-agent name="t" version="0.1.0">
<version>1.1</version>
<longdesc lang="en">l</longdesc>
<shortdesc lang="en">s</shortdesc>
<parameters>
<parameter name="ip" unique="1" required="1">
<longdesc lang="en">l</longdesc>
<shortdesc lang="en">s</shortdesc>
<content type="string"/>
</parameter>
</parameters>
<actions>
<action name="start" timeout="20s"/>
</actions>
</resource-agent>
"#;
    assert!(validate_all(good).is_empty(), "{:?}", validate_all(good));
    // No DOCTYPE: only the DTD check fails.
    let no_doctype = good.replace("<!DOCTYPE resource-agent SYSTEM \"ra-api-1.dtd\">\n", "");
    let f = validate_all(&no_doctype);
    assert!(f.len() == 1 && f[0].starts_with("DTD"), "{f:?}");
    // type="time": only resource-agents' RNG fails.
    let time = good.replace("type=\"string\"", "type=\"time\"");
    let f = validate_all(&time);
    assert!(f.len() == 1 && f[0].starts_with("resource-agents"), "{f:?}");
    // reloadable="1" is valid for pcs 1.1 only.
    let reloadable = good.replace("required=\"1\">", "required=\"1\" reloadable=\"1\">");
    let f = validate_all(&reloadable);
    assert_eq!(f.len(), 2, "{f:?}");
    // unique="true": every validator fails.
    let f = validate_all(&good.replace("unique=\"1\"", "unique=\"true\""));
    assert_eq!(f.len(), 3, "{f:?}");
    // An unknown OCF version has no pcs schema.
    let f = validate_all(&good.replace("<version>1.1</version>", "<version>2.0</version>"));
    assert!(f.iter().any(|x| x.starts_with("pcs")), "{f:?}");
}

/// The generator itself, over every parameter kind and awkward text, passes all three.
#[test]
fn generated_metadata_for_every_kind_passes_all_three() {
    use ocf_metadata::{AgentSpec, Kind, Param, Unit, STANDARD_ACTIONS};
    assert!(tools_present());
    static PARAMS: &[Param] = &[
        Param::new("s", Kind::String, "a <string> & \"quotes\"").default("a&b<c>"),
        Param::new("i", Kind::Integer { min: -1, max: 9 }, "int").default("3"),
        Param::new("b", Kind::Boolean, "bool").default("true"),
        Param::new("ip", Kind::Ip, "ip").required().unique(),
        Param::new("p", Kind::Prefix, "prefix"),
        Param::new("nic", Kind::Interface, "nic"),
        Param::new("d", Kind::Duration(Unit::Ms), "ms").default("200"),
        Param::new("e", Kind::Enum(&["x", "y"]), "enum").default("x"),
        Param::new("m", Kind::Mac, "mac").long("A long\ndescription over lines."),
        Param::new("nm", Kind::Netmask, "netmask").default("24"),
    ];
    let spec = AgentSpec {
        name: "kinds",
        version: "0.1.0",
        shortdesc: "every kind",
        longdesc: "Long <text> with & markup.",
        params: PARAMS,
        actions: STANDARD_ACTIONS,
    };
    let doc = ocf_metadata::xml::metadata(&spec);
    let failures = validate_all(&doc);
    assert!(failures.is_empty(), "{failures:#?}\n{doc}");
}
