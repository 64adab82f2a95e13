//! Fence-agents metadata XML (validates against fence-agents' metadata.rng and pcs's
//! ocf-1.0.rng) and the section 8 man page, both from the option table.

use super::opts::{FenceSpec, OptKind};
use crate::man::roff;
use crate::xml::escape;
use std::fmt::Write;

/// `-o metadata`. A renamed option appears twice: the new name with
/// `obsoletes="<old>"`, then the old name with `deprecated="1"`.
pub fn metadata(spec: &FenceSpec) -> String {
    let mut x = String::with_capacity(8192);
    x.push_str("<?xml version=\"1.0\" ?>\n");
    let _ = writeln!(
        x,
        "<resource-agent name=\"{}\" shortdesc=\"{}\" >",
        escape(spec.name),
        escape(spec.shortdesc)
    );
    let _ = writeln!(x, "<longdesc>{}</longdesc>", escape(spec.longdesc.trim()));
    let _ = writeln!(x, "<vendor-url>{}</vendor-url>", escape(spec.vendor_url));
    x.push_str("<parameters>\n");
    for o in spec.options {
        let mut names = vec![(o.name, false)];
        if let Some(old) = o.obsoletes {
            names.push((old, true));
        }
        for (name, deprecated) in names {
            let _ = write!(
                x,
                "\t<parameter name=\"{}\" unique=\"0\" required=\"{}\"",
                escape(name),
                u8::from(o.required)
            );
            if deprecated {
                x.push_str(" deprecated=\"1\"");
            } else if let Some(old) = o.obsoletes {
                let _ = write!(x, " obsoletes=\"{}\"", escape(old));
            }
            x.push_str(">\n");
            let _ = writeln!(x, "\t\t<getopt mixed=\"{}\" />", escape(&o.getopt_mixed()));
            let _ = write!(x, "\t\t<content type=\"{}\"", o.content_type());
            if let Some(d) = o.default {
                let _ = write!(x, " default=\"{}\"", escape(d));
            }
            match o.kind {
                OptKind::Select(words) => {
                    x.push_str(" >\n");
                    for w in words {
                        let _ = writeln!(x, "\t\t\t<option value=\"{}\" />", escape(w));
                    }
                    x.push_str("\t\t</content>\n");
                }
                _ => x.push_str(" />\n"),
            }
            let _ = writeln!(
                x,
                "\t\t<shortdesc lang=\"en\">{}</shortdesc>",
                escape(o.shortdesc)
            );
            x.push_str("\t</parameter>\n");
        }
    }
    x.push_str("</parameters>\n<actions>\n");
    for a in spec.actions {
        if *a == "on" {
            x.push_str("\t<action name=\"on\" automatic=\"0\"/>\n");
        } else {
            let _ = writeln!(x, "\t<action name=\"{}\" />", escape(a));
        }
    }
    x.push_str("</actions>\n</resource-agent>\n");
    x
}

