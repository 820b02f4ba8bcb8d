//! Find the architecture in an LLM's reply: the compact notation the prompts
//! ask for (a line each), and the older forms anywhere in the text: fenced
//! JSON, bare JSON, the DARTS `Genotype(...)` string or the NAS-Bench-201
//! string.

use crate::space::nb201::{self, Nb201Cell};
use crate::space::{Arch, ArchError, Genotype, Space};

/// Why no architecture could be taken from a reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    /// Something shaped like an architecture was found but is invalid.
    #[error("{0}")]
    Invalid(ArchError),
    /// Nothing in the reply looks like an architecture.
    #[error("no {space} architecture found in the reply; expected {format}")]
    NotFound {
        /// The space.
        space: &'static str,
        /// The expected format.
        format: &'static str,
    },
}

/// A line of a reply without list markers, quotes and backticks.
fn bare_line(line: &str) -> &str {
    let t = line.trim().trim_matches('`').trim();
    let t = t
        .strip_prefix("- ")
        .or_else(|| t.strip_prefix("* "))
        .unwrap_or(t);
    let digits = t.chars().take_while(char::is_ascii_digit).count();
    let t = if digits > 0 && t[digits..].starts_with(['.', ')']) {
        &t[digits + 1..]
    } else {
        t
    };
    t.trim().trim_matches('`').trim()
}

/// Whether a line is written in the space's compact notation (so a failure
/// to read it is worth reporting).
fn looks_compact(space: Space, line: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    match space {
        Space::Darts => lower.starts_with("normal") && lower.contains("reduce"),
        Space::Nb201 => {
            line.matches('|').count() == 2
                && !line.contains(['~', '{', '+'])
                && line.split('|').all(|g| !g.trim().is_empty())
        }
    }
}

/// The architectures in the compact notation, a line each, in order.
fn compact_lines(space: Space, reply: &str) -> Vec<Result<Arch, ArchError>> {
    reply
        .lines()
        .map(bare_line)
        .filter(|l| looks_compact(space, l))
        .map(|l| crate::space::notation::parse_compact(space, l))
        .collect()
}

/// Candidate snippets, most specific first.
fn candidates(reply: &str) -> Vec<String> {
    let mut out = Vec::new();
    // Fenced blocks.
    let mut rest = reply;
    while let Some(start) = rest.find("```") {
        let after = &rest[start + 3..];
        let body_start = after.find('\n').map_or(0, |i| i + 1);
        let Some(end) = after[body_start..].find("```") else {
            break;
        };
        out.push(after[body_start..body_start + end].trim().to_string());
        rest = &after[body_start + end + 3..];
    }
    out.push(reply.trim().to_string());
    // Balanced JSON objects anywhere.
    for (i, c) in reply.char_indices() {
        if c == '{' {
            if let Some(obj) = balanced(&reply[i..], '{', '}') {
                out.push(obj.to_string());
            }
        }
    }
    // Genotype(...) strings.
    for (i, _) in reply.match_indices("Genotype(") {
        if let Some(g) = balanced(&reply[i + "Genotype".len()..], '(', ')') {
            out.push(format!("Genotype{g}"));
        }
    }
    // NAS-Bench-201 strings: from a '|' to the end of the run of cell characters.
    for (i, c) in reply.char_indices() {
        if c == '|'
            && (i == 0
                || !reply[..i].ends_with(|p: char| {
                    p == '|' || p == '~' || p.is_alphanumeric() || p == '_' || p == '+'
                }))
        {
            let run: String = reply[i..]
                .chars()
                .take_while(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '|' | '~' | '+' | '_'))
                .collect();
            if run.matches('+').count() == 2 {
                out.push(run);
            }
        }
    }
    out
}

