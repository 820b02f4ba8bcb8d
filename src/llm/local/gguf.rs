//! Reading a GGUF file: its metadata (architecture, tokenizer, chat
//! template) and its weights, as one of candle-transformers' quantized
//! models (llama family, Qwen2/2.5, Qwen3, Gemma 3).

use super::tokenizer::{Tokenizer, Vocab};
use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candle_transformers::models::{
    quantized_gemma3, quantized_llama, quantized_qwen2, quantized_qwen3,
};
use std::path::Path;

/// The weights of a supported architecture.
pub enum Weights {
    /// `llama` (SmolLM2, Llama 2/3.x, Mistral-style).
    Llama(quantized_llama::ModelWeights),
    /// `qwen2` (Qwen2, Qwen2.5).
    Qwen2(quantized_qwen2::ModelWeights),
    /// `qwen3`.
    Qwen3(quantized_qwen3::ModelWeights),
    /// `gemma3` (and gemma/gemma2 files with the same layout).
    Gemma3(quantized_gemma3::ModelWeights),
}

impl std::fmt::Debug for Weights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Weights::Llama(_) => "Weights::Llama",
            Weights::Qwen2(_) => "Weights::Qwen2",
            Weights::Qwen3(_) => "Weights::Qwen3",
            Weights::Gemma3(_) => "Weights::Gemma3",
        })
    }
}

impl Weights {
    /// Logits of the last position of `tokens` (a `(1, n)` tensor) placed at `pos`.
    pub fn forward(&mut self, x: &Tensor, pos: usize) -> candle_core::Result<Tensor> {
        match self {
            Weights::Llama(m) => m.forward(x, pos),
            Weights::Qwen2(m) => m.forward(x, pos),
            Weights::Qwen3(m) => m.forward(x, pos),
            Weights::Gemma3(m) => m.forward(x, pos),
        }
    }

    /// Forget the attention cache (a new conversation).
    pub fn clear(&mut self) {
        match self {
            Weights::Llama(m) => m.clear_kv_cache(),
            Weights::Qwen2(m) => m.clear_kv_cache(),
            Weights::Qwen3(m) => m.clear_kv_cache(),
            // Gemma 3 restarts its cache when a forward pass starts at position 0.
            Weights::Gemma3(_) => {}
        }
    }

    /// Longest sequence the implementation supports.
    pub fn max_positions(&self) -> usize {
        match self {
            Weights::Llama(_) => quantized_llama::MAX_SEQ_LEN,
            _ => 32_768,
        }
    }
}

/// Read a GGUF header, with an error that says what is wrong with the file.
pub fn read_content(path: &Path) -> Result<gguf_file::Content, String> {
    let mut f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    gguf_file::Content::read(&mut f).map_err(|e| {
        format!(
            "{} is not a readable GGUF model file (corrupt or truncated?): {e}",
            path.display()
        )
    })
}

/// A metadata string.
pub fn md_string(c: &gguf_file::Content, key: &str) -> Option<String> {
    c.metadata
        .get(key)
        .and_then(|v| v.to_string().ok())
        .cloned()
}

fn md_u32(c: &gguf_file::Content, key: &str) -> Option<u32> {
    c.metadata.get(key).and_then(|v| match v {
        gguf_file::Value::U32(x) => Some(*x),
        gguf_file::Value::I32(x) => u32::try_from(*x).ok(),
        gguf_file::Value::U64(x) => u32::try_from(*x).ok(),
        gguf_file::Value::I64(x) => u32::try_from(*x).ok(),
        _ => None,
    })
}

fn md_bool(c: &gguf_file::Content, key: &str) -> Option<bool> {
    c.metadata.get(key).and_then(|v| v.to_bool().ok())
}

/// Build the tokenizer from `tokenizer.ggml.*`.
pub fn tokenizer(c: &gguf_file::Content) -> Result<Tokenizer, String> {
    let arr = |key: &str| -> Option<&Vec<gguf_file::Value>> {
        c.metadata.get(key).and_then(|v| v.to_vec().ok())
    };
    let tokens: Vec<String> = arr("tokenizer.ggml.tokens")
        .ok_or("the file has no tokenizer.ggml.tokens")?
        .iter()
        .map(|v| v.to_string().cloned().unwrap_or_default())
        .collect();
    let types: Vec<i32> = arr("tokenizer.ggml.token_type")
        .map(|a| {
            a.iter()
                .map(|v| match v {
                    gguf_file::Value::I32(x) => *x,
                    gguf_file::Value::U32(x) => *x as i32,
                    _ => 1,
                })
                .collect()
        })
        .unwrap_or_default();
    let merges: Vec<String> = arr("tokenizer.ggml.merges")
        .map(|a| {
            a.iter()
                .filter_map(|v| v.to_string().ok().cloned())
                .collect()
        })
        .unwrap_or_default();
    let scores: Vec<f32> = arr("tokenizer.ggml.scores")
        .map(|a| a.iter().map(|v| v.to_f32().unwrap_or(0.0)).collect())
        .unwrap_or_default();
    let model = md_string(c, "tokenizer.ggml.model").unwrap_or_else(|| "gpt2".into());
    Tokenizer::new(Vocab {
        add_space_prefix: md_bool(c, "tokenizer.ggml.add_space_prefix").unwrap_or(
            model == "llama" && md_string(c, "general.architecture").as_deref() == Some("llama"),
        ),
        model,
        pre: md_string(c, "tokenizer.ggml.pre"),
        tokens,
        types,
        merges,
        scores,
        bos: md_u32(c, "tokenizer.ggml.bos_token_id"),
        eos: md_u32(c, "tokenizer.ggml.eos_token_id"),
        unk: md_u32(c, "tokenizer.ggml.unknown_token_id"),
        add_bos: md_bool(c, "tokenizer.ggml.add_bos_token").unwrap_or(false),
    })
    .map_err(|e| e.to_string())
}

/// Load the weights of `path` (whose header is `content`).
pub fn load_weights(
    path: &Path,
    content: gguf_file::Content,
    device: &Device,
) -> Result<Weights, String> {
    let arch = md_string(&content, "general.architecture").unwrap_or_default();
    let mut f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let err =
        |e: candle_core::Error| format!("{}: cannot load {arch} weights: {e}", path.display());
    match arch.as_str() {
        "llama" | "mistral" => quantized_llama::ModelWeights::from_gguf(content, &mut f, device)
            .map(Weights::Llama)
            .map_err(err),
        "qwen2" => quantized_qwen2::ModelWeights::from_gguf(content, &mut f, device)
            .map(Weights::Qwen2)
            .map_err(err),
        "qwen3" => quantized_qwen3::ModelWeights::from_gguf(content, &mut f, device)
            .map(Weights::Qwen3)
            .map_err(err),
        "gemma3" | "gemma2" | "gemma" => {
            quantized_gemma3::ModelWeights::from_gguf(content, &mut f, device)
                .map(Weights::Gemma3)
                .map_err(err)
        }
        other => Err(format!(
            "{}: unsupported architecture '{other}' (supported: llama, mistral, qwen2, qwen3, gemma3)",
            path.display()
        )),
    }
}
