//! The in-process backend on the real SmolLM2-135M-Instruct file
//! (`scripts/setup.sh` fetches it into `models/`): tokenizer, chat,
//! constrained decoding of both search spaces' architectures, seeds, and
//! clear errors for broken setups.

mod common;

use seki::llm::profile::{GgufProfile, Requantize};
use seki::llm::{constrain, ChatOptions, Constraint, FinishReason, LocalModel, Message};
use seki::space::notation::{arch_from_json, arch_schema};
use seki::space::Space;
use std::path::PathBuf;
use std::sync::OnceLock;

fn model_path() -> PathBuf {
    let p = common::root().join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        p.is_file(),
        "the default model is missing at {}; fetch it with: scripts/setup.sh",
        p.display()
    );
    p
}

/// The model, loaded once for the whole file (re-quantized to Q8_0, cached
/// beside the model). One thread: the tests run beside each other and
/// beside other processes, and Candle's spinning workers slow each other
/// down badly when the cores are oversubscribed.
fn model() -> &'static LocalModel {
    static M: OnceLock<LocalModel> = OnceLock::new();
    M.get_or_init(|| {
        let p = GgufProfile {
            model: model_path(),
            threads: 1,
            ..Default::default()
        };
        LocalModel::load("local", &p).unwrap()
    })
}

#[test]
fn tokenizer_matches_smollm2_and_round_trips() {
    let t = model().tokenizer();
    // "Hello" is one token, without a space prefix; digits split one by one.
    let ids = t.encode("Hello", false).unwrap();
    assert_eq!(ids.len(), 1);
    assert_eq!(t.token(ids[0]), Some("Hello"));
    let ids = t.encode(" world 2024", false).unwrap();
    let toks: Vec<&str> = ids.iter().map(|&i| t.token(i).unwrap()).collect();
    assert_eq!(toks, vec!["Ġworld", "Ġ", "2", "0", "2", "4"]);
    for s in [
        "plain ASCII, with punctuation: (a+b)*c; it's done!",
        "  leading and trailing  \t\n\n  whitespace \r\n",
        "0123456789 3.14159 1e-10",
        "中文字符 日本語 한국어",
        "emoji 🦀🎉👍🏽 and ZWJ 👨‍👩‍👧",
        "{\"normal\": [[\"sep_conv_3x3\", 0]]}",
    ] {
        let ids = t.encode(s, false).unwrap();
        assert_eq!(t.decode(&ids, false), s, "{s:?}");
    }
    // Token ids as Hugging Face `tokenizers` gives them for SmolLM2's
    // tokenizer (BPE over the same vocabulary and merges, pre-tokenizer
    // Digits(individual) + ByteLevel(no prefix space)).
    for (s, want) in [
        (
            "it's I'll we've they're don't",
            vec![269, 506, 339, 3060, 392, 3543, 502, 2316, 1326, 982],
        ),
        (
            "  multiple   spaces\t\ttabs\n\nnewlines \n",
            vec![
                216, 2701, 256, 5600, 197, 197, 100, 7366, 198, 198, 2241, 5110, 3717,
            ],
        ),
        (
            "12345 3.14 1,000,000 x2y3",
            vec![
                33, 34, 35, 36, 37, 216, 35, 30, 33, 36, 216, 33, 28, 32, 32, 32, 28, 32, 32, 32,
                1792, 34, 105, 35,
            ],
        ),
        ("a\u{a0}b\u{2003}c", vec![81, 15442, 82, 321, 221, 83]),
    ] {
        assert_eq!(t.encode(s, false).unwrap(), want, "{s:?}");
    }
    // Special tokens are single tokens when parsed, and plain text when not.
    let ids = t.encode("<|im_start|>user\nhi<|im_end|>", true).unwrap();
    assert_eq!(t.token(ids[0]), Some("<|im_start|>"));
    assert_eq!(t.token(*ids.last().unwrap()), Some("<|im_end|>"));
    assert!(t.encode("<|im_start|>", false).unwrap().len() > 1);
    assert_eq!(t.decode(&ids, true), "user\nhi");
}

#[test]
fn the_chat_template_comes_from_the_file() {
    let s = model()
        .render(&[Message::system("S"), Message::user("Q")])
        .unwrap();
    assert_eq!(
        s,
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n"
    );
}

