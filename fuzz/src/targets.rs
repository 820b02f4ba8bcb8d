//! The fuzz targets: one per parser, each with its seed corpus, dictionary,
//! optional structured generator and the properties it checks.

use crate::mutate::{mutate, Rng};
use arbitrary::{Arbitrary, Unstructured};
use seki::config::Config;
use seki::space::{Arch, Space};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// How a parser took an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Parsed (and every property held).
    Accepted,
    /// Rejected with an error.
    Rejected,
}

fn verdict<T, E>(r: &Result<T, E>) -> Verdict {
    if r.is_ok() {
        Verdict::Accepted
    } else {
        Verdict::Rejected
    }
}

type Generator = fn(&mut Unstructured<'_>) -> arbitrary::Result<Vec<u8>>;
type Runner = Box<dyn Fn(&[u8]) -> Verdict + Send + Sync>;

/// One parser under test.
pub struct Target {
    /// Its name (`seki-fuzz --target NAME`).
    pub name: &'static str,
    /// What it parses.
    pub about: &'static str,
    /// The seed corpus.
    pub seeds: Vec<Vec<u8>>,
    /// Tokens the mutator inserts.
    pub dict: Vec<Vec<u8>>,
    /// Longest input.
    pub max_len: usize,
    /// Runs one input; panics on a broken property.
    pub run: Runner,
    generate: Option<Generator>,
    /// Cumulative seed weights (large seeds are picked rarely).
    cumulative: Vec<u64>,
}

impl Target {
    fn new(
        name: &'static str,
        about: &'static str,
        seeds: Vec<Vec<u8>>,
        dict: &[&str],
        max_len: usize,
        generate: Option<Generator>,
        run: Runner,
    ) -> Self {
        let mut total = 0u64;
        let cumulative = seeds
            .iter()
            .map(|s| {
                total += if s.len() > 256 * 1024 { 1 } else { 200 };
                total
            })
            .collect();
        Target {
            name,
            about,
            seeds,
            dict: dict.iter().map(|d| d.as_bytes().to_vec()).collect(),
            max_len,
            run,
            generate,
            cumulative,
        }
    }

    fn pick(&self, rng: &mut Rng) -> &[u8] {
        let Some(&total) = self.cumulative.last() else {
            return &[];
        };
        let x = rng.next_u64() % total;
        let i = self.cumulative.partition_point(|&c| c <= x);
        &self.seeds[i.min(self.seeds.len() - 1)]
    }

    /// The next input: a seed or a generated input, mutated (a seed is left
    /// as it is once in 32 times).
    pub fn input(&self, rng: &mut Rng, out: &mut Vec<u8>) {
        out.clear();
        if let (Some(g), true) = (self.generate, rng.one_in(6)) {
            let n = 64 + rng.below(1024);
            let raw = rng.bytes(n);
            let mut u = Unstructured::new(&raw);
            if let Ok(v) = g(&mut u) {
                out.extend_from_slice(&v);
                if rng.one_in(2) {
                    mutate(rng, out, &self.seeds, &self.dict, self.max_len);
                }
                out.truncate(self.max_len);
                return;
            }
        }
        out.extend_from_slice(self.pick(rng));
        if !rng.one_in(32) {
            mutate(rng, out, &self.seeds, &self.dict, self.max_len);
        }
    }
}

/// Text of an input (invalid UTF-8 replaced, as a file read lossily would be;
/// byte-exact readers get the bytes themselves).
fn text(b: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(b)
}

/// Lines of a JSON Lines file's `field` (strings only).
fn jsonl_field(path: &Path, field: &str) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get(field).and_then(|x| x.as_str()).map(str::to_string))
        .collect()
}

fn read(path: &Path) -> Option<Vec<u8>> {
    std::fs::read(path).ok()
}

const DARTS_V2: &str = "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])";

const NB201: &str =
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|";

const DARTS_OPS: [&str; 8] = [
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
];

const NB201_OPS: [&str; 5] = [
    "none",
    "skip_connect",
    "nor_conv_1x1",
    "nor_conv_3x3",
    "avg_pool_3x3",
];

const DARTS_DICT: &[&str] = &[
    "Genotype(",
    "normal=",
    "reduce=",
    "normal_concat=",
    "reduce_concat=",
    "range(2, 6)",
    "range(",
    "[2, 3, 4, 5]",
    "('sep_conv_3x3', 0)",
    "('skip_connect', 1), ",
    "'",
    "\"",
    "(",
    ")",
    "[",
    "]",
    ",",
    "=",
    "\"normal\"",
    "\"reduce\"",
    "[\"max_pool_3x3\", 1]",
    "none",
    "dil_conv_5x5",
    "sep_conv_5x5",
    "avg_pool_3x3",
    "-1",
    "99999999999999999999",
    "1.5",
    "é",
    "\u{1F980}",
    "\\u0000",
    "null",
    "{}",
];

const NB201_DICT: &[&str] = &[
    "|",
    "+",
    "~",
    "~0",
    "~1",
    "~2",
    "|+|",
    "none",
    "skip_connect",
    "nor_conv_1x1",
    "nor_conv_3x3",
    "avg_pool_3x3",
    "\"node1\"",
    "\"node2\"",
    "\"node3\"",
    "\"edges\"",
    "\"arch\"",
    "[",
    "]",
    "{",
    "}",
    ",",
    "\"",
    "-1",
    "é",
    "\u{1F980}",
    "```",
    "```json\n",
    "\n",
];

