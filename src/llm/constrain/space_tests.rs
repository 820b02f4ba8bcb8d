//! The grammars against what the layers below write for the LLM: the
//! search spaces' compact notation and JSON schemas
//! (`space::notation`), and the knowledge base's claim schema
//! (`knowledge::claim`). The arrows go from here down: those modules' own
//! tests do not use the grammars.

use super::{Grammar, RegexDfa};
use crate::knowledge::claim;
use crate::rng::Rng;
use crate::space::notation::{arch_pattern, arch_schema, to_llm};
use crate::space::{Arch, Space};
use serde_json::json;

/// DARTS-V2 in the compact notation.
const V2: &str = "normal: sep:0 sep:1 | sep:0 sep:1 | sep:1 skip:0 | skip:0 dil:2 ; reduce: max:0 max:1 | skip:2 max:1 | max:0 skip:2 | skip:2 max:1";

#[test]
fn the_compact_form_matches_its_pattern() {
    for space in Space::ALL {
        let one = RegexDfa::new(&arch_pattern(space, 1)).unwrap();
        let three = RegexDfa::new(&arch_pattern(space, 3)).unwrap();
        let mut rng = Rng::seed(3);
        for _ in 0..50 {
            let text = to_llm(&space.random(&mut rng));
            assert!(one.matches(&text), "{text}");
            let b = to_llm(&space.random(&mut rng));
            assert!(three.matches(&format!("{text}\n{b}\n{text}")));
            assert!(!three.matches(&format!("{text}\n{b}")));
        }
    }
    assert!(RegexDfa::new(&arch_pattern(Space::Darts, 1))
        .unwrap()
        .matches(V2));
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
fn schemas_compile_and_accept_the_spaces_own_architectures() {
    for space in Space::ALL {
        let g = Grammar::compile(&arch_schema(space)).unwrap();
        let mut rng = Rng::seed(3);
        for _ in 0..20 {
            let v = match &space.random(&mut rng) {
                Arch::Darts(g) => g.to_json(),
                Arch::Nb201(c) => {
                    let op = |k: usize| c.ops[k].name();
                    json!({"node1": [op(0)], "node2": [op(1), op(2)], "node3": [op(3), op(4), op(5)]})
                }
            };
            g.validate(&v).unwrap();
        }
    }
}

#[test]
fn out_of_range_inputs_are_rejected_by_the_schema() {
    let g = Grammar::compile(&arch_schema(Space::Darts)).unwrap();
    let mut v = Space::Darts.random(&mut Rng::seed(0)).to_json();
    v["normal"][0][1] = json!(2);
    assert!(g.validate(&v).is_err());
}

#[test]
fn claim_schemas_compile() {
    for s in Space::ALL {
        Grammar::compile(&claim::schema(s, 3)).unwrap();
    }
}