#[tokio::test]
async fn answers_a_chat_prompt() {
    use seki::llm::ChatModel;
    let r = model()
        .chat(
            &[Message::user("What is the capital of France?")],
            &ChatOptions {
                temperature: 0.0,
                max_tokens: 12,
                seed: Some(1),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(!r.text.trim().is_empty());
    assert!(r.usage.prompt_tokens > 10 && r.usage.completion_tokens >= 1);
    assert!(r.usage.completion_tokens <= 12);
    assert!(r.text.contains("Paris"), "{}", r.text);
}

fn propose(space: Space, seed: u64) -> (String, FinishReason) {
    let d = space.describe();
    let (r, _) = model()
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
                temperature: 0.9,
                max_tokens: 300,
                seed: Some(seed),
                constraint: Some(Constraint::JsonSchema(arch_schema(space))),
                ..Default::default()
            },
        )
        .unwrap();
    (r.text, r.finish)
}

#[test]
fn constrained_decoding_always_gives_valid_architectures() {
    for space in Space::ALL {
        for seed in 0..3 {
            let (text, finish) = propose(space, seed);
            assert_eq!(finish, FinishReason::ConstraintComplete, "{text}");
            let v = constrain::validate(&arch_schema(space), &text)
                .unwrap_or_else(|e| panic!("{space} seed {seed}: {e}: {text}"));
            arch_from_json(space, &v).unwrap_or_else(|e| panic!("{space} seed {seed}: {e}"));
        }
    }
}

#[test]
fn seeds_reproduce() {
    let a = propose(Space::Nb201, 11);
    let b = propose(Space::Nb201, 11);
    assert_eq!(a, b);
    let others: Vec<_> = (12..15).map(|s| propose(Space::Nb201, s).0).collect();
    assert!(others.iter().any(|o| *o != a.0), "{others:?}");
}

#[test]
fn requantized_copy_is_cached_and_the_original_loads_too() {
    let _ = model();
    let cached = common::root().join("models/SmolLM2-135M-Instruct.Q4_1.q8_0.gguf");
    assert!(cached.is_file());
    let p = GgufProfile {
        model: model_path(),
        requantize: Requantize::None,
        threads: 1,
        ..Default::default()
    };
    let m = LocalModel::load("raw", &p).unwrap();
    let t = m.bench(8, 2).unwrap();
    assert_eq!((t.prompt_tokens, t.generated_tokens), (8, 2));
}

#[test]
fn broken_setups_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("corrupt.gguf");
    std::fs::write(&bad, b"GGUF\x03\x00\x00\x00garbage that is not a header").unwrap();
    let load_error = |model: std::path::PathBuf| {
        let profile = GgufProfile {
            model,
            ..Default::default()
        };
        LocalModel::load("x", &profile).unwrap_err().to_string()
    };
    let e = load_error(bad.clone());
    assert!(
        e.contains("corrupt.gguf") && e.contains("not a readable GGUF"),
        "{e}"
    );

    let e = load_error(dir.path().join("models/SmolLM2-135M-Instruct.Q4_1.gguf"));
    assert!(
        e.contains("is missing") && e.contains("scripts/setup.sh"),
        "{e}"
    );

    // Through the CLI: the default profile of a config in an empty folder.
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "").unwrap();
    let err = common::fails(
        std::process::Command::new(env!("CARGO_BIN_EXE_seki"))
            .arg("--config")
            .arg(&cfg)
            .args(["llm", "chat", "hi"]),
    );
    assert!(err.contains("fetch it with: scripts/setup.sh"), "{err}");
    std::fs::write(
        &cfg,
        format!(
            "[llm.profiles.local]\nkind = \"gguf\"\nmodel = \"{}\"\n",
            bad.display()
        ),
    )
    .unwrap();
    let err = common::fails(
        std::process::Command::new(env!("CARGO_BIN_EXE_seki"))
            .arg("--config")
            .arg(&cfg)
            .args(["llm", "chat", "hi"]),
    );
    assert!(err.contains("not a readable GGUF"), "{err}");
}