fn arch_round_trips(a: &Arch) {
    let space = a.space();
    let again = space
        .parse(&a.to_text())
        .unwrap_or_else(|e| panic!("{} does not re-parse: {e}", a.to_text()));
    assert_eq!(&again, a, "text form round trip");
    assert_eq!(again.hash(), a.hash(), "hash of the re-parsed form");
    if space == Space::Darts {
        let j = space
            .parse(&a.to_json().to_string())
            .unwrap_or_else(|e| panic!("JSON form does not re-parse: {e}"));
        assert_eq!(&j, a, "JSON form round trip");
    }
    let canon = a.canonical();
    assert!(!canon.is_empty());
}

fn gen_darts_text(u: &mut Unstructured<'_>) -> arbitrary::Result<Vec<u8>> {
    let mut cell = || -> arbitrary::Result<String> {
        let n = u.int_in_range(6..=9)?;
        let mut pairs = Vec::new();
        for i in 0..n {
            let op = u.choose(&DARTS_OPS)?;
            let node = i / 2 + 2;
            let input = if u.ratio(1, 10)? {
                i64::arbitrary(u)?
            } else {
                u.int_in_range(0..=(node as i64 - 1))?
            };
            pairs.push(format!("('{op}', {input})"));
        }
        Ok(pairs.join(", "))
    };
    let (n, r) = (cell()?, cell()?);
    let concat = *u.choose(&["range(2, 6)", "[2, 3, 4, 5]", "range(1, 6)", "[5, 4]"])?;
    Ok(format!(
        "Genotype(normal=[{n}], normal_concat={concat}, reduce=[{r}], reduce_concat={concat})"
    )
    .into_bytes())
}

fn gen_darts_json(u: &mut Unstructured<'_>) -> arbitrary::Result<Vec<u8>> {
    let mut cell = || -> arbitrary::Result<serde_json::Value> {
        let n = u.int_in_range(7..=9)?;
        let mut pairs = Vec::new();
        for i in 0..n {
            let op = if u.ratio(1, 12)? {
                serde_json::Value::from(i64::arbitrary(u)?)
            } else {
                serde_json::Value::from(*u.choose(&DARTS_OPS)?)
            };
            let input = if u.ratio(1, 12)? {
                serde_json::Value::from(f64::arbitrary(u)?)
            } else {
                serde_json::Value::from(u.int_in_range(0..=(i / 2 + 1) as i64)?)
            };
            pairs.push(serde_json::json!([op, input]));
        }
        Ok(serde_json::Value::Array(pairs))
    };
    let v = serde_json::json!({"normal": cell()?, "reduce": cell()?});
    Ok(v.to_string().into_bytes())
}

fn gen_nb201(u: &mut Unstructured<'_>) -> arbitrary::Result<Vec<u8>> {
    let mut s = String::new();
    for to in 1..=3 {
        if to > 1 {
            s.push('+');
        }
        s.push('|');
        for from in 0..to {
            let op = u.choose(&NB201_OPS)?;
            let idx = if u.ratio(1, 10)? {
                u32::arbitrary(u)? as usize
            } else {
                from
            };
            s.push_str(&format!("{op}~{idx}|"));
        }
    }
    Ok(s.into_bytes())
}

