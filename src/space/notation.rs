//! The LLM-facing notation of each space, defined once: how an architecture
//! is shown in prompts ([`to_llm`]), described to the model
//! ([`format_hint`], [`op_legend`]), constrained in replies ([`arch_pattern`],
//! a regular expression for constrained decoding) and read back
//! ([`parse_compact`]). Prompts and replies use the same compact form, a few
//! short op codes per line:
//!
//! - DARTS: `normal: sep:0 sep:1 | sep:0 sep:1 | sep:1 skip:0 | skip:0 dil:2 ; reduce: ...`,
//!   the two edges `OP:INPUT` of nodes 2, 3, 4, 5 of each cell, nodes
//!   separated by `|`; node k reads inputs 0..k-1 (DARTS_V2 is 59 tokens
//!   with Qwen2.5's tokenizer, against 164 for the JSON form).
//! - NAS-Bench-201: `conv3 | conv1 skip | avg conv3 none`, the ops of node
//!   1's edge from node 0, node 2's from nodes 0 and 1, node 3's from nodes
//!   0, 1 and 2 (11 tokens).
//!
//! The older forms (the DARTS JSON and `Genotype(...)`, the NB201
//! `|op~0|+...` string and its JSON forms) stay accepted on input
//! ([`arch_from_json`], [`Space::parse`]).

use super::error::quoted;
use super::{darts, nb201, Arch, ArchError, Space};
use serde_json::{json, Value};

/// DARTS op codes: (code, op), the `none` op last (never proposed).
const DARTS_CODES: [(&str, darts::Op); 8] = [
    ("sep", darts::Op::SepConv3x3),
    ("sep5", darts::Op::SepConv5x5),
    ("dil", darts::Op::DilConv3x3),
    ("dil5", darts::Op::DilConv5x5),
    ("max", darts::Op::MaxPool3x3),
    ("avg", darts::Op::AvgPool3x3),
    ("skip", darts::Op::SkipConnect),
    ("none", darts::Op::None),
];

/// NAS-Bench-201 op codes: (code, op).
const NB201_CODES: [(&str, nb201::Op); 5] = [
    ("none", nb201::Op::None),
    ("skip", nb201::Op::SkipConnect),
    ("conv1", nb201::Op::Conv1x1),
    ("conv3", nb201::Op::Conv3x3),
    ("avg", nb201::Op::AvgPool3x3),
];

fn darts_code(op: darts::Op) -> &'static str {
    DARTS_CODES
        .iter()
        .find(|(_, o)| *o == op)
        .map_or("none", |(c, _)| c)
}

fn nb201_code(op: nb201::Op) -> &'static str {
    NB201_CODES
        .iter()
        .find(|(_, o)| *o == op)
        .map_or("none", |(c, _)| c)
}

/// The ops as the prompts list them: `code = full name`.
pub fn op_legend(space: Space) -> Vec<String> {
    match space {
        Space::Darts => DARTS_CODES
            .iter()
            .filter(|(_, o)| *o != darts::Op::None)
            .map(|(c, o)| format!("{c} = {}", o.name()))
            .collect(),
        Space::Nb201 => NB201_CODES
            .iter()
            .map(|(c, o)| format!("{c} = {}", o.name()))
            .collect(),
    }
}