#[test]
fn cli_chat_with_schema_and_bench_json() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "[llm.profiles.local]\nkind = \"gguf\"\nmodel = \"{}\"\nthreads = 1\n",
            model_path().display()
        ),
    )
    .unwrap();
    let schema = dir.path().join("nb201.json");
    std::fs::write(&schema, arch_schema(Space::Nb201).to_string()).unwrap();
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_seki"));
    c.arg("--config")
        .arg(&cfg)
        .args([
            "llm",
            "chat",
            "Propose a NAS-Bench-201 cell.",
            "--seed",
            "3",
            "--schema",
        ])
        .arg(&schema);
    let (ok, out, err) = common::run(&mut c);
    assert!(ok, "{err}");
    let v = constrain::validate(&arch_schema(Space::Nb201), &out).unwrap();
    arch_from_json(Space::Nb201, &v).unwrap();
    assert!(
        err.contains("usage:") && err.contains("ConstraintComplete"),
        "{err}"
    );

    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_seki"));
    c.arg("--config").arg(&cfg).args([
        "llm",
        "bench",
        "--json",
        "--prompt-tokens",
        "16",
        "--tokens",
        "4",
    ]);
    let out = common::ok(&mut c);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["prompt_tokens_per_s"].as_f64().unwrap() > 0.0);
    assert!(v["generation_tokens_per_s"].as_f64().unwrap() > 0.0);
    assert_eq!(v["generated_tokens"], 4);
}

/// A profile naming a Hugging Face Hub repository and file: resolved from the
/// Hub's usual cache (`HF_HOME`) without any network when the file is there;
/// a clear error naming repository, file and endpoint when it cannot be fetched.
#[test]
fn hub_models_come_from_the_usual_cache_or_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("hf");
    let repo_dir = home.join("hub/models--HuggingFaceTB--SmolLM2-135M-Instruct-GGUF");
    std::fs::create_dir_all(repo_dir.join("refs")).unwrap();
    std::fs::create_dir_all(repo_dir.join("snapshots/0123abcd")).unwrap();
    std::fs::write(repo_dir.join("refs/main"), "0123abcd").unwrap();
    std::os::unix::fs::symlink(
        model_path(),
        repo_dir.join("snapshots/0123abcd/smollm2-135m.gguf"),
    )
    .unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        "[llm.profiles.hub]\nkind = \"gguf\"\nmodel = \"not-here.gguf\"\nhf_repo = \"HuggingFaceTB/SmolLM2-135M-Instruct-GGUF\"\nhf_file = \"smollm2-135m.gguf\"\nrequantize = \"none\"\nthreads = 1\n\
         [llm.profiles.absent]\nkind = \"gguf\"\nmodel = \"not-here.gguf\"\nhf_repo = \"HuggingFaceTB/SmolLM2-135M-Instruct-GGUF\"\nhf_file = \"other.gguf\"\n\
         [llm.profiles.half]\nkind = \"gguf\"\nmodel = \"not-here.gguf\"\nhf_repo = \"HuggingFaceTB/SmolLM2-135M-Instruct-GGUF\"\n",
    )
    .unwrap();
    let chat = |profile: &str| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_seki"));
        c.arg("--config")
            .arg(&cfg)
            .args([
                "llm",
                "chat",
                "Say hello.",
                "--llm",
                profile,
                "--max-tokens",
                "4",
                "--seed",
                "1",
            ])
            .env("HF_HOME", &home)
            .env("HF_ENDPOINT", "http://127.0.0.1:9");
        common::run(&mut c)
    };
    let (ok, out, err) = chat("hub");
    assert!(ok, "{err}");
    assert!(!out.trim().is_empty());
    let (ok, _, err) = chat("absent");
    assert!(!ok);
    assert!(
        err.contains("cannot download other.gguf from the Hugging Face Hub repository HuggingFaceTB/SmolLM2-135M-Instruct-GGUF (http://127.0.0.1:9)"),
        "{err}"
    );
    let (ok, _, err) = chat("half");
    assert!(!ok);
    assert!(err.contains("hf_repo and hf_file go together"), "{err}");
}