fn gen_nb201_json(u: &mut Unstructured<'_>) -> arbitrary::Result<Vec<u8>> {
    fn ops(u: &mut Unstructured<'_>, n: usize) -> arbitrary::Result<Vec<&'static str>> {
        (0..n).map(|_| u.choose(&NB201_OPS).copied()).collect()
    }
    let v = if u.ratio(1, 2)? {
        serde_json::json!({"node1": ops(u, 1)?, "node2": ops(u, 2)?, "node3": ops(u, 3)?})
    } else {
        let n = u.int_in_range(5..=7)?;
        serde_json::json!({"edges": ops(u, n)?})
    };
    Ok(v.to_string().into_bytes())
}

fn gen_reply(u: &mut Unstructured<'_>) -> arbitrary::Result<Vec<u8>> {
    let arch = if u.ratio(1, 2)? {
        gen_darts_text(u)?
    } else if u.ratio(1, 2)? {
        gen_darts_json(u)?
    } else {
        gen_nb201(u)?
    };
    let arch = String::from_utf8_lossy(&arch).into_owned();
    let prose = String::arbitrary(u)?;
    let form = u.int_in_range(0..=4)?;
    Ok(match form {
        0 => format!("{prose}\n```json\n{arch}\n```\n"),
        1 => format!("{prose} {arch} {prose}"),
        2 => format!("```\n{arch}"),
        3 => format!("{{\"arch\": {}}}", serde_json::Value::from(arch)),
        _ => arch,
    }
    .into_bytes())
}

fn gen_config(u: &mut Unstructured<'_>) -> arbitrary::Result<Vec<u8>> {
    const KEYS: &[(&str, &[&str])] = &[
        ("kb", &["dir", "skip_bad_lines"]),
        (
            "search",
            &[
                "space",
                "strategy",
                "evaluator",
                "seed",
                "max_evaluations",
                "max_seconds",
                "max_tokens",
                "max_cost_usd",
                "runs_dir",
                "kb_records",
                "max_consecutive_duplicates",
            ],
        ),
        ("strategy.rea", &["population", "sample"]),
        ("evaluator.nb201", &["table"]),
        (
            "evaluator.candle",
            &[
                "dataset",
                "data_dir",
                "epochs",
                "batch_size",
                "train_subset",
                "valid_size",
                "cells",
                "channels",
                "lr",
                "timeout_seconds",
                "device",
                "threads",
                "optimizer",
            ],
        ),
        (
            "agent",
            &[
                "top_k",
                "sample",
                "max_repairs",
                "temperature_evolution",
                "prompts_dir",
            ],
        ),
        ("llm", &["default_profile"]),
        (
            "llm.profiles.x",
            &[
                "kind",
                "model",
                "base_url",
                "api_key_env",
                "timeout_seconds",
                "max_retries",
                "json_mode",
                "requantize",
                "threads",
            ],
        ),
        ("bench", &["seeds", "budget"]),
    ];
    const VALUES: &[&str] = &[
        "0",
        "1",
        "-1",
        "7",
        "1e300",
        "-0.0",
        "nan",
        "inf",
        "true",
        "false",
        "\"darts\"",
        "\"nb201\"",
        "\"seki\"",
        "\"rea\"",
        "\"random\"",
        "\"candle\"",
        "\"gguf\"",
        "\"openai\"",
        "\"http://127.0.0.1:9/v1\"",
        "\"\"",
        "\"../x\"",
        "\"all\"",
        "\"none\"",
        "\"cuda\"",
        "\"auto\"",
        "[]",
        "{}",
        "18446744073709551615",
        "9223372036854775807",
        "\"q8_0\"",
        "\"json_object\"",
    ];
    let mut s = String::new();
    for _ in 0..u.int_in_range(1..=6)? {
        let (section, keys) = u.choose(KEYS)?;
        s.push_str(&format!("[{section}]\n"));
        for _ in 0..u.int_in_range(0..=4)? {
            let k = u.choose(keys)?;
            let v = if u.ratio(1, 8)? {
                format!("{}", i64::arbitrary(u)?)
            } else {
                u.choose(VALUES)?.to_string()
            };
            s.push_str(&format!("{k} = {v}\n"));
        }
    }
    Ok(s.into_bytes())
}

/// A random schema in (and around) the supported subset, then a newline and
/// an instance candidate.
fn gen_schema(u: &mut Unstructured<'_>) -> arbitrary::Result<Vec<u8>> {
    fn schema(u: &mut Unstructured<'_>, depth: u32) -> arbitrary::Result<serde_json::Value> {
        use serde_json::json;
        let kind = u.int_in_range(0..=if depth > 3 { 5 } else { 8 })?;
        Ok(match kind {
            0 => {
                json!({"type": "integer", "minimum": i64::arbitrary(u)? % 1000, "maximum": i64::arbitrary(u)?})
            }
            1 => json!({"type": "string", "maxLength": u.int_in_range(0..=20u64)?}),
            2 => json!({"type": "boolean"}),
            3 => json!({"type": "null"}),
            4 => {
                json!({"enum": [i64::arbitrary(u)?, String::arbitrary(u)?, null, [1, {"a": true}]]})
            }
            5 => json!({"const": String::arbitrary(u)?}),
            6 => {
                let n = u.int_in_range(0..=3)?;
                let mut props = serde_json::Map::new();
                let mut required = Vec::new();
                for i in 0..n {
                    let k = if u.ratio(1, 4)? {
                        String::arbitrary(u)?
                    } else {
                        format!("k{i}")
                    };
                    if u.ratio(1, 2)? {
                        required.push(serde_json::Value::from(k.clone()));
                    }
                    props.insert(k, schema(u, depth + 1)?);
                }
                json!({"type": "object", "properties": props, "required": required, "additionalProperties": false})
            }
            7 => {
                let n = u.int_in_range(0..=2)?;
                let prefix: Vec<serde_json::Value> = (0..n)
                    .map(|_| schema(u, depth + 1))
                    .collect::<Result<_, _>>()?;
                let mut v = json!({"type": "array", "prefixItems": prefix});
                if u.ratio(1, 2)? {
                    v["items"] = schema(u, depth + 1)?;
                }
                v["minItems"] = json!(u.int_in_range(0..=3u64)?);
                if u.ratio(1, 2)? {
                    v["maxItems"] = json!(u.int_in_range(0..=5u64)?);
                }
                v
            }
            _ => {
                json!({"type": "array", "items": schema(u, depth + 1)?, "maxItems": u64::arbitrary(u)?})
            }
        })
    }
    let s = schema(u, 0)?;
    let instance = if u.ratio(1, 2)? {
        String::arbitrary(u)?
    } else {
        let v: Vec<i64> = Vec::arbitrary(u)?;
        serde_json::to_string(&v).unwrap_or_default()
    };
    Ok(format!("{s}\n{instance}").into_bytes())
}

fn property_violation(what: &str) -> ! {
    panic!("property violated: {what}")
}

/// A reader over `data` that claims to be `len` bytes long (zeros past the
/// data), so a header cut from a large file reads as if the file were whole.
struct Sparse<'a> {
    data: &'a [u8],
    len: u64,
    pos: u64,
}

impl Read for Sparse<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.len {
            return Ok(0);
        }
        let n = (buf.len() as u64).min(self.len - self.pos) as usize;
        let start = usize::try_from(self.pos)
            .unwrap_or(usize::MAX)
            .min(self.data.len());
        let real = (self.data.len() - start).min(n);
        buf[..real].copy_from_slice(&self.data[start..start + real]);
        buf[real..n].fill(0);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Sparse<'_> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let p = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = p.ok_or(std::io::ErrorKind::InvalidInput)?;
        Ok(self.pos)
    }
}

