//! The LLM-facing notation of each space, defined once: how an architecture
//! is shown in prompts ([`to_llm`]), described to the model
//! ([`format_hint`]), constrained in replies ([`arch_schema`], for
//! constrained decoding and servers' `json_schema` response formats) and read
//! back ([`arch_from_json`]). Prompts and replies use the same form.
//!
//! - DARTS: the space's own JSON form,
//!   `{"normal": [[op, input], ... 8 pairs], "reduce": [... 8 pairs]}`, with
//!   ops from the seven non-`none` DARTS ops and each pair's input bounded
//!   by its node (pairs 1-2 read nodes 0-1, pairs 3-4 nodes 0-2, pairs 5-6
//!   nodes 0-3, pairs 7-8 nodes 0-4), via `prefixItems`.
//! - NAS-Bench-201: `{"node1": [op], "node2": [op, op], "node3": [op, op, op]}`:
//!   node i's list gives the ops of its edges from nodes 0, 1, ..., i-1, in
//!   the order of the string form `|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`.

use super::{darts, nb201, Arch, ArchError, Space};
use serde_json::{json, Value};

/// An architecture in the notation the LLM reads and writes.
pub fn to_llm(arch: &Arch) -> Value {
    match arch {
        Arch::Darts(g) => g.to_json(),
        Arch::Nb201(c) => {
            let op = |k: usize| c.ops[k].name();
            json!({"node1": [op(0)], "node2": [op(1), op(2)], "node3": [op(3), op(4), op(5)]})
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

/// One line telling the model how to write an architecture of `space`.
pub fn format_hint(space: Space) -> &'static str {
    match space {
        Space::Darts => {
            "JSON {\"normal\": [[op, input], ... 8 pairs], \"reduce\": [[op, input], ... 8 pairs]}"
        }
        Space::Nb201 => {
            "JSON {\"node1\": [op from node 0], \"node2\": [op from node 0, op from node 1], \"node3\": [op from node 0, op from node 1, op from node 2]}"
        }
    }
}

/// The JSON schema of an architecture of `space`.
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
    use crate::llm::constrain::Grammar;
    use crate::rng::Rng;

    #[test]
    fn schemas_compile_and_accept_the_spaces_own_architectures() {
        for space in Space::ALL {
            let g = Grammar::compile(&arch_schema(space)).unwrap();
            let mut rng = Rng::seed(3);
            for _ in 0..20 {
                let arch = space.random(&mut rng);
                let v = to_llm(&arch);
                g.validate(&v).unwrap();
                assert_eq!(arch_from_json(space, &v).unwrap(), arch);
            }
        }
    }

    #[test]
    fn the_hint_names_the_keys_the_prompts_show() {
        let mut rng = Rng::seed(5);
        for space in Space::ALL {
            let shown = to_llm(&space.random(&mut rng));
            for key in shown.as_object().unwrap().keys() {
                assert!(format_hint(space).contains(&format!("\"{key}\"")), "{key}");
            }
        }
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
