//! Reading a GGUF file: its metadata (architecture, tokenizer, chat
//! template) and its weights, as one of candle-transformers' quantized
//! models (llama family, Qwen2/2.5, Qwen3, Gemma 3).

use super::engine::{Engine, EngineError};
use super::settings::LocalEngine;
use super::tokenizer::{Tokenizer, Vocab};
use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candle_transformers::models::{
    quantized_gemma3, quantized_llama, quantized_qwen2, quantized_qwen3,
};
use std::io::{Read, Seek, SeekFrom};
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
    /// seki's own engine (llama, qwen2, qwen3 and gemma3 families).
    Seki(Box<Engine>),
}

impl std::fmt::Debug for Weights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Weights::Llama(_) => "Weights::Llama",
            Weights::Qwen2(_) => "Weights::Qwen2",
            Weights::Qwen3(_) => "Weights::Qwen3",
            Weights::Gemma3(_) => "Weights::Gemma3",
            Weights::Seki(_) => "Weights::Seki",
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
            Weights::Seki(e) => {
                let tokens = x.squeeze(0)?.to_vec1::<u32>()?;
                // The cache holds positions `0..pos` from here on.
                if pos > e.cached().len() {
                    candle_core::bail!(
                        "position {pos} after {} cached positions",
                        e.cached().len()
                    );
                }
                e.truncate(pos);
                let logits = e
                    .forward(&tokens, false)
                    .map_err(|err| candle_core::Error::Msg(err.to_string()))?;
                let n = logits.len();
                Tensor::from_vec(logits, (1, n), &Device::Cpu)
            }
        }
    }

    /// Prepare to run `tokens` from position 0, keeping the cached positions
    /// they begin with where the implementation can (seki's engine: all but
    /// the last token at most); the others start afresh. Returns how many
    /// positions are kept: run `tokens[kept..]` at position `kept` next.
    pub fn reuse_prefix(&mut self, tokens: &[u32]) -> usize {
        match self {
            Weights::Seki(e) => e.reuse_prefix(tokens),
            _ => {
                self.clear();
                0
            }
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
            Weights::Seki(e) => e.truncate(0),
        }
    }

    /// Longest sequence the implementation supports.
    pub fn max_positions(&self) -> usize {
        match self {
            Weights::Llama(_) => quantized_llama::MAX_SEQ_LEN,
            Weights::Seki(e) => e.max_positions(),
            _ => 32_768,
        }
    }
}

/// The architectures [`load_weights`] can build.
pub const SUPPORTED: [&str; 7] = [
    "llama", "mistral", "qwen2", "qwen3", "gemma3", "gemma2", "gemma",
];

/// Read a GGUF header, with an error that says what is wrong with the file.
pub fn read_content(path: &Path) -> Result<gguf_file::Content, String> {
    let mut f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse_header(&mut f, path)
}

/// Read a GGUF header from `reader` (the file `path`, named in errors) and
/// check it: a header that candle's reader accepts can still declare a zero
/// alignment (which would divide by zero) or tensors whose sizes overflow or
/// run past the end of the file (a truncated download).
pub fn parse_header<R: Read + Seek>(
    reader: &mut R,
    path: &Path,
) -> Result<gguf_file::Content, String> {
    let bad = |what: String| {
        format!(
            "{} is not a readable GGUF model file (corrupt or truncated?): {what}",
            path.display()
        )
    };
    // A walk that fails leaves the diagnosis to candle's reader below.
    if zero_alignment(reader).unwrap_or(false) {
        return Err(bad("general.alignment is 0".into()));
    }
    reader
        .seek(SeekFrom::Start(0))
        .map_err(|e| bad(e.to_string()))?;
    let content = gguf_file::Content::read(reader).map_err(|e| bad(e.to_string()))?;
    let file_len = reader
        .seek(SeekFrom::End(0))
        .map_err(|e| bad(e.to_string()))?;
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort();
    for name in names {
        let t = &content.tensor_infos[name];
        let dtype = t.ggml_dtype;
        let elems = t
            .shape
            .dims()
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or_else(|| {
                bad(format!(
                    "tensor '{name}': dimensions {:?} overflow",
                    t.shape.dims()
                ))
            })?;
        if elems % dtype.block_size() != 0 {
            return Err(bad(format!(
                "tensor '{name}': {elems} elements are not whole blocks of {} for {dtype:?}",
                dtype.block_size()
            )));
        }
        let end = (elems / dtype.block_size())
            .checked_mul(dtype.type_size())
            .and_then(|n| u64::try_from(n).ok())
            .and_then(|n| n.checked_add(t.offset))
            .and_then(|n| n.checked_add(content.tensor_data_offset))
            .ok_or_else(|| bad(format!("tensor '{name}': size or offset overflows")))?;
        if end > file_len {
            return Err(format!(
                "{} is truncated: tensor '{name}' ends at byte {end} but the file has {file_len} bytes (an interrupted download? fetch the file again)",
                path.display()
            ));
        }
    }
    Ok(content)
}

