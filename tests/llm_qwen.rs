//! The in-process backend on the real Qwen2.5-Coder-0.5B-Instruct file
//! (Q4_K_M, qwen2 architecture; `scripts/setup.sh` assembles it into
//! `models/`): tokenizer ids against an independent reference, its chat
//! template, and constrained output of an architecture.

mod common;

use seki::llm::local::gguf;
use seki::llm::profile::{GgufProfile, Requantize};
use seki::llm::{constrain, ChatOptions, Constraint, FinishReason, LocalModel, Message};
use seki::space::notation::{arch_from_json, arch_schema};
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
    let m = LocalModel::load(
        "qwen",
        &GgufProfile {
            model: qwen_path(),
            threads: 2,
            requantize: Requantize::None,
            ..Default::default()
        },
    )
    .unwrap();
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
