//! The in-process backend on the real Qwen2.5-Coder-0.5B-Instruct file
//! (Q4_K_M, qwen2 architecture; `scripts/setup.sh` assembles it into
//! `models/`): tokenizer ids against an independent reference, its chat
//! template, and constrained output of an architecture.

mod common;

use seki::llm::local::gguf;
use seki::llm::profile::{GgufProfile, Requantize};
use seki::llm::{constrain, ChatOptions, Constraint, FinishReason, LocalModel, Message};
use seki::space::notation::{arch_from_json, arch_pattern, arch_schema, parse_compact, to_llm};
use seki::space::Space;
use std::path::PathBuf;

fn qwen_path() -> PathBuf {
    let p = common::root().join("models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf");
    assert!(
        p.is_file(),
        "the Qwen model is missing at {}; assemble it with: scripts/setup.sh",
        p.display()
    );
    p
}

/// The model as shipped, on 2 threads.
fn qwen() -> LocalModel {
    LocalModel::load(
        "qwen",
        &GgufProfile {
            model: qwen_path(),
            threads: 2,
            requantize: Requantize::None,
            ..Default::default()
        },
    )
    .unwrap()
}

/// Token ids from `bench/tokenizer_reference.py` (transformers' own mapping
/// of a GGUF tokenizer onto the Hugging Face `tokenizers` library, run on the
/// same file): not computed by any of seki's code.
const REFERENCE: &[(&str, &[u32])] = &[
    (
        "it's I'll we've they're don't",
        &[275, 594, 358, 3278, 582, 3003, 807, 2299, 1513, 944],
    ),
    (
        "  multiple   spaces\t\ttabs\n\nnewlines \n",
        &[220, 5248, 256, 12621, 197, 3244, 3435, 271, 931, 7969, 715],
    ),
    (
        "12345 3.14 1,000,000 x2y3",
        &[
            16, 17, 18, 19, 20, 220, 18, 13, 16, 19, 220, 16, 11, 15, 15, 15, 11, 15, 15, 15, 856,
            17, 88, 18,
        ],
    ),
    ("a\u{a0}b\u{2003}c", &[64, 4102, 65, 378, 225, 66]),
    (
        "Genotype(normal=[('sep_conv_3x3', 0)])",
        &[
            9967, 4156, 52080, 5818, 492, 28036, 22716, 62, 18, 87, 18, 516, 220, 15, 46605,
        ],
    ),
    (
        r#"{"node1": ["nor_conv_3x3"], "node2": ["none", "skip_connect"]}"#,
        &[
            4913, 3509, 16, 788, 4383, 44707, 22716, 62, 18, 87, 18, 7914, 330, 3509, 17, 788,
            4383, 6697, 497, 330, 20599, 15720, 92446,
        ],
    ),
    (
        "normal: sep:0 sep:1 | sep:0 sep:1 | sep:1 skip:0 | skip:0 dil:2 ; reduce: max:0 max:1 | skip:2 max:1 | max:0 skip:2 | skip:2 max:1",
        &[
            8252, 25, 21017, 25, 15, 21017, 25, 16, 760, 21017, 25, 15, 21017, 25, 16, 760, 21017,
            25, 16, 10706, 25, 15, 760, 10706, 25, 15, 18840, 25, 17, 2587, 7949, 25, 1932, 25, 15,
            1932, 25, 16, 760, 10706, 25, 17, 1932, 25, 16, 760, 1932, 25, 15, 10706, 25, 17, 760,
            10706, 25, 17, 1932, 25, 16,
        ],
    ),
    (
        "conv3 | conv1 skip | avg conv3 none",
        &[12027, 18, 760, 5686, 16, 10706, 760, 19712, 5686, 18, 6857],
    ),
    (
        "日本語のテキスト 🦀",
        &[101059, 102819, 15767, 56833, 61803, 70534, 11162, 99, 222],
    ),
];