fn run_gguf(b: &[u8]) -> Verdict {
    use seki::llm::local::{chat_template::ChatTemplate, gguf};
    let path = Path::new("fuzz.gguf");
    // The real header reads as the whole 100 MB model file (its tensors all
    // in bounds); half of the small inputs as followed by 64 KiB of tensor
    // data, the other half as exactly their bytes.
    let len = if b.len() > 256 * 1024 {
        (b.len() as u64).max(100 << 20)
    } else if crate::fingerprint(b).ends_with(['1', '3', '5', '7', '9']) {
        b.len() as u64 + (64 << 10)
    } else {
        b.len() as u64
    };
    let mut r = Sparse {
        data: b,
        len,
        pos: 0,
    };
    let Ok(content) = gguf::parse_header(&mut r, path) else {
        return Verdict::Rejected;
    };
    let arch = gguf::check_architecture(&content, path);
    let Ok(tok) = gguf::tokenizer(&content) else {
        return Verdict::Rejected;
    };
    for s in [
        "Hello, world! 123",
        "  {\"normal\": [[\"sep_conv_3x3\", 0]]}\n",
        "ü中🦀",
    ] {
        if let Ok(ids) = tok.encode(s, true) {
            let _ = tok.decode(&ids, false);
        }
    }
    let _ = tok.decode(&[0, 1, 2, u32::MAX], true);
    if let Some(t) = gguf::md_string(&content, "tokenizer.chat_template") {
        if let Ok(t) = ChatTemplate::new(&t, "gguf", "<s>", "</s>") {
            if t.probe().is_err() {
                return Verdict::Rejected;
            }
        } else {
            return Verdict::Rejected;
        }
    }
    verdict(&arch)
}

/// A fresh scratch folder for file-based targets (tmpfs when there is one).
fn scratch(name: &str) -> PathBuf {
    let base = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let d = base.join(format!("seki-fuzz-{}-{name}", std::process::id()));
    let _ = std::fs::create_dir_all(&d);
    d
}

fn gguf_seeds(root: &Path) -> Vec<Vec<u8>> {
    use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
    use candle_core::{Device, Tensor};
    let model = root.join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    let mut seeds = Vec::new();
    // The real header (and a few KiB of weights after it).
    let real = seki::llm::local::gguf::read_content(&model).ok();
    if let (Some(c), Ok(mut f)) = (&real, std::fs::File::open(&model)) {
        let n = c.tensor_data_offset + 4096;
        let mut buf = Vec::new();
        if f.by_ref().take(n).read_to_end(&mut buf).is_ok() {
            seeds.push(buf);
        }
    }
    // Small files written with candle's GGUF writer: the real metadata with
    // short vocabularies (or a made-up one), a few small tensors.
    let tokens: Vec<String> = match &real {
        Some(c) => c
            .metadata
            .get("tokenizer.ggml.tokens")
            .and_then(|v| v.to_vec().ok())
            .map(|a| {
                a.iter()
                    .take(300)
                    .filter_map(|v| v.to_string().ok().cloned())
                    .collect()
            })
            .unwrap_or_default(),
        None => Vec::new(),
    };
    let tokens: Vec<String> = if tokens.is_empty() {
        let mut t: Vec<String> = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        t.extend((b'!'..=b'~').map(|c| (c as char).to_string()));
        t.extend(
            ["Ġ", "Ġt", "he", "Ġthe", "in", "er"]
                .iter()
                .map(|s| s.to_string()),
        );
        t
    } else {
        tokens
    };
    let template = real
        .as_ref()
        .and_then(|c| seki::llm::local::gguf::md_string(c, "tokenizer.chat_template"))
        .unwrap_or_else(|| seki::llm::local::chat_template::CHATML.to_string());
    let s = |x: &str| gguf_file::Value::String(x.to_string());
    let arr_s = |xs: &[String]| gguf_file::Value::Array(xs.iter().map(|x| s(x)).collect());
    let t = |shape: (usize, usize), dtype| {
        Tensor::zeros(shape, candle_core::DType::F32, &Device::Cpu)
            .ok()
            .and_then(|x| QTensor::quantize(&x, dtype).ok())
    };
    for (arch, model_kind, with_template, align) in [
        ("llama", "gpt2", true, None),
        ("qwen2", "gpt2", false, Some(32u32)),
        ("gemma3", "llama", true, Some(64)),
        ("mamba", "gpt2", true, None),
        ("llama", "llama", false, None),
    ] {
        let merges: Vec<String> = vec!["Ġ t".into(), "h e".into(), "Ġt he".into(), "i n".into()];
        let mut md: Vec<(String, gguf_file::Value)> = vec![
            ("general.architecture".into(), s(arch)),
            ("general.name".into(), s("fuzz")),
            ("tokenizer.ggml.model".into(), s(model_kind)),
            ("tokenizer.ggml.pre".into(), s("smollm")),
            ("tokenizer.ggml.tokens".into(), arr_s(&tokens)),
            (
                "tokenizer.ggml.token_type".into(),
                gguf_file::Value::Array(
                    (0..tokens.len())
                        .map(|i| gguf_file::Value::I32(if i < 3 { 3 } else { 1 }))
                        .collect(),
                ),
            ),
            ("tokenizer.ggml.merges".into(), arr_s(&merges)),
            (
                "tokenizer.ggml.scores".into(),
                gguf_file::Value::Array(
                    (0..tokens.len())
                        .map(|i| gguf_file::Value::F32(-(i as f32)))
                        .collect(),
                ),
            ),
            (
                "tokenizer.ggml.bos_token_id".into(),
                gguf_file::Value::U32(1),
            ),
            (
                "tokenizer.ggml.eos_token_id".into(),
                gguf_file::Value::U32(2),
            ),
            (
                "tokenizer.ggml.add_bos_token".into(),
                gguf_file::Value::Bool(false),
            ),
            (
                format!("{arch}.context_length"),
                gguf_file::Value::U32(2048),
            ),
        ];
        if with_template {
            md.push(("tokenizer.chat_template".into(), s(&template)));
        }
        if let Some(a) = align {
            md.push(("general.alignment".into(), gguf_file::Value::U32(a)));
        }
        let tensors: Vec<(String, QTensor)> = [
            ("token_embd.weight", (4, 32), GgmlDType::Q8_0),
            ("output_norm.weight", (1, 32), GgmlDType::F32),
            ("blk.0.attn_q.weight", (2, 64), GgmlDType::Q4_1),
        ]
        .into_iter()
        .filter_map(|(n, shape, dt)| t(shape, dt).map(|q| (n.to_string(), q)))
        .collect();
        let m: Vec<(&str, &gguf_file::Value)> = md.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let ts: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let mut cur = std::io::Cursor::new(Vec::new());
        if gguf_file::write(&mut cur, &m, &ts).is_ok() {
            seeds.push(cur.into_inner());
        }
    }
    seeds
}

