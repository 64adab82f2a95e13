//! Meta-data XML, limited to the subset that the resource-agents DTD (ocf-tester),
//! resource-agents' metadata.rng and pcs's ocf-1.1.rng all accept:
//! DOCTYPE line, `<version>1.1</version>`, longdesc before shortdesc with `lang="en"`,
//! content types string/integer/boolean only, every action with a timeout.

use crate::spec::{AgentSpec, OCF_VERSION};
use std::fmt::Write;

/// Escapes text for XML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 forbids most control characters.
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' && c != '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// The full meta-data document for an agent.
pub fn metadata(spec: &AgentSpec) -> String {
    let mut x = String::with_capacity(4096);
    x.push_str("<?xml version=\"1.0\"?>\n");
    x.push_str("<!DOCTYPE resource-agent SYSTEM \"ra-api-1.dtd\">\n");
    let _ = writeln!(
        x,
        "<resource-agent name=\"{}\" version=\"{}\">",
        escape(spec.name),
        escape(spec.version)
    );
    let _ = writeln!(x, "<version>{OCF_VERSION}</version>");
    let _ = writeln!(
        x,
        "<longdesc lang=\"en\">\n{}\n</longdesc>",
        escape(spec.longdesc.trim())
    );
    let _ = writeln!(
        x,
        "<shortdesc lang=\"en\">{}</shortdesc>",
        escape(spec.shortdesc)
    );
    x.push_str("<parameters>\n");
    for p in spec.params {
        let _ = writeln!(
            x,
            "<parameter name=\"{}\" unique=\"{}\" required=\"{}\">",
            escape(p.name),
            u8::from(p.unique),
            u8::from(p.required)
        );
        let mut long = p.longdesc.trim().to_string();
        if long.is_empty() {
            long = p.shortdesc.to_string();
        }
        if let Some(hint) = p.syntax_hint() {
            long.push(' ');
            long.push_str(&hint);
        }
        let _ = writeln!(x, "<longdesc lang=\"en\">\n{}\n</longdesc>", escape(&long));
        let _ = writeln!(
            x,
            "<shortdesc lang=\"en\">{}</shortdesc>",
            escape(p.shortdesc)
        );
        match p.default {
            Some(d) => {
                let _ = writeln!(
                    x,
                    "<content type=\"{}\" default=\"{}\"/>",
                    p.content_type(),
                    escape(d)
                );
            }
            None => {
                let _ = writeln!(x, "<content type=\"{}\"/>", p.content_type());
            }
        }
        x.push_str("</parameter>\n");
    }
    x.push_str("</parameters>\n<actions>\n");
    for a in spec.actions {
        let _ = write!(
            x,
            "<action name=\"{}\" timeout=\"{}\"",
            escape(a.name),
            escape(a.timeout)
        );
        if let Some(i) = a.interval {
            let _ = write!(x, " interval=\"{}\"", escape(i));
        }
        if let Some(d) = a.depth {
            let _ = write!(x, " depth=\"{d}\"");
        }
        x.push_str("/>\n");
    }
    x.push_str("</actions>\n</resource-agent>\n");
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::param::{Kind, Param};
    use crate::spec::{ActionSpec, DTD_ACTIONS, STANDARD_ACTIONS};

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("a<b & \"c\">'"),
            "a&lt;b &amp; &quot;c&quot;&gt;&apos;"
        );
        assert_eq!(escape("x\u{1}y"), "xy");
    }

    #[test]
    fn document_shape() {
        static PARAMS: &[Param] = &[Param::new("ip", Kind::Ip, "the <ip>").required().unique()];
        let spec = AgentSpec {
            name: "t",
            version: "0.1.0",
            shortdesc: "s",
            longdesc: "l",
            params: PARAMS,
            actions: STANDARD_ACTIONS,
        };
        let x = metadata(&spec);
        assert!(x.starts_with(
            "<?xml version=\"1.0\"?>\n<!DOCTYPE resource-agent SYSTEM \"ra-api-1.dtd\">\n"
        ));
        assert!(x.contains("<version>1.1</version>"));
        assert!(x.contains("<parameter name=\"ip\" unique=\"1\" required=\"1\">"));
        assert!(x.contains("the &lt;ip&gt;"));
        assert!(x.find("<longdesc").unwrap() < x.find("<shortdesc").unwrap());
        assert!(
            x.contains("<action name=\"monitor\" timeout=\"20s\" interval=\"10s\" depth=\"0\"/>")
        );
        for a in STANDARD_ACTIONS {
            assert!(DTD_ACTIONS.contains(&a.name));
        }
        let _ = ActionSpec::new("status", "20s");
    }
}