/// An architecture in the notation the LLM reads and writes.
pub fn to_llm(arch: &Arch) -> String {
    match arch {
        Arch::Darts(g) => {
            let cell = |c: &darts::Cell| {
                c.chunks(2)
                    .map(|pair| {
                        pair.iter()
                            .map(|e| format!("{}:{}", darts_code(e.op), e.input))
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .collect::<Vec<_>>()
                    .join(" | ")
            };
            format!("normal: {} ; reduce: {}", cell(&g.normal), cell(&g.reduce))
        }
        Arch::Nb201(c) => {
            let op = |k: usize| nb201_code(c.ops[k]);
            format!(
                "{} | {} {} | {} {} {}",
                op(0),
                op(1),
                op(2),
                op(3),
                op(4),
                op(5)
            )
        }
    }
}

/// The regular expression of `n` architectures of `space` in the compact
/// notation, one per line: the constraint of an architecture reply.
pub fn arch_pattern(space: Space, n: usize) -> String {
    let one = match space {
        Space::Darts => {
            let ops: Vec<&str> = DARTS_CODES
                .iter()
                .filter(|(_, o)| *o != darts::Op::None)
                .map(|(c, _)| *c)
                .collect();
            let op = format!("(?:{})", ops.join("|"));
            let cell = (0..darts::NODES)
                .map(|k| {
                    let edge = format!("{op}:[0-{}]", k + 1);
                    format!("{edge} {edge}")
                })
                .collect::<Vec<_>>()
                .join(" \\| ");
            format!("normal: {cell} ; reduce: {cell}")
        }
        Space::Nb201 => {
            let ops: Vec<&str> = NB201_CODES.iter().map(|(c, _)| *c).collect();
            let op = format!("(?:{})", ops.join("|"));
            format!("{op} \\| {op} {op} \\| {op} {op} {op}")
        }
    };
    let n = n.max(1);
    if n == 1 {
        one
    } else {
        format!("{one}(?:\\n{one}){{{}}}", n - 1)
    }
}

/// The regular expression of `n` NAS-Bench-201 architectures, one per line,
/// whose cost stays within `limit`: budget-aware decoding, so that no
/// reply is over the budget. A cell's cost is `base` (every edge `none`)
/// plus each edge's op's `extra` (the NAS-Bench-201 cell's six edges all
/// map the cell's channels to themselves, so an op costs the same on every
/// edge); each is a vector over the budget's dimensions, `limit` the
/// budgets in the same order. `None` when no cell fits, or when every cell
/// does (the plain [`arch_pattern`] says the same then).
pub fn nb201_pattern_within(
    n: usize,
    base: &[f64],
    extra: &[(nb201::Op, Vec<f64>)],
    limit: &[f64],
) -> Option<String> {
    // Ops that cost the same form one class: `(?:none|skip|avg)`.
    let mut classes: Vec<(Vec<f64>, Vec<&str>)> = Vec::new();
    for (code, op) in NB201_CODES {
        let cost = extra.iter().find(|(o, _)| *o == op)?.1.clone();
        match classes.iter_mut().find(|(c, _)| *c == cost) {
            Some((_, codes)) => codes.push(code),
            None => classes.push((cost, vec![code])),
        }
    }
    let dims = limit.len();
    if base.len() != dims || classes.iter().any(|(c, _)| c.len() != dims) {
        return None;
    }
    let cheapest: Vec<f64> = (0..dims)
        .map(|d| {
            classes
                .iter()
                .map(|(c, _)| c[d])
                .fold(f64::INFINITY, f64::min)
        })
        .collect();
    let costliest: Vec<f64> = (0..dims)
        .map(|d| classes.iter().map(|(c, _)| c[d]).fold(0.0, f64::max))
        .collect();
    let edges = 6.0;
    if (0..dims).all(|d| base[d] + edges * costliest[d] <= limit[d]) {
        return None;
    }
    /// Separator before each edge of the notation `a | b c | d e f`.
    const SEP: [&str; 6] = ["", " \\| ", " ", " \\| ", " ", " "];
    fn within(
        at: usize,
        acc: &[f64],
        classes: &[(Vec<f64>, Vec<&str>)],
        cheapest: &[f64],
        limit: &[f64],
    ) -> Option<String> {
        if at == SEP.len() {
            return Some(String::new());
        }
        let left = (SEP.len() - at - 1) as f64;
        let mut alts = Vec::new();
        for (cost, codes) in classes {
            let next: Vec<f64> = acc.iter().zip(cost).map(|(a, c)| a + c).collect();
            let reachable = (0..limit.len()).all(|d| next[d] + left * cheapest[d] <= limit[d]);
            if !reachable {
                continue;
            }
            if let Some(rest) = within(at + 1, &next, classes, cheapest, limit) {
                alts.push(format!("(?:{}){rest}", codes.join("|")));
            }
        }
        match alts.len() {
            0 => None,
            1 => alts.pop().map(|a| format!("{}{a}", SEP[at])),
            _ => Some(format!("{}(?:{})", SEP[at], alts.join("|"))),
        }
    }
    let one = within(0, base, &classes, &cheapest, limit)?;
    let n = n.max(1);
    Some(if n == 1 {
        one
    } else {
        format!("{one}(?:\\n{one}){{{}}}", n - 1)
    })
}

/// The op of a code (from `codes`) or full name (`from_name`).
fn op_of<O: Copy>(
    space: Space,
    codes: &[(&str, O)],
    from_name: fn(&str) -> Option<O>,
    word: &str,
    at: &str,
) -> Result<O, ArchError> {
    let w = word.to_ascii_lowercase();
    codes
        .iter()
        .find(|(c, _)| *c == w)
        .map(|(_, o)| *o)
        .or_else(|| from_name(&w))
        .ok_or_else(|| {
            ArchError::new(
                space.name(),
                at,
                format!(
                    "unknown op {}; valid ops: {}",
                    quoted(word),
                    op_legend(space).join(", ")
                ),
            )
        })
}

fn darts_op(word: &str, at: &str) -> Result<darts::Op, ArchError> {
    op_of(Space::Darts, &DARTS_CODES, darts::Op::from_name, word, at)
}

fn nb201_op(word: &str, at: &str) -> Result<nb201::Op, ArchError> {
    op_of(Space::Nb201, &NB201_CODES, nb201::Op::from_name, word, at)
}

/// Read one cell's edges `OP:INPUT ...` (separators `|`, `,` and spaces).
fn darts_cell(name: &str, text: &str) -> Result<darts::Cell, ArchError> {
    let mut pairs: Vec<(String, i64)> = Vec::new();
    for word in text
        .split(|c: char| c.is_whitespace() || matches!(c, '|' | ',' | ';'))
        .filter(|w| !w.is_empty())
    {
        let at = darts::edge_location(name, pairs.len());
        let (op, input) = word.split_once(':').ok_or_else(|| {
            ArchError::new(
                "darts",
                at.clone(),
                format!("expected OP:INPUT (e.g. sep:0), found {}", quoted(word)),
            )
        })?;
        let op = darts_op(op, &at)?;
        let input: i64 = input.trim().parse().map_err(|_| {
            ArchError::new(
                "darts",
                at.clone(),
                format!("the input must be a node number, found {}", quoted(input)),
            )
        })?;
        pairs.push((op.name().to_string(), input));
    }
    darts::build_cell(name, &pairs)
}

/// Read an architecture in the compact notation (whitespace, case and the
/// separators are read leniently; full op names are accepted too).
pub fn parse_compact(space: Space, text: &str) -> Result<Arch, ArchError> {
    let t = text.trim();
    match space {
        Space::Darts => {
            let lower = t.to_ascii_lowercase();
            let (Some(n), Some(r)) = (lower.find("normal"), lower.find("reduce")) else {
                return Err(ArchError::new(
                    "darts",
                    "",
                    format!(
                        "expected `normal: OP:IN OP:IN | ... ; reduce: OP:IN OP:IN | ...`, found {}",
                        quoted(t)
                    ),
                ));
            };
            let section = |from: usize, to: usize| {
                let s = t.get(from..to).unwrap_or("");
                s.trim_start_matches(|c: char| c.is_whitespace() || c == ':' || c == '=')
            };
            let (normal, reduce) = if n < r {
                (
                    section(n + "normal".len(), r),
                    section(r + "reduce".len(), t.len()),
                )
            } else {
                (
                    section(n + "normal".len(), t.len()),
                    section(r + "reduce".len(), n),
                )
            };
            Ok(Arch::Darts(darts::Genotype {
                normal: darts_cell("normal", normal)?,
                reduce: darts_cell("reduce", reduce)?,
            }))
        }
        Space::Nb201 => {
            let groups: Vec<Vec<&str>> = t
                .split('|')
                .map(|g| g.split_whitespace().collect::<Vec<_>>())
                .filter(|g| !g.is_empty())
                .collect();
            let words: Vec<&str> = groups.iter().flatten().copied().collect();
            let sizes: Vec<usize> = groups.iter().map(Vec::len).collect();
            if words.len() != nb201::EDGES.len() || (groups.len() > 1 && sizes != [1, 2, 3]) {
                return Err(ArchError::new(
                    "nb201",
                    "",
                    format!(
                        "expected 6 ops as `OP | OP OP | OP OP OP` (node 1, node 2, node 3), found {}",
                        quoted(t)
                    ),
                ));
            }
            let mut ops = [nb201::Op::None; 6];
            for (k, w) in words.iter().enumerate() {
                let (to, from) = nb201::EDGES[k];
                ops[k] = nb201_op(w, &format!("node {to} <- {from}"))?;
            }
            Ok(Arch::Nb201(nb201::Nb201Cell { ops }))
        }
    }
}

/// What changed from `from` to `to`, edge by edge, in words the prompts use
/// (e.g. `node2<-1: none -> nor_conv_3x3`).
pub fn describe_change(from: &Arch, to: &Arch) -> String {
    let mut out: Vec<String> = Vec::new();
    match (from, to) {
        (Arch::Nb201(a), Arch::Nb201(b)) => {
            for (k, &(t, f)) in nb201::EDGES.iter().enumerate() {
                if a.ops[k] != b.ops[k] {
                    out.push(format!(
                        "node{t}<-{f}: {} -> {}",
                        a.ops[k].name(),
                        b.ops[k].name()
                    ));
                }
            }
        }
        (Arch::Darts(a), Arch::Darts(b)) => {
            for (name, x, y) in [
                ("normal", &a.normal, &b.normal),
                ("reduce", &a.reduce, &b.reduce),
            ] {
                for i in 0..darts::EDGES {
                    if x[i] != y[i] {
                        out.push(format!(
                            "{name} pair {}: [{}, {}] -> [{}, {}]",
                            i + 1,
                            x[i].op_name(),
                            x[i].input,
                            y[i].op_name(),
                            y[i].input
                        ));
                    }
                }
            }
        }
        _ => out.push("a different space".into()),
    }
    if out.is_empty() {
        "no change".into()
    } else {
        out.join("; ")
    }
}

/// How to write an architecture of `space`, for the prompts.
pub fn format_hint(space: Space) -> &'static str {
    match space {
        Space::Darts => {
            "one line `normal: OP:IN OP:IN | OP:IN OP:IN | OP:IN OP:IN | OP:IN OP:IN ; reduce: ` and the same for the reduction cell: the two edges of nodes 2, 3, 4 and 5 in turn, nodes separated by `|`; OP is an op code, IN the input node (node 2 reads 0-1, node 3 reads 0-2, node 4 reads 0-3, node 5 reads 0-4)"
        }
        Space::Nb201 => {
            "one line `OP | OP OP | OP OP OP`: the op on node 1's edge from node 0, then node 2's edges from nodes 0 and 1, then node 3's edges from nodes 0, 1 and 2"
        }
    }
}

/// The JSON schema of an architecture's JSON form (the older reply form,
/// still accepted; for tools and servers that take JSON schemas).
pub fn arch_schema(space: Space) -> Value {
    match space {
        Space::Darts => {
            let ops: Vec<&str> = darts::OPS
                .iter()
                .copied()
                .filter(|o| *o != "none")
                .collect();
            let pair = |max_input: usize| {
                json!({
                    "type": "array",
                    "prefixItems": [
                        {"type": "string", "enum": ops},
                        {"type": "integer", "minimum": 0, "maximum": max_input}
                    ],
                    "minItems": 2,
                    "maxItems": 2
                })
            };
            let cell = json!({
                "type": "array",
                "prefixItems": (0..darts::EDGES).map(|i| pair(i / 2 + 1)).collect::<Vec<_>>(),
                "minItems": darts::EDGES,
                "maxItems": darts::EDGES
            });
            json!({
                "type": "object",
                "properties": {"normal": cell, "reduce": cell},
                "required": ["normal", "reduce"],
                "additionalProperties": false
            })
        }
        Space::Nb201 => {
            let op = json!({"type": "string", "enum": nb201::OPS});
            let node = |n: usize| {
                json!({
                    "type": "array",
                    "prefixItems": vec![op.clone(); n],
                    "minItems": n,
                    "maxItems": n
                })
            };
            json!({
                "type": "object",
                "properties": {"node1": node(1), "node2": node(2), "node3": node(3)},
                "required": ["node1", "node2", "node3"],
                "additionalProperties": false
            })
        }
    }
}

/// Read an architecture from a reply that follows [`arch_schema`] (for
/// NAS-Bench-201 the space's string form is accepted too, as a JSON string
/// or under the key `"arch"`).
pub fn arch_from_json(space: Space, v: &Value) -> Result<Arch, ArchError> {
    match space {
        Space::Darts => space.parse(&v.to_string()),
        Space::Nb201 => {
            if let Some(s) = v.as_str().or_else(|| v.get("arch").and_then(Value::as_str)) {
                return space.parse(s);
            }
            let mut text = String::new();
            for n in 1..=3 {
                let key = format!("node{n}");
                let ops = v.get(&key).and_then(Value::as_array).ok_or_else(|| {
                    ArchError::new(
                        "nb201",
                        "",
                        format!("expected {{\"node1\": [op], \"node2\": [op, op], \"node3\": [op, op, op]}}; {key} is missing or not a list"),
                    )
                })?;
                if n > 1 {
                    text.push('+');
                }
                text.push('|');
                for (j, op) in ops.iter().enumerate() {
                    let op = op.as_str().ok_or_else(|| {
                        ArchError::new(
                            "nb201",
                            key.clone(),
                            format!("op must be a string, found {op}"),
                        )
                    })?;
                    text.push_str(&format!("{op}~{j}|"));
                }
            }
            space.parse(&text)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::constrain::{Grammar, RegexDfa};
    use crate::rng::Rng;

    const V2: &str = "normal: sep:0 sep:1 | sep:0 sep:1 | sep:1 skip:0 | skip:0 dil:2 ; reduce: max:0 max:1 | skip:2 max:1 | max:0 skip:2 | skip:2 max:1";

    #[test]
    fn the_compact_form_round_trips_and_matches_its_pattern() {
        for space in Space::ALL {
            let one = RegexDfa::new(&arch_pattern(space, 1)).unwrap();
            let three = RegexDfa::new(&arch_pattern(space, 3)).unwrap();
            let mut rng = Rng::seed(3);
            for _ in 0..50 {
                let arch = space.random(&mut rng);
                let text = to_llm(&arch);
                assert!(one.matches(&text), "{text}");
                assert_eq!(parse_compact(space, &text).unwrap(), arch);
                assert_eq!(
                    space.parse(&text).unwrap(),
                    arch,
                    "Space::parse reads it too"
                );
                let b = to_llm(&space.random(&mut rng));
                assert!(three.matches(&format!("{text}\n{b}\n{text}")));
                assert!(!three.matches(&format!("{text}\n{b}")));
            }
        }
    }

    #[test]
    fn darts_v2_is_written_compactly() {
        let v2 = Space::Darts
            .parse(r#"Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])"#)
            .unwrap();
        assert_eq!(to_llm(&v2), V2);
        let nb = Space::Nb201
            .parse("|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_3x3~1|none~2|")
            .unwrap();
        assert_eq!(to_llm(&nb), "conv3 | conv1 skip | avg conv3 none");
    }

    #[test]
    fn the_pattern_bounds_inputs_and_excludes_none() {
        let d = RegexDfa::new(&arch_pattern(Space::Darts, 1)).unwrap();
        assert!(
            !d.matches(&V2.replacen("sep:1", "sep:2", 1)),
            "node 2 reads 0-1"
        );
        assert!(!d.matches(&V2.replacen("sep:0", "none:0", 1)));
        assert!(!d.matches(&V2.replace(" | ", " ")));
    }

    #[test]
    fn compact_input_is_read_leniently_and_errors_name_the_edge() {
        let want = Space::Darts.parse(V2).unwrap();
        for text in [
            V2.replace("sep:", "sep_conv_3x3:"),
            V2.to_uppercase().replace("NORMAL", "normal"),
            V2.replace(" | ", ", "),
            format!("  {}  ", V2.replace("; ", "\n")),
        ] {
            assert_eq!(parse_compact(Space::Darts, &text).unwrap(), want, "{text}");
        }
        let e = parse_compact(Space::Darts, &V2.replacen("sep:1", "sep:4", 1)).unwrap_err();
        assert!(e.to_string().contains("normal cell, node 2, edge 2"), "{e}");
        let e = parse_compact(Space::Darts, &V2.replacen("dil:", "conv7:", 1)).unwrap_err();
        assert!(
            e.to_string().contains("conv7") && e.to_string().contains("dil = dil_conv_3x3"),
            "{e}"
        );
        let e = parse_compact(Space::Nb201, "conv3 | conv1 | skip avg conv3 none").unwrap_err();
        assert!(e.to_string().contains("OP | OP OP | OP OP OP"), "{e}");
        let e = parse_compact(Space::Nb201, "conv3 | conv5 skip | avg conv3 none").unwrap_err();
        assert!(
            e.to_string().contains("node 2 <- 0") && e.to_string().contains("conv5"),
            "{e}"
        );
    }

    #[test]
    fn schemas_compile_and_accept_the_spaces_own_architectures() {
        for space in Space::ALL {
            let g = Grammar::compile(&arch_schema(space)).unwrap();
            let mut rng = Rng::seed(3);
            for _ in 0..20 {
                let arch = space.random(&mut rng);
                let v = match &arch {
                    Arch::Darts(g) => g.to_json(),
                    Arch::Nb201(c) => {
                        let op = |k: usize| c.ops[k].name();
                        json!({"node1": [op(0)], "node2": [op(1), op(2)], "node3": [op(3), op(4), op(5)]})
                    }
                };
                g.validate(&v).unwrap();
                assert_eq!(arch_from_json(space, &v).unwrap(), arch);
            }
        }
    }

    #[test]
    fn the_hint_and_legend_name_what_the_prompts_show() {
        assert!(format_hint(Space::Darts).contains("normal: OP:IN"));
        let legend = op_legend(Space::Darts).join(", ");
        for code in V2
            .split_whitespace()
            .filter_map(|w| w.split_once(':'))
            .map(|x| x.0)
        {
            if !code.is_empty() && code != "normal" && code != "reduce" {
                assert!(legend.contains(&format!("{code} = ")), "{code}");
            }
        }
        assert_eq!(op_legend(Space::Nb201).len(), nb201::OPS.len());
    }

    #[test]
    fn out_of_range_inputs_are_rejected_by_the_schema() {
        let g = Grammar::compile(&arch_schema(Space::Darts)).unwrap();
        let mut v = Space::Darts.random(&mut Rng::seed(0)).to_json();
        v["normal"][0][1] = json!(2);
        assert!(g.validate(&v).is_err());
        let e = arch_from_json(Space::Nb201, &json!({"node1": []})).unwrap_err();
        assert!(e.to_string().contains("node2"), "{e}");
    }
}