/// `-o manpage`: `<agent>(8)`.
pub fn manpage(spec: &FenceSpec) -> String {
    let mut m = String::new();
    let _ = writeln!(
        m,
        ".TH {} 8 \"\" \"bulwark {}\" \"Fence agents\"",
        spec.name.to_uppercase(),
        spec.version
    );
    let _ = writeln!(
        m,
        ".SH NAME\n{} \\- {}",
        roff(spec.name),
        roff(spec.shortdesc)
    );
    let _ = writeln!(
        m,
        ".SH SYNOPSIS\n\\fB{}\\fR [\\fIOPTION\\fR]...\n.br\n\\fB{}\\fR < \\fIname=value lines\\fR",
        roff(spec.name),
        roff(spec.name)
    );
    let _ = writeln!(m, ".SH DESCRIPTION\n{}", roff(spec.longdesc.trim()));
    let _ = writeln!(
        m,
        ".PP\nWith arguments, options are read from the command line. Without arguments, \
         \\fIname=value\\fR lines are read from standard input (as pacemaker-fenced sends them): \
         blank lines and lines starting with # are ignored, the last occurrence of a name wins, \
         old names (see each option) are accepted."
    );
    let _ = writeln!(m, ".SH OPTIONS");
    for o in spec.options {
        let _ = writeln!(m, ".TP\n\\fB{}\\fR", roff(&o.getopt_mixed()));
        let mut body = o.shortdesc.to_string();
        if let OptKind::Select(words) = o.kind {
            let _ = write!(body, " One of: {}.", words.join(", "));
        }
        let _ = writeln!(m, "{}", roff(&body));
        let mut stdin = format!("Standard input: {}", o.name);
        if let Some(old) = o.obsoletes {
            let _ = write!(stdin, " (or the old name {old})");
        }
        if let Some(d) = o.default {
            let _ = write!(stdin, "; default: {d}");
        }
        if o.required {
            stdin.push_str("; required");
        }
        let _ = writeln!(m, ".br\n{}", roff(&stdin));
    }
    let _ = writeln!(
        m,
        ".TP\n\\fB\\-h, \\-\\-help\\fR\nShow the options.\n.TP\n\\fB\\-V, \\-\\-version\\fR\nShow the version."
    );
    let _ = writeln!(m, ".SH ACTIONS");
    for (a, what) in [
        ("on", "Power on, then verify."),
        ("off", "Power off, then verify."),
        ("reboot", "Power off, verify, power on, verify (method onoff), or one power cycle (method cycle)."),
        ("status", "Print Status: ON or Status: OFF."),
        ("monitor", "Check that the device answers."),
        ("list, list-status", "This device powers one node: prints a notice."),
        ("metadata", "Print the fence-agents XML metadata."),
        ("manpage", "Print this page."),
        ("validate-all", "Check the options without contacting the device."),
    ] {
        let _ = writeln!(m, ".TP\n\\fB{}\\fR\n{}", roff(a), roff(what));
    }
    let _ = writeln!(
        m,
        ".SH EXIT STATUS\n0 on success; for status, 0 when the power is on and 2 when it is off; \
         1 for every failure (bad input, unreachable device, authentication, timeout)."
    );
    let _ = writeln!(
        m,
        ".SH SEE ALSO\n\\fBstonith_admin\\fR(8), \\fBpcs\\fR(8), \\fBfence_ipmilan\\fR(8)"
    );
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fence::opts::{FenceOpt, OptKind};
    use crate::fence::std_opts as s;

    static OPTS: &[FenceOpt] = &[
        s::ACTION,
        s::IP,
        s::PASSWORD,
        FenceOpt::new("cipher", "cipher", OptKind::Select(&["auto", "3"]), "c<>").default("auto"),
    ];
    static SPEC: FenceSpec = FenceSpec {
        name: "fence_t",
        version: "0",
        shortdesc: "T & t",
        longdesc: "L",
        vendor_url: "",
        options: OPTS,
        actions: &["on", "off", "status"],
    };

    #[test]
    fn shape() {
        let x = metadata(&SPEC);
        assert!(x.contains("<resource-agent name=\"fence_t\" shortdesc=\"T &amp; t\" >"));
        assert!(
            x.contains("<parameter name=\"ip\" unique=\"0\" required=\"1\" obsoletes=\"ipaddr\">")
        );
        assert!(
            x.contains("<parameter name=\"ipaddr\" unique=\"0\" required=\"1\" deprecated=\"1\">")
        );
        assert!(x.contains("<getopt mixed=\"-a, --ip=[ip]\" />"));
        assert!(x.contains("<option value=\"3\" />"));
        assert!(x.contains("c&lt;&gt;"));
        assert!(x.contains("<action name=\"on\" automatic=\"0\"/>"));
        assert!(x.find("<longdesc>").unwrap() < x.find("<vendor-url>").unwrap());
        let m = manpage(&SPEC);
        assert!(m.starts_with(".TH FENCE_T 8"));
        assert!(m.contains("\\-a, \\-\\-ip=[ip]"));
    }
}