/// A copy of the model's header in `dir/name`, passed through `patch`, then
/// extended (sparsely, with zeros) to the model's full length: the header
/// checks see a whole file without 100 MB being written.
fn header_copy(
    dir: &std::path::Path,
    name: &str,
    len: Option<u64>,
    patch: impl Fn(&mut Vec<u8>),
) -> PathBuf {
    let src = model_path();
    let header = seki::llm::local::gguf::read_content(&src)
        .unwrap()
        .tensor_data_offset;
    let mut bytes = std::fs::read(&src).unwrap();
    let full = bytes.len() as u64;
    bytes.truncate(header as usize);
    patch(&mut bytes);
    let p = dir.join(name);
    std::fs::write(&p, &bytes).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(len.unwrap_or(full))
        .unwrap();
    p
}

/// Replace the string value of metadata `key` (same length, padded with spaces).
fn patch_string(bytes: &mut [u8], key: &str, value: &str) {
    let at = bytes
        .windows(key.len())
        .position(|w| w == key.as_bytes())
        .unwrap_or_else(|| panic!("{key} not in the header"))
        + key.len();
    assert_eq!(&bytes[at..at + 4], &8u32.to_le_bytes(), "{key} is a string");
    let len = u64::from_le_bytes(bytes[at + 4..at + 12].try_into().unwrap()) as usize;
    assert!(
        value.len() <= len,
        "{value:?} longer than the {len} bytes of {key}"
    );
    let start = at + 12;
    bytes[start..start + len].fill(b' ');
    bytes[start..start + value.len()].copy_from_slice(value.as_bytes());
}

/// A truncated or corrupt GGUF, an unsupported architecture and a chat
/// template that cannot render are clear errors naming the file, raised
/// when the model loads: before a session's run directory exists, and
/// before any re-quantized copy is written.
#[test]
fn broken_model_files_fail_at_load_before_the_session_starts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let full = std::fs::metadata(model_path()).unwrap().len();
    let cases: Vec<(PathBuf, Vec<&str>)> = vec![
        (
            header_copy(d, "truncated.gguf", Some(full / 2), |_| {}),
            vec![
                "truncated.gguf is truncated",
                "tensor '",
                "an interrupted download",
            ],
        ),
        (
            header_copy(d, "short.gguf", Some(1000), |_| {}),
            vec!["short.gguf is not a readable GGUF model file"],
        ),
        (
            header_copy(d, "magic.gguf", None, |b| b[..4].copy_from_slice(b"GGML")),
            vec!["magic.gguf is not a readable GGUF model file", "magic"],
        ),
        (
            header_copy(d, "mamba.gguf", None, |b| {
                patch_string(b, "general.architecture", "mamba")
            }),
            vec![
                "mamba.gguf: unsupported architecture 'mamba'",
                "supported: llama",
            ],
        ),
        (
            header_copy(d, "template.gguf", None, |b| {
                patch_string(
                    b,
                    "tokenizer.chat_template",
                    "{{ raise_exception('System role not supported') }}",
                )
            }),
            vec!["template.gguf: chat template", "System role not supported"],
        ),
        (
            header_copy(d, "loop.gguf", None, |b| {
                patch_string(
                    b,
                    "tokenizer.chat_template",
                    "{% for a in range(10000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}",
                )
            }),
            vec!["loop.gguf: chat template", "fuel"],
        ),
    ];
    for (model, wants) in cases {
        let cfg = d.join("c.toml");
        std::fs::write(
            &cfg,
            format!(
                "[evaluator.nb201]\ntable = \"{}\"\n[search]\nspace = \"nb201\"\nstrategy = \"seki\"\nkb_records = \"none\"\n[llm.profiles.local]\nkind = \"gguf\"\nmodel = \"{}\"\nthreads = 1\n",
                common::table().display(),
                model.display()
            ),
        )
        .unwrap();
        let run = d.join("run");
        let err = common::fails(
            std::process::Command::new(env!("CARGO_BIN_EXE_seki"))
                .current_dir(d)
                .arg("--config")
                .arg(&cfg)
                .args(["search", "--budget", "2", "--run-dir"])
                .arg(&run),
        );
        for w in wants {
            assert!(
                err.contains(w),
                "{}: wanted {w:?} in:\n{err}",
                model.display()
            );
        }
        assert!(
            !run.exists(),
            "{}: a run directory was made",
            model.display()
        );
        let cache = seki::llm::local::requant::cache_path(&model, None);
        assert!(!cache.exists(), "{}: re-quantized anyway", model.display());
    }
}