fn idx_seeds() -> Vec<Vec<u8>> {
    use seki::eval::candle::data::idx;
    let dir = Path::new("/usr/share/datasets/fashion-mnist");
    let mut seeds = Vec::new();
    let load = |name: &str| -> Option<Vec<u8>> {
        let p = dir.join(format!("{name}.gz"));
        let raw = std::fs::read(&p).ok()?;
        idx::gunzip_if_gz(&p, raw).ok()
    };
    // A pair as one input: 4-byte little-endian length of the image file,
    // the image file, the label file.
    let pair = |images: &[u8], labels: &[u8]| {
        let mut v = (images.len() as u32).to_le_bytes().to_vec();
        v.extend_from_slice(images);
        v.extend_from_slice(labels);
        v
    };
    let gz = |b: &[u8]| {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let _ = e.write_all(b);
        e.finish().unwrap_or_default()
    };
    if let (Some(images), Some(labels)) = (
        load("t10k-images-idx3-ubyte"),
        load("t10k-labels-idx1-ubyte"),
    ) {
        // The real files' headers with their first n items (counts patched).
        for n in [1usize, 3, 8] {
            if images.len() >= 16 + n * 784 && labels.len() >= 8 + n {
                let mut im = images[..16 + n * 784].to_vec();
                im[4..8].copy_from_slice(&(n as u32).to_be_bytes());
                let mut lb = labels[..8 + n].to_vec();
                lb[4..8].copy_from_slice(&(n as u32).to_be_bytes());
                seeds.push(pair(&im, &lb));
                if n == 3 {
                    seeds.push(pair(&gz(&im), &gz(&lb)));
                }
            }
        }
    }
    // Synthetic ones (also when the dataset is absent).
    let im = idx::encode(&[2, 4, 4], &[7u8; 32]);
    let lb = idx::encode(&[2], &[3, 9]);
    seeds.push(pair(&im, &lb));
    seeds.push(pair(&gz(&im), &lb));
    seeds
}

fn cifar_seeds() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for (label_bytes, labels) in [(1usize, [3u8, 9, 0]), (2, [12, 99, 0])] {
        let mut b = Vec::new();
        for (i, l) in labels.iter().enumerate() {
            if label_bytes == 2 {
                b.push(l / 5);
            }
            b.push(*l);
            b.extend((0..3072).map(|p| ((p * 7 + i * 13) % 256) as u8));
        }
        seeds.push(b);
    }
    seeds
}

fn schema_seeds(root: &Path) -> Vec<Vec<u8>> {
    use seki::space::notation::arch_schema;
    let mut seeds: Vec<Vec<u8>> = Vec::new();
    let darts = Space::Darts
        .parse(DARTS_V2)
        .map(|a| a.to_json().to_string())
        .unwrap_or_default();
    seeds.push(format!("{}\n{darts}", arch_schema(Space::Darts)).into_bytes());
    seeds.push(
        format!(
            "{}\n{{\"node1\":[\"none\"],\"node2\":[\"skip_connect\",\"none\"],\"node3\":[\"nor_conv_3x3\",\"none\",\"avg_pool_3x3\"]}}",
            arch_schema(Space::Nb201)
        )
        .into_bytes(),
    );
    for line in std::fs::read_to_string(root.join("fuzz/corpus/schemas.txt"))
        .unwrap_or_default()
        .split("\n\n")
    {
        if !line.trim().is_empty() {
            seeds.push(line.trim().as_bytes().to_vec());
        }
    }
    seeds
}

fn run_schema(b: &[u8]) -> Verdict {
    use seki::llm::constrain::{validate, Automaton, Grammar};
    let t = text(b);
    let (schema_text, instance) = t.split_once('\n').unwrap_or((&t, ""));
    let Ok(schema) = serde_json::from_str::<serde_json::Value>(schema_text) else {
        return Verdict::Rejected;
    };
    let Ok(g) = Grammar::compile(&schema) else {
        return Verdict::Rejected;
    };
    let _ = validate(&schema, instance);
    let a = Automaton::new(g.clone());
    let mut st = a.start();
    let mut ok = true;
    for &byte in instance.as_bytes() {
        if !a.step_in_place(&mut st, byte) {
            ok = false;
            break;
        }
        let _ = a.can_continue(&st);
    }
    if ok && a.is_complete(&st) {
        // What the automaton lets a model write must be JSON the schema's
        // validator accepts.
        let v: serde_json::Value = serde_json::from_str(instance).unwrap_or_else(|e| {
            property_violation(&format!(
                "automaton completed {instance:?}, which is not JSON: {e}"
            ))
        });
        if let Err(e) = g.validate(&v) {
            property_violation(&format!(
                "automaton completed {instance:?}, which the validator rejects: {e}"
            ));
        }
    }
    Verdict::Accepted
}