#[test]
fn qwen_tokenizer_matches_the_reference_ids() {
    let content = gguf::read_content(&qwen_path()).unwrap();
    assert_eq!(
        gguf::md_string(&content, "tokenizer.ggml.pre").as_deref(),
        Some("qwen2")
    );
    let t = gguf::tokenizer(&content).unwrap();
    for (text, want) in REFERENCE {
        let ids = t.encode(text, false).unwrap();
        assert_eq!(ids, *want, "{text:?}");
        assert_eq!(t.decode(&ids, false), *text);
    }
    let ids = t.encode("<|im_start|>user\nhi<|im_end|>", true).unwrap();
    assert_eq!(t.token(ids[0]), Some("<|im_start|>"));
    assert_eq!(t.token(*ids.last().unwrap()), Some("<|im_end|>"));
}

#[test]
fn qwen_chats_in_its_template_and_writes_a_valid_cell() {
    let m = qwen();
    let prompt = m
        .render(&[Message::system("s"), Message::user("u")])
        .unwrap();
    assert!(
        prompt.contains("<|im_start|>system\ns<|im_end|>")
            && prompt.contains("<|im_start|>user\nu<|im_end|>")
            && prompt.ends_with("<|im_start|>assistant\n"),
        "{prompt}"
    );
    let space = Space::Nb201;
    let d = space.describe();
    let (r, _) = m
        .generate(
            &[
                Message::system("You design neural network cells. Reply with JSON only."),
                Message::user(format!(
                    "Search space {}. Ops: {}. Rules: {}\nPropose one architecture.",
                    d.name,
                    d.ops.join(", "),
                    d.rules
                )),
            ],
            &ChatOptions {
                temperature: 0.7,
                max_tokens: 80,
                seed: Some(1),
                constraint: Some(Constraint::JsonSchema(arch_schema(space))),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(r.finish, FinishReason::ConstraintComplete, "{}", r.text);
    let v = constrain::validate(&arch_schema(space), &r.text).unwrap();
    arch_from_json(space, &v).unwrap();
}

#[test]
fn the_compact_notation_is_short_in_qwen_tokens() {
    let content = gguf::read_content(&qwen_path()).unwrap();
    let t = gguf::tokenizer(&content).unwrap();
    let mut rng = seki::rng::Rng::seed(11);
    for (space, limit) in [(Space::Darts, 80), (Space::Nb201, 30)] {
        let mut longest = 0;
        for _ in 0..200 {
            let text = to_llm(&space.random(&mut rng));
            longest = longest.max(t.encode(&text, false).unwrap().len());
        }
        // The longest of 200 random architectures (5x5 ops cost a token more).
        assert!(longest < limit, "{space:?}: {longest} tokens");
        eprintln!("{space:?}: longest of 200 random architectures {longest} tokens");
    }
}

#[test]
fn qwen_writes_a_valid_cell_in_the_compact_notation() {
    let m = qwen();
    let space = Space::Nb201;
    let pattern = arch_pattern(space, 2);
    let (r, _) = m
        .generate(
            &[
                Message::system("You design neural network cells."),
                Message::user(format!(
                    "Ops: {}. Write two NAS-Bench-201 cells, one per line, each as {}.",
                    seki::space::notation::op_legend(space).join(", "),
                    seki::space::notation::format_hint(space)
                )),
            ],
            &ChatOptions {
                temperature: 0.7,
                max_tokens: 40,
                seed: Some(2),
                constraint: Some(Constraint::Regex(pattern.clone())),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(r.finish, FinishReason::ConstraintComplete, "{}", r.text);
    constrain::check(&Constraint::Regex(pattern), &r.text).unwrap();
    let lines: Vec<&str> = r.text.lines().collect();
    assert_eq!(lines.len(), 2, "{}", r.text);
    for l in lines {
        parse_compact(space, l).unwrap();
    }
}
