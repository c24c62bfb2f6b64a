//! Finds the line of a value in block-style YAML text from its path (`policy[3].ports[1]`),
//! so that semantic errors can point at a line like syntax errors do.
//!
//! serde_yaml forgets positions once a value is deserialized, so this walks the text by
//! indentation instead: a mapping is a run of `key:` lines at one indent, a sequence a run of
//! `- ` items at one indent. It understands what the config files use (block mappings and
//! sequences, items that start with a key on the dash line, one-line flow collections,
//! comments, quoted keys) and returns `None` for anything else rather than guess: an anchor or
//! merge, a multi-line flow collection, a key that is not written out.

/// One step of a path: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

/// Splits `a.b[2].c` into segments; `None` if malformed.
fn segments(path: &str) -> Option<Vec<Seg<'_>>> {
    let mut out = Vec::new();
    if path.is_empty() {
        return Some(out);
    }
    for part in path.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(i) => part.split_at(i),
            None => (part, ""),
        };
        if key.is_empty() && out.is_empty() {
            return None;
        }
        if !key.is_empty() {
            out.push(Seg::Key(key));
        }
        while let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            out.push(Seg::Index(r[..end].parse().ok()?));
            rest = &r[end + 1..];
        }
        if !rest.is_empty() {
            return None;
        }
    }
    Some(out)
}

/// A node start: a physical line split at each `- ` so that `  - name: x` becomes a dash at
/// indent 2 and `name: x` at indent 4, both on the same line.
#[derive(Debug, Clone, Copy)]
struct VLine<'a> {
    /// 1-based.
    line: usize,
    indent: usize,
    /// `"-"` for a sequence item marker, else the content (comments included).
    text: &'a str,
}

fn vlines(text: &str) -> Vec<VLine<'_>> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let body = raw.trim_start_matches(' ');
        let mut indent = raw.len() - body.len();
        let mut content = body.trim_end();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        if content == "..." {
            break;
        }
        if content == "---" || content.starts_with("--- ") {
            continue;
        }
        loop {
            if content == "-" || content.starts_with("- ") {
                out.push(VLine {
                    line: i + 1,
                    indent,
                    text: "-",
                });
                let after = &content[1..];
                let rest = after.trim_start_matches(' ');
                indent += 1 + (after.len() - rest.len());
                content = rest;
                if content.is_empty() || content.starts_with('#') {
                    break;
                }
            } else {
                out.push(VLine {
                    line: i + 1,
                    indent,
                    text: content,
                });
                break;
            }
        }
    }
    out
}

/// The key of a `key: value` line and the value text (comment stripped, may be empty).
fn key_value(text: &str) -> Option<(&str, &str)> {
    let (key, rest) = if let Some(q @ ('"' | '\'')) = text.chars().next() {
        let end = text[1..].find(q)? + 1;
        (&text[1..end], &text[end + 1..])
    } else {
        let i = text
            .match_indices(':')
            .map(|(i, _)| i)
            .find(|&i| text[i + 1..].is_empty() || text[i + 1..].starts_with(' '))?;
        (text[..i].trim_end(), &text[i..])
    };
    let value = rest.strip_prefix(':')?;
    if !(value.is_empty() || value.starts_with(' ')) {
        return None;
    }
    let value = match value.find(" #") {
        Some(i) => &value[..i],
        None => value,
    };
    Some((key, value.trim()))
}

/// Whether `v` is a flow collection that opens and closes on its line.
fn one_line_flow(v: &str) -> bool {
    (v.starts_with('[') && v.ends_with(']')) || (v.starts_with('{') && v.ends_with('}'))
}