/// The balanced `open ... close` prefix of `s` (which starts with `open`).
fn balanced(s: &str, open: char, close: char) -> Option<&str> {
    let mut depth = 0usize;
    let mut in_str: Option<char> = None;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if let Some(q) = in_str {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                in_str = None;
            }
            continue;
        }
        if c == '"' || c == '\'' {
            in_str = Some(c);
        } else if c == open {
            depth += 1;
        } else if c == close {
            depth = depth.checked_sub(1)?;
            if depth == 0 {
                return Some(&s[..=i]);
            }
        }
    }
    None
}

/// Read the NB201 JSON forms: the schema's `{"node1": [op], "node2": [op, op],
/// "node3": [op, op, op]}`, `{"arch": "|...|"}`, or an object holding a list
/// of 6 op names in edge order (e.g. `{"edges": [...]}`).
fn nb201_from_json(v: &serde_json::Value) -> Option<Result<Nb201Cell, ArchError>> {
    let obj = v.as_object()?;
    if obj.contains_key("node1") || obj.contains_key("arch") {
        return Some(
            crate::space::notation::arch_from_json(Space::Nb201, v).and_then(|a| match a {
                Arch::Nb201(c) => Ok(c),
                Arch::Darts(_) => Err(ArchError::new("nb201", "", "expected a NAS-Bench-201 cell")),
            }),
        );
    }
    for val in obj.values() {
        if let Some(list) = val.as_array() {
            let ops: Option<Vec<&str>> = list.iter().map(|x| x.as_str()).collect();
            if let Some(ops) = ops.filter(|o| o.len() == nb201::EDGES.len()) {
                let mut text = String::new();
                for (k, &(to, from)) in nb201::EDGES.iter().enumerate() {
                    if from == 0 {
                        if to > 1 {
                            text.push('+');
                        }
                        text.push('|');
                    }
                    text.push_str(&format!("{}~{from}|", ops[k]));
                }
                return Some(Nb201Cell::parse(&text));
            }
        }
    }
    None
}

fn try_one(space: Space, cand: &str) -> Option<Result<Arch, ArchError>> {
    let t = cand.trim();
    if t.starts_with('{') {
        let v: serde_json::Value = match serde_json::from_str(t) {
            Ok(v) => v,
            Err(_) => {
                // Python-style quotes are common in small models' JSON.
                serde_json::from_str(&t.replace('\'', "\"")).ok()?
            }
        };
        return match space {
            Space::Darts => {
                let o = v.as_object()?;
                if o.contains_key("normal") || o.contains_key("reduce") {
                    Some(Genotype::from_json(&v).map(Arch::Darts))
                } else {
                    None
                }
            }
            Space::Nb201 => nb201_from_json(&v).map(|r| r.map(Arch::Nb201)),
        };
    }
    match space {
        Space::Darts if t.starts_with("Genotype") => Some(space.parse(t)),
        Space::Nb201 if t.starts_with('|') => Some(space.parse(t)),
        _ => None,
    }
}

/// Every architecture of `space` in `reply`, in order: the lines in the
/// compact notation that read as valid architectures; without any, the one
/// [`extract`] finds. An error when there is none.
pub fn extract_all(space: Space, reply: &str) -> Result<Vec<Arch>, ExtractError> {
    let lines = compact_lines(space, reply);
    let valid: Vec<Arch> = lines.iter().filter_map(|r| r.clone().ok()).collect();
    if !valid.is_empty() {
        return Ok(valid);
    }
    extract(space, reply).map(|a| vec![a])
}