/// Every target, with seeds from the checkout at `root`.
pub fn targets(root: &Path) -> Vec<Target> {
    let kb_records: Vec<String> = jsonl_field(&root.join("knowledge/architectures.jsonl"), "arch");
    let darts: Vec<Arch> = kb_records
        .iter()
        .chain(std::iter::once(&DARTS_V2.to_string()))
        .filter_map(|t| Space::Darts.parse(t).ok())
        .collect();
    let replies: Vec<String> = jsonl_field(
        &root.join("tests/fixtures/seki-nb201-replies.jsonl"),
        "text",
    );
    let mut out = Vec::new();

    let mut text_seeds: Vec<Vec<u8>> = kb_records.iter().map(|s| s.as_bytes().to_vec()).collect();
    text_seeds.push(DARTS_V2.as_bytes().to_vec());
    out.push(Target::new(
        "darts-text",
        "DARTS Genotype(...) strings (Space::Darts.parse)",
        text_seeds,
        DARTS_DICT,
        4096,
        Some(gen_darts_text),
        Box::new(|b| {
            let r = Space::Darts.parse(&text(b));
            if let Ok(a) = &r {
                arch_round_trips(a);
            }
            verdict(&r)
        }),
    ));

    out.push(Target::new(
        "darts-json",
        "DARTS JSON form (Space::Darts.parse, arch_from_json)",
        darts
            .iter()
            .map(|a| a.to_json().to_string().into_bytes())
            .collect(),
        DARTS_DICT,
        4096,
        Some(gen_darts_json),
        Box::new(|b| {
            let t = text(b);
            let r = Space::Darts.parse(&t);
            if let Ok(a) = &r {
                arch_round_trips(a);
            }
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&t) {
                if let Ok(a) = seki::space::notation::arch_from_json(Space::Darts, &v) {
                    arch_round_trips(&a);
                }
            }
            verdict(&r)
        }),
    ));

    let mut nb_seeds: Vec<Vec<u8>> = vec![NB201.as_bytes().to_vec()];
    nb_seeds.extend(
        replies
            .iter()
            .filter(|r| r.starts_with('|'))
            .map(|r| r.as_bytes().to_vec()),
    );
    out.push(Target::new(
        "nb201-text",
        "NAS-Bench-201 |op~j|+... strings (Space::Nb201.parse)",
        nb_seeds,
        NB201_DICT,
        2048,
        Some(gen_nb201),
        Box::new(|b| {
            let r = Space::Nb201.parse(&text(b));
            if let Ok(a) = &r {
                arch_round_trips(a);
            }
            verdict(&r)
        }),
    ));

    let mut nbj: Vec<Vec<u8>> = replies
        .iter()
        .filter(|r| r.starts_with('{'))
        .map(|r| r.as_bytes().to_vec())
        .collect();
    nbj.push(
        br#"{"node1": ["nor_conv_3x3"], "node2": ["nor_conv_3x3", "avg_pool_3x3"], "node3": ["skip_connect", "nor_conv_3x3", "skip_connect"]}"#.to_vec(),
    );
    out.push(Target::new(
        "nb201-json",
        "NAS-Bench-201 JSON forms (arch_from_json)",
        nbj,
        NB201_DICT,
        2048,
        Some(gen_nb201_json),
        Box::new(|b| {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&text(b)) else {
                return Verdict::Rejected;
            };
            let r = seki::space::notation::arch_from_json(Space::Nb201, &v);
            if let Ok(a) = &r {
                arch_round_trips(a);
            }
            verdict(&r)
        }),
    ));

    let mut reply_seeds: Vec<Vec<u8>> = replies.iter().map(|r| r.as_bytes().to_vec()).collect();
    for a in darts.iter().take(3) {
        reply_seeds.push(
            format!(
                "Here is my design:\n```json\n{}\n```\nIt is deep.",
                a.to_json()
            )
            .into_bytes(),
        );
        reply_seeds.push(format!("I propose {} because it is wide.", a.to_text()).into_bytes());
    }
    let mut dict: Vec<&str> = DARTS_DICT.to_vec();
    dict.extend_from_slice(NB201_DICT);
    out.push(Target::new(
        "extract",
        "architectures in LLM replies (agent::extract), both spaces",
        reply_seeds,
        &dict,
        8192,
        Some(gen_reply),
        Box::new(|b| {
            let t = text(b);
            let mut any = false;
            for space in [Space::Darts, Space::Nb201] {
                if let Ok(a) = seki::agent::extract(space, &t) {
                    assert_eq!(a.space(), space, "extract returned another space");
                    arch_round_trips(&a);
                    any = true;
                }
            }
            if any {
                Verdict::Accepted
            } else {
                Verdict::Rejected
            }
        }),
    ));

    // The compact notation of prompts and replies, against the constraint
    // that decodes it: what the pattern accepts, the parser must read as
    // the same architecture, and every architecture's notation must match.
    let mut notation_seeds: Vec<Vec<u8>> = darts
        .iter()
        .map(|a| seki::space::notation::to_llm(a).into_bytes())
        .collect();
    let mut rng = seki::rng::Rng::seed(1);
    for _ in 0..8 {
        let a = seki::space::notation::to_llm(&Space::Nb201.random(&mut rng));
        let b = seki::space::notation::to_llm(&Space::Nb201.random(&mut rng));
        notation_seeds.push(a.clone().into_bytes());
        notation_seeds.push(format!("1. {a}\n2. {b}\n").into_bytes());
    }
    let patterns: Vec<(Space, seki::llm::constrain::RegexDfa)> = [Space::Darts, Space::Nb201]
        .into_iter()
        .filter_map(|s| {
            seki::llm::constrain::RegexDfa::new(&seki::space::notation::arch_pattern(s, 1))
                .ok()
                .map(|d| (s, d))
        })
        .collect();
    out.push(Target::new(
        "notation",
        "the compact notation (notation::parse_compact, extract_all) against its constraint's DFA",
        notation_seeds,
        &[
            "normal: ",
            " ; reduce: ",
            " | ",
            ":",
            "sep",
            "sep5",
            "dil",
            "dil5",
            "max",
            "avg",
            "skip",
            "none",
            "conv1",
            "conv3",
            "0",
            "1",
            "2",
            "3",
            "4",
            "5",
            "\n",
            ", ",
            "-",
        ],
        1024,
        None,
        Box::new(move |b| {
            let t = text(b);
            let mut any = false;
            for (space, dfa) in &patterns {
                let parsed = seki::space::notation::parse_compact(*space, &t);
                if let Ok(a) = &parsed {
                    arch_round_trips(a);
                    let again = seki::space::notation::to_llm(a);
                    // The DARTS pattern leaves out `none` on purpose (a
                    // derived cell never uses it, so the LLM is never
                    // offered it), while the parser reads it, as a
                    // knowledge base may hold such cells; every other
                    // architecture's notation is matched.
                    let offered = !(*space == Space::Darts && again.contains("none:"));
                    assert!(
                        !offered || dfa.matches(&again),
                        "{again} is not matched by its own pattern"
                    );
                    any = true;
                }
                if dfa.matches(&t) {
                    let a = parsed.unwrap_or_else(|e| {
                        panic!("the pattern accepts {t:?} but the parser does not: {e}")
                    });
                    assert_eq!(
                        seki::space::notation::to_llm(&a),
                        t,
                        "accepted text is canonical"
                    );
                }
                if let Ok(all) = seki::agent::extract_all(*space, &t) {
                    assert!(!all.is_empty());
                    all.iter().for_each(arch_round_trips);
                    any = true;
                }
            }
            if any {
                Verdict::Accepted
            } else {
                Verdict::Rejected
            }
        }),
    ));

    let mut cfg_seeds: Vec<Vec<u8>> = Vec::new();
    if let Some(c) = read(&root.join("config.toml")) {
        cfg_seeds.push(c);
    }
    cfg_seeds.push(b"[search]\nspace = \"nb201\"\nstrategy = \"seki\"\n[agent]\nmax_tokens_text = 48\n[llm.profiles.local]\nkind = \"gguf\"\nmodel = \"m.gguf\"\nthreads = 1\n".to_vec());
    cfg_seeds.push(b"[llm]\ndefault_profile = \"remote\"\n[llm.profiles.remote]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\nmodel = \"m\"\nheaders = { \"X-Team\" = \"nas\" }\napi_key_env = \"KEY\"\njson_mode = \"prompt\"\n".to_vec());
    out.push(Target::new(
        "config",
        "config.toml (Config::parse), and its snapshot re-parses to the same settings",
        cfg_seeds,
        &[
            "[search]",
            "[kb]",
            "[agent]",
            "[evaluator.candle]",
            "[llm.profiles.x]",
            "[strategy.rea]",
            " = ",
            "\"\"\"",
            "'''",
            "=",
            "\n",
            "#",
            "[[",
            "]]",
            "{",
            "}",
            "true",
            "nan",
            "inf",
            "1e400",
            "-",
            "0x10",
            "1979-05-27T07:32:00Z",
            "\\u0000",
            "\"\\\"",
            "kind = \"openai\"",
            "max_evaluations",
            "space = \"darts\"",
        ],
        32 * 1024,
        Some(gen_config),
        Box::new(|b| {
            let t = text(b);
            let r = Config::parse(&t, Some(Path::new("fuzz.toml")), Path::new("/base"));
            if let Ok(l) = &r {
                let snap = l.to_toml();
                let again =
                    Config::parse(&snap, None, Path::new("/elsewhere")).unwrap_or_else(|e| {
                        property_violation(&format!("the snapshot does not re-parse: {e}\n{snap}"))
                    });
                if again.config != l.config {
                    property_violation(&format!(
                        "the snapshot re-parses to other settings:\n{snap}"
                    ));
                }
            }
            verdict(&r)
        }),
    ));

    let journals: Vec<Vec<u8>> = ["journal-rea.jsonl", "journal-seki.jsonl"]
        .iter()
        .filter_map(|n| read(&root.join("fuzz/corpus").join(n)))
        .collect();
    let jdir = scratch("journal");
    out.push(Target::new(
        "journal",
        "session journals (record::journal::read)",
        journals,
        &[
            "{\"event\":\"start\"",
            "{\"event\":\"evaluation\"",
            "{\"event\":\"end\"",
            "\"event\":\"duplicate\"",
            "\"rng\"",
            "\"state\"",
            "\"strategy_state\"",
            "\"status\":\"failed\"",
            "\"n\":",
            "null",
            "\n",
            "}",
            "{",
            "\"elapsed\":",
            "1e400",
            "-1",
        ],
        256 * 1024,
        None,
        Box::new(move |b| {
            let p = jdir.join("journal.jsonl");
            if std::fs::write(&p, b).is_err() {
                return Verdict::Rejected;
            }
            verdict(&seki::record::journal::read(&p))
        }),
    ));

    let mut kb_seeds: Vec<Vec<u8>> = Vec::new();
    let arch_file = read(&root.join("knowledge/architectures.jsonl")).unwrap_or_default();
    let insights = read(&root.join("fuzz/corpus/insights.jsonl")).unwrap_or_default();
    let session_records = read(&root.join("fuzz/corpus/kb-session.jsonl")).unwrap_or_default();
    kb_seeds.push(arch_file.clone());
    let mut both = session_records.clone();
    both.extend_from_slice(KB_SPLIT);
    both.extend_from_slice(&insights);
    kb_seeds.push(both);
    let mut all = arch_file;
    all.extend_from_slice(&session_records);
    all.extend_from_slice(KB_SPLIT);
    all.extend_from_slice(&insights);
    kb_seeds.push(all);
    let kdir = scratch("kb");
    out.push(Target::new(
        "kb",
        "knowledge-base JSON Lines (KnowledgeBase::open): architectures and insights",
        kb_seeds,
        &[
            "{\"id\":",
            "\"space\":\"darts\"",
            "\"space\":\"nb201\"",
            "\"arch\":",
            "\"score\":",
            "\"metrics\":{",
            "\"evidence\":[",
            "\"status\":\"contradicted\"",
            "null",
            "\n",
            "1e400",
            "NaN",
            "-1",
            "\"provenance\":{}",
        ],
        256 * 1024,
        None,
        Box::new(move |b| run_kb(&kdir, b)),
    ));

    out.push(Target::new(
        "gguf",
        "GGUF headers: metadata, tensor table, tokenizer, chat template (llm::local::gguf)",
        gguf_seeds(root),
        &[
            "GGUF",
            "general.architecture",
            "general.alignment",
            "tokenizer.ggml.tokens",
            "tokenizer.ggml.merges",
            "tokenizer.ggml.model",
            "tokenizer.chat_template",
            "llama",
            "gpt2",
            "{{",
            "}}",
            "{%",
            "%}",
            "\u{0}\u{0}\u{0}\u{0}",
            "\u{8}\u{0}\u{0}\u{0}",
            "\u{9}\u{0}\u{0}\u{0}",
        ],
        4 << 20,
        None,
        Box::new(run_gguf),
    ));

    out.push(Target::new(
        "idx",
        "IDX image and label files, gzipped or not (eval::candle::data::idx)",
        idx_seeds(),
        &[
            "\u{0}\u{0}\u{8}\u{3}",
            "\u{0}\u{0}\u{8}\u{1}",
            "\u{1f}\u{8b}",
            "\u{ff}\u{ff}\u{ff}\u{ff}",
        ],
        64 * 1024,
        None,
        Box::new(|b| {
            use seki::eval::candle::data::idx;
            if b.len() < 4 {
                return Verdict::Rejected;
            }
            let n = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
            let rest = &b[4..];
            let (im, lb) = rest.split_at(n.min(rest.len()));
            let (pi, pl) = (Path::new("images"), Path::new("labels"));
            let (Ok(im), Ok(lb)) = (
                idx::gunzip_if_gz(pi, im.to_vec()),
                idx::gunzip_if_gz(pl, lb.to_vec()),
            ) else {
                return Verdict::Rejected;
            };
            verdict(&idx::decode_pair(pi, &im, pl, &lb))
        }),
    ));

    out.push(Target::new(
        "cifar",
        "CIFAR-10 and CIFAR-100 binary batches (eval::candle::data::cifar)",
        cifar_seeds(),
        &[
            "\u{0}",
            "\u{9}",
            "\u{63}",
            "\u{64}",
            "\u{ff}",
            "\u{1f}\u{8b}",
        ],
        64 * 1024,
        None,
        Box::new(|b| {
            use seki::eval::candle::data::{cifar, idx};
            let p = Path::new("batch.bin");
            let Ok(bytes) = idx::gunzip_if_gz(p, b.to_vec()) else {
                return Verdict::Rejected;
            };
            let a = cifar::decode(p, &bytes, 1, 10);
            let c = cifar::decode(p, &bytes, 2, 100);
            if a.is_ok() || c.is_ok() {
                Verdict::Accepted
            } else {
                Verdict::Rejected
            }
        }),
    ));

    out.push(Target::new(
        "schema",
        "the JSON-schema grammar compiler and its automaton (llm::constrain)",
        schema_seeds(root),
        &[
            "{\"type\":\"object\"",
            "{\"type\":\"array\"",
            "{\"type\":\"integer\"",
            "{\"type\":\"string\"",
            "\"properties\":{",
            "\"required\":[",
            "\"items\":",
            "\"prefixItems\":[",
            "\"minItems\":",
            "\"maxItems\":",
            "\"maxLength\":",
            "\"minimum\":",
            "\"maximum\":",
            "\"enum\":[",
            "\"const\":",
            "\"additionalProperties\":false",
            "-9223372036854775808",
            "9223372036854775807",
            "18446744073709551615",
            "\\u0000",
            "\\ud800",
            "null",
            "\n",
        ],
        8192,
        Some(gen_schema),
        Box::new(run_schema),
    ));
    out
}