/// The 1-based line where the value at `path` starts (for a key: its `key:` line; for an
/// item: its `- ` line), or `None` if it cannot be found for sure. The empty path is line 1.
pub fn locate(text: &str, path: &str) -> Option<usize> {
    let segs = segments(path)?;
    let lines = vlines(text);
    if segs.is_empty() {
        return Some(1);
    }
    // The current node is lines[lo..hi]; its entries sit at the indent of its first line.
    let (mut lo, mut hi) = (0, lines.len());
    let mut found = None;
    for (n, seg) in segs.iter().enumerate() {
        let first = lines.get(lo).filter(|_| lo < hi)?;
        if one_line_flow(first.text.split(" #").next().unwrap_or("").trim_end()) {
            // An item written as `- {a: 1, b: 2}`: everything inside is on this line.
            return Some(first.line);
        }
        let base = first.indent;
        if lines[lo..hi].iter().any(|l| l.indent < base) {
            return None;
        }
        let siblings = (lo..hi).filter(|&i| lines[i].indent == base);
        let at = match *seg {
            Seg::Key(k) => {
                let mut hit = None;
                for i in siblings {
                    if lines[i].text == "-" {
                        // A sequence item at a mapping's indent belongs to the key before it
                        // (`policy:` then `- name: x`); a node that starts with one is a
                        // sequence, not a mapping.
                        if i == lo {
                            return None;
                        }
                        continue;
                    }
                    if key_value(lines[i].text).is_some_and(|(key, _)| key == k) {
                        hit = Some(i);
                        break;
                    }
                }
                hit?
            }
            Seg::Index(idx) => {
                let items: Vec<usize> = siblings.collect();
                if items.iter().any(|&i| lines[i].text != "-") {
                    return None;
                }
                *items.get(idx)?
            }
        };
        found = Some(lines[at].line);
        // The node's extent: everything deeper than `base` up to the next sibling. A mapping
        // value may also be a sequence written at the key's own indent (`key:` then `- x`).
        let is_key = lines[at].text != "-";
        let mut end = at + 1;
        while end < hi
            && (lines[end].indent > base
                || (is_key && lines[end].indent == base && lines[end].text == "-"))
        {
            end += 1;
        }
        if is_key {
            let value = key_value(lines[at].text).map(|(_, v)| v).unwrap_or("");
            if !value.is_empty() && n + 1 < segs.len() {
                // Anything inside a one-line flow collection is on that same line.
                return one_line_flow(value).then_some(lines[at].line);
            }
        }
        lo = at + 1;
        hi = end;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\
# a comment
eal: [\"--no-pci\"]
interfaces:
  inside:
    device: net_af_packet0,iface=ct-in0   # the veth
    addresses:
      - 198.18.0.254/24
      - 198.18.1.254/24
  outside:
    device: \"0000:03:00.1\"
    addresses: [198.19.0.254/24]

policy:
- name: icmp
  protocol: icmp
  action: pass
-
  name: web
  ports:
    - 80
    - \"5201-5210\"
  action: proxy
- {name: last, action: deny}
users:
  - name: alice
    'password_hash': x
workers: {count: 1}
";

    #[test]
    fn paths_parse() {
        assert_eq!(
            segments("policy[3].ports[1]"),
            Some(vec![
                Seg::Key("policy"),
                Seg::Index(3),
                Seg::Key("ports"),
                Seg::Index(1)
            ])
        );
        assert_eq!(segments("a[1][2]").map(|v| v.len()), Some(3));
        assert_eq!(segments("a[x]"), None);
        assert_eq!(segments("a[1"), None);
        assert_eq!(segments("[1]"), None);
    }

    #[test]
    fn finds_keys_and_items() {
        let l = |p| locate(DOC, p);
        assert_eq!(l(""), Some(1));
        assert_eq!(l("eal"), Some(2));
        assert_eq!(l("interfaces"), Some(3));
        assert_eq!(l("interfaces.inside"), Some(4));
        assert_eq!(l("interfaces.inside.device"), Some(5));
        assert_eq!(l("interfaces.inside.addresses"), Some(6));
        assert_eq!(l("interfaces.inside.addresses[0]"), Some(7));
        assert_eq!(l("interfaces.inside.addresses[1]"), Some(8));
        assert_eq!(l("interfaces.outside"), Some(9));
        assert_eq!(l("interfaces.outside.device"), Some(10));
        assert_eq!(l("interfaces.outside.addresses[0]"), Some(11));
        assert_eq!(l("policy"), Some(13));
        assert_eq!(l("policy[0]"), Some(14));
        assert_eq!(l("policy[0].name"), Some(14));
        assert_eq!(l("policy[0].action"), Some(16));
        assert_eq!(l("policy[1]"), Some(17));
        assert_eq!(l("policy[1].name"), Some(18));
        assert_eq!(l("policy[1].ports"), Some(19));
        assert_eq!(l("policy[1].ports[0]"), Some(20));
        assert_eq!(l("policy[1].ports[1]"), Some(21));
        assert_eq!(l("policy[1].action"), Some(22));
        assert_eq!(l("policy[2]"), Some(23));
        assert_eq!(l("users[0].name"), Some(25));
        assert_eq!(l("users[0].password_hash"), Some(26));
        assert_eq!(l("workers"), Some(27));
    }

    #[test]
    fn inside_one_line_flow_is_that_line() {
        assert_eq!(locate(DOC, "eal[0]"), Some(2));
        assert_eq!(locate(DOC, "policy[2].action"), Some(23));
        assert_eq!(locate(DOC, "workers.count"), Some(27));
    }

    #[test]
    fn none_rather_than_guess() {
        let l = |p| locate(DOC, p);
        assert_eq!(l("routes"), None);
        assert_eq!(l("policy[3]"), None);
        assert_eq!(l("policy[0].ports"), None);
        assert_eq!(l("interfaces.dmz"), None);
        assert_eq!(l("interfaces[0]"), None);
        assert_eq!(l("policy.name"), None);
        assert_eq!(l("interfaces.inside.device.x"), None);
        assert_eq!(l("bad[path"), None);
        // A multi-line flow collection.
        assert_eq!(locate("a: [1,\n  2]\n", "a[1]"), None);
    }

    #[test]
    fn keys_with_colons_and_nested_dashes() {
        let doc = "a:\n  - - x\n    - y\n  - z\nurl: http://x\n\"k: q\": 1\n";
        assert_eq!(locate(doc, "a[0]"), Some(2));
        assert_eq!(locate(doc, "a[0][0]"), Some(2));
        assert_eq!(locate(doc, "a[0][1]"), Some(3));
        assert_eq!(locate(doc, "a[1]"), Some(4));
        assert_eq!(locate(doc, "url"), Some(5));
        assert_eq!(locate(doc, "k: q"), Some(6));
    }

    #[test]
    fn document_markers() {
        let doc = "---\nx: 1\ny:\n  z: 2\n...\nw: 3\n";
        assert_eq!(locate(doc, "y.z"), Some(4));
        assert_eq!(locate(doc, "w"), None);
    }
}