/// The first valid architecture of `space` in `reply`; otherwise the error of
/// the first candidate that looked like one.
pub fn extract(space: Space, reply: &str) -> Result<Arch, ExtractError> {
    let mut first_err = None;
    for r in compact_lines(space, reply) {
        match r {
            Ok(a) => return Ok(a),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    for c in candidates(reply) {
        match try_one(space, &c) {
            Some(Ok(a)) => return Ok(a),
            Some(Err(e)) => {
                first_err.get_or_insert(e);
            }
            None => {}
        }
    }
    Err(match first_err {
        Some(e) => ExtractError::Invalid(e),
        None => ExtractError::NotFound {
            space: space.name(),
            format: crate::space::notation::format_hint(space),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NB: &str = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|";
    const DJ: &str = r#"{"normal": [["sep_conv_3x3", 0], ["sep_conv_3x3", 1], ["sep_conv_3x3", 0], ["sep_conv_3x3", 1], ["sep_conv_3x3", 1], ["skip_connect", 0], ["skip_connect", 0], ["dil_conv_3x3", 2]], "reduce": [["max_pool_3x3", 0], ["max_pool_3x3", 1], ["skip_connect", 2], ["max_pool_3x3", 1], ["max_pool_3x3", 0], ["skip_connect", 2], ["skip_connect", 2], ["max_pool_3x3", 1]]}"#;

    #[test]
    fn finds_architectures_in_every_form() {
        let want = Space::Darts.parse(DJ).unwrap();
        for reply in [
            DJ.to_string(),
            format!("Here it is:\n```json\n{DJ}\n```\nGood luck."),
            format!("I propose {DJ} because it is deep."),
            format!("Result: {}", want.to_text()),
            DJ.replace('"', "'"),
        ] {
            assert_eq!(extract(Space::Darts, &reply).unwrap(), want, "{reply}");
        }
        let nb = Space::Nb201.parse(NB).unwrap();
        for reply in [
            NB.to_string(),
            format!("The new cell is {NB}."),
            format!("```\n{{\"arch\": \"{NB}\"}}\n```"),
            r#"{"node1": ["nor_conv_3x3"], "node2": ["nor_conv_3x3", "avg_pool_3x3"], "node3": ["skip_connect", "nor_conv_3x3", "skip_connect"]}"#.to_string(),
            r#"{"edges": ["nor_conv_3x3", "nor_conv_3x3", "avg_pool_3x3", "skip_connect", "nor_conv_3x3", "skip_connect"]}"#.to_string(),
        ] {
            assert_eq!(extract(Space::Nb201, &reply).unwrap(), nb, "{reply}");
        }
    }

    #[test]
    fn reports_the_problem_of_a_near_miss() {
        let e = extract(Space::Nb201, "try |nor_conv_5x5~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|").unwrap_err();
        assert!(e.to_string().contains("nor_conv_5x5"), "{e}");
        let e = extract(Space::Darts, "I think more convolutions help.").unwrap_err();
        assert!(matches!(e, ExtractError::NotFound { .. }));
        let e = extract(
            Space::Darts,
            r#"{"normal": [["sep_conv_3x3", 0]], "reduce": []}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("expected 8"), "{e}");
    }

    #[test]
    fn reads_the_compact_notation_one_per_line() {
        let v2 = "normal: sep:0 sep:1 | sep:0 sep:1 | sep:1 skip:0 | skip:0 dil:2 ; reduce: max:0 max:1 | skip:2 max:1 | max:0 skip:2 | skip:2 max:1";
        let want = Space::Darts.parse(DJ).unwrap();
        assert_eq!(extract(Space::Darts, v2).unwrap(), want);
        assert_eq!(
            extract(Space::Darts, &format!("Here:\n`{v2}`")).unwrap(),
            want
        );
        let other = v2.replace("dil:2", "sep5:2");
        let all = extract_all(
            Space::Darts,
            &format!("1. {v2}\n2. {other}\nnot an architecture\n- {v2}"),
        )
        .unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0], want);
        assert_ne!(all[1], want);
        let nb = Space::Nb201.parse(NB).unwrap();
        let all = extract_all(
            Space::Nb201,
            "conv3 | conv3 avg | skip conv3 skip\nconv3 | conv9 avg | skip conv3 skip\n",
        )
        .unwrap();
        assert_eq!(all, vec![nb.clone()], "the invalid line is left out");
        let e = extract(Space::Nb201, "conv3 | conv9 avg | skip conv3 skip").unwrap_err();
        assert!(e.to_string().contains("conv9"), "{e}");
        // The older forms still come through extract_all.
        assert_eq!(extract_all(Space::Nb201, NB).unwrap(), vec![nb]);
    }
}