/// Check that the header's architecture is one [`load_weights`] builds.
pub fn check_architecture(content: &gguf_file::Content, path: &Path) -> Result<String, String> {
    let arch = md_string(content, "general.architecture").ok_or_else(|| {
        format!(
            "{}: the file has no general.architecture; cannot tell which model it holds",
            path.display()
        )
    })?;
    if SUPPORTED.contains(&arch.as_str()) {
        Ok(arch)
    } else {
        Err(format!(
            "{}: unsupported architecture '{arch}' (supported: {})",
            path.display(),
            SUPPORTED.join(", ")
        ))
    }
}

/// Whether the header sets `general.alignment` to 0 (candle's reader would
/// divide by it), found by walking the metadata without keeping it. Errors
/// are I/O errors or a header that ends early or has an unknown type.
fn zero_alignment<R: Read + Seek>(r: &mut R) -> std::io::Result<bool> {
    fn u32_of<R: Read>(r: &mut R) -> std::io::Result<u32> {
        let mut b = [0u8; 4];
        r.read_exact(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn u64_of<R: Read>(r: &mut R) -> std::io::Result<u64> {
        let mut b = [0u8; 8];
        r.read_exact(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn skip<R: Seek>(r: &mut R, n: u64) -> std::io::Result<()> {
        let n = i64::try_from(n).map_err(|_| std::io::ErrorKind::InvalidData)?;
        r.seek(SeekFrom::Current(n)).map(|_| ())
    }
    // Skip one value of type `t`, returning it when it is an integer.
    fn value<R: Read + Seek>(
        r: &mut R,
        t: u32,
        v1: bool,
        depth: usize,
        end: u64,
    ) -> std::io::Result<Option<i128>> {
        let len = |r: &mut R| {
            if v1 {
                u32_of(r).map(u64::from)
            } else {
                u64_of(r)
            }
        };
        let fixed = match t {
            0 | 1 | 7 => 1,
            2 | 3 => 2,
            4..=6 => 4,
            10..=12 => 8,
            _ => 0,
        };
        if fixed > 0 {
            let mut b = [0u8; 8];
            r.read_exact(&mut b[..fixed])?;
            let x = u64::from_le_bytes(b);
            return Ok(match t {
                0 | 2 | 4 | 10 => Some(i128::from(x)),
                1 => Some(i128::from(x as u8 as i8)),
                3 => Some(i128::from(x as u16 as i16)),
                5 => Some(i128::from(x as u32 as i32)),
                11 => Some(i128::from(x as i64)),
                _ => None,
            });
        }
        match t {
            8 => {
                let n = len(r)?;
                skip(r, n)?;
            }
            9 if depth < 64 => {
                let et = u32_of(r)?;
                let n = len(r)?;
                let size = match et {
                    0 | 1 | 7 => 1,
                    2 | 3 => 2,
                    4..=6 => 4,
                    10..=12 => 8,
                    _ => 0,
                };
                if size > 0 {
                    skip(r, n.saturating_mul(size))?;
                } else {
                    for _ in 0..n {
                        value(r, et, v1, depth + 1, end)?;
                        if r.stream_position()? > end {
                            return Err(std::io::ErrorKind::UnexpectedEof.into());
                        }
                    }
                }
            }
            _ => return Err(std::io::ErrorKind::InvalidData.into()),
        }
        if r.stream_position()? > end {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(None)
    }
    let end = r.seek(SeekFrom::End(0))?;
    r.seek(SeekFrom::Start(0))?;
    let magic = u32_of(r)?;
    if magic != 0x4655_4747 {
        return Ok(false); // candle's reader reports the bad magic
    }
    let v1 = u32_of(r)? == 1;
    let count = |r: &mut R| {
        if v1 {
            u32_of(r).map(u64::from)
        } else {
            u64_of(r)
        }
    };
    let _tensors = count(r)?;
    let kvs = count(r)?;
    let mut zero = false;
    for _ in 0..kvs {
        let klen = count(r)?;
        if klen > end {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let mut key = vec![0u8; klen as usize];
        r.read_exact(&mut key)?;
        let t = u32_of(r)?;
        let v = value(r, t, v1, 0, end)?;
        if key == b"general.alignment" && v == Some(0) {
            zero = true;
        }
    }
    Ok(zero)
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

/// Load the model of `path` (whose header is `content`) for `engine`:
/// seki's engine where it runs the file (llama, qwen2, qwen3 and gemma3 families, weight
/// formats its kernels handle), else candle-transformers'.
pub fn load(
    path: &Path,
    content: gguf_file::Content,
    device: &Device,
    engine: LocalEngine,
) -> Result<Weights, String> {
    if engine == LocalEngine::Seki && device.is_cpu() {
        match Engine::load(path, &content) {
            Ok(e) => return Ok(Weights::Seki(Box::new(e))),
            Err(EngineError::Unsupported(why)) => {
                tracing::info!("{}: candle runs this file ({why})", path.display());
            }
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
    }
    load_weights(path, content, device)
}

/// Load the weights of `path` (whose header is `content`) as one of
/// candle-transformers' models.
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// A GGUF v3 header by hand: `kvs` (key, type, value bytes), then
    /// tensors (name, dims, ggml type, offset).
    fn header(kvs: &[(&str, u32, Vec<u8>)], tensors: &[(&str, &[u64], u32, u64)]) -> Vec<u8> {
        let mut b = b"GGUF".to_vec();
        b.extend(3u32.to_le_bytes());
        b.extend((tensors.len() as u64).to_le_bytes());
        b.extend((kvs.len() as u64).to_le_bytes());
        let s = |b: &mut Vec<u8>, x: &str| {
            b.extend((x.len() as u64).to_le_bytes());
            b.extend(x.as_bytes());
        };
        for (k, t, v) in kvs {
            s(&mut b, k);
            b.extend(t.to_le_bytes());
            b.extend(v);
        }
        for (name, dims, dtype, offset) in tensors {
            s(&mut b, name);
            b.extend((dims.len() as u32).to_le_bytes());
            for d in *dims {
                b.extend(d.to_le_bytes());
            }
            b.extend(dtype.to_le_bytes());
            b.extend(offset.to_le_bytes());
        }
        b
    }

    fn parse(bytes: Vec<u8>) -> Result<gguf_file::Content, String> {
        parse_header(&mut Cursor::new(bytes), Path::new("m.gguf"))
    }

    #[test]
    fn a_zero_alignment_is_an_error_not_a_division_by_zero() {
        // candle's reader divides by general.alignment.
        let mut arch = 5u64.to_le_bytes().to_vec();
        arch.extend(b"llama");
        for (t, v) in [
            (4u32, 0u32.to_le_bytes().to_vec()),
            (0, vec![0u8]),
            (5, vec![0; 4]),
        ] {
            let b = header(
                &[
                    ("general.architecture", 8, arch.clone()),
                    ("general.alignment", t, v),
                ],
                &[],
            );
            let e = parse(b).unwrap_err();
            assert!(
                e.contains("m.gguf") && e.contains("general.alignment is 0"),
                "{e}"
            );
        }
        let b = header(
            &[("general.alignment", 4, 32u32.to_le_bytes().to_vec())],
            &[],
        );
        assert!(parse(b).is_ok());
    }

    #[test]
    fn tensor_tables_are_checked_against_the_file() {
        // Dimensions whose product overflows.
        let b = header(&[], &[("t", &[1 << 40, 1 << 40], 0, 0)]);
        assert!(parse(b).unwrap_err().contains("overflow"));
        // A tensor past the end of the file: a truncated download.
        let b = header(&[], &[("t", &[64, 4], 0, 0)]);
        let e = parse(b).unwrap_err();
        assert!(
            e.contains("m.gguf is truncated") && e.contains("tensor 't'"),
            "{e}"
        );
        // Within the file: fine (F32: 4 bytes per element, data aligned to 32).
        let mut b = header(&[], &[("t", &[8], 0, 0)]);
        b.resize(b.len().div_ceil(32) * 32 + 32, 0);
        assert!(parse(b).is_ok());
    }

    #[test]
    fn unsupported_architectures_are_named() {
        let mut v = 5u64.to_le_bytes().to_vec();
        v.extend(b"mamba");
        let c = parse(header(&[("general.architecture", 8, v)], &[])).unwrap();
        let e = check_architecture(&c, Path::new("m.gguf")).unwrap_err();
        assert!(
            e.contains("m.gguf: unsupported architecture 'mamba'"),
            "{e}"
        );
        let c = parse(header(&[], &[])).unwrap();
        assert!(check_architecture(&c, Path::new("m.gguf"))
            .unwrap_err()
            .contains("no general.architecture"));
    }
}