/// Where the architectures file ends and the insights file begins in a
/// `kb` input.
const KB_SPLIT: &[u8] = b"\n=====insights=====\n";

fn run_kb(dir: &Path, b: &[u8]) -> Verdict {
    use seki::knowledge::{parse_export, KnowledgeBase, OpenOptions};
    let (arch, ins) = match b.windows(KB_SPLIT.len()).position(|w| w == KB_SPLIT) {
        Some(i) => (&b[..i], &b[i + KB_SPLIT.len()..]),
        None => (b, &b[..0]),
    };
    if std::fs::write(dir.join("architectures.jsonl"), arch).is_err()
        || std::fs::write(dir.join("insights.jsonl"), ins).is_err()
    {
        return Verdict::Rejected;
    }
    let mut accepted = false;
    for skip in [false, true] {
        let opts = OpenOptions {
            skip_bad_lines: skip,
            ..Default::default()
        };
        if let Ok(kb) = KnowledgeBase::open(dir, opts) {
            accepted = true;
            for space in [None, Some(Space::Darts), Some(Space::Nb201)] {
                for p in kb.protocols(space) {
                    let _ = kb.top_k(space, &p.key, "score", 5);
                    let _ = kb.pareto(space, &p.key, "params");
                }
                let _ = kb.insights_for(space);
            }
            for ins in kb.insights() {
                let _ = kb.evidence_stats(ins);
            }
            let doc = kb.export();
            if let Err(e) = parse_export(&doc) {
                property_violation(&format!("a loaded knowledge base does not re-import: {e}"));
            }
        }
    }
    if accepted {
        Verdict::Accepted
    } else {
        Verdict::Rejected
    }
}
