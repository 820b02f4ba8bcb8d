//! The model's configuration (from the GGUF metadata) and its tensors: the
//! matrices as the file's quantized blocks, the norms and biases as `f32`.

use super::EngineError;
use candle_core::quantized::{gguf_file, GgmlDType};
use candle_core::Device;
use seki_kernels::quant::{PackedQ8, QActs, QMatrix, QType};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// Shapes and constants of a model.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `general.architecture`.
    pub arch: String,
    /// Transformer blocks.
    pub layers: usize,
    /// Width of the residual stream.
    pub embd: usize,
    /// Hidden width of the MLP.
    pub ffn: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads.
    pub kv_heads: usize,
    /// Values per head.
    pub head_dim: usize,
    /// Rotated values per head (`head_dim` unless the file says less).
    pub rope_dim: usize,
    /// Rotary base frequency.
    pub rope_base: f32,
    /// Rotation pairs `(p, p + rope_dim / 2)` (qwen2) rather than
    /// `(2p, 2p + 1)` (GGML's llama layout, whose q/k rows are permuted to it).
    pub neox: bool,
    /// RMS norm epsilon.
    pub eps: f32,
    /// Longest sequence (the file's training context).
    pub context: usize,
    /// The MLP's gate activation.
    pub act: Activation,
    /// Factor on the token embeddings (gemma3: `sqrt(embd)`; else 1).
    pub embed_scale: f32,
    /// Sliding-window attention (gemma3): the window, and every how many
    /// blocks one attends globally instead.
    pub window: Option<Window>,
    /// Factor on the queries before attention, whose scores are scaled by
    /// `1 / sqrt(head_dim)`: 1, except for the 27B gemma3 (62 blocks),
    /// whose scores are scaled by `1 / sqrt(embd / heads)` instead (its
    /// `query_pre_attn_scalar`, which the GGUF metadata does not carry; the
    /// same rule llama.cpp applies).
    pub query_scale: f32,
}

/// The gate activation of the MLP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `x * sigmoid(x)` (llama, qwen).
    Silu,
    /// GELU, tanh approximation (gemma).
    GeluTanh,
}

/// Local attention of some blocks (gemma3).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// Positions a query sees, itself included.
    pub size: usize,
    /// Block `l` is global when `(l + 1) % pattern == 0`.
    pub pattern: usize,
    /// Rotary base of the local blocks (the global ones use `rope_base`).
    pub rope_base: f32,
    /// Positions of the global blocks are divided by this (linear rotary
    /// scaling, `rope.scaling.factor`; 1 when absent).
    pub global_scale: f32,
}

impl Config {
    /// The window of block `l` (`None`: it attends to every position).
    pub fn window_of(&self, l: usize) -> Option<usize> {
        self.window
            .filter(|w| !(l + 1).is_multiple_of(w.pattern.max(1)))
            .map(|w| w.size)
    }
}

fn md_usize(c: &gguf_file::Content, key: &str) -> Option<usize> {
    c.metadata.get(key).and_then(|v| match v {
        gguf_file::Value::U32(x) => usize::try_from(*x).ok(),
        gguf_file::Value::I32(x) => usize::try_from(*x).ok(),
        gguf_file::Value::U64(x) => usize::try_from(*x).ok(),
        gguf_file::Value::I64(x) => usize::try_from(*x).ok(),
        gguf_file::Value::U16(x) => Some(*x as usize),
        _ => None,
    })
}

fn md_f32(c: &gguf_file::Content, key: &str) -> Option<f32> {
    c.metadata.get(key).and_then(|v| match v {
        gguf_file::Value::F32(x) => Some(*x),
        gguf_file::Value::F64(x) => Some(*x as f32),
        _ => None,
    })
}

impl Config {
    /// Read the configuration of a llama-, qwen2-, qwen3- or gemma3-family
    /// file.
    pub fn from_content(c: &gguf_file::Content) -> Result<Self, EngineError> {
        let arch = c
            .metadata
            .get("general.architecture")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_default();
        let neox = match arch.as_str() {
            "llama" | "mistral" => false,
            "qwen2" | "qwen3" | "gemma3" => true,
            other => return Err(EngineError::Unsupported(format!("architecture '{other}'"))),
        };
        let need = |k: &str| {
            md_usize(c, &format!("{arch}.{k}"))
                .filter(|&v| v > 0)
                .ok_or_else(|| EngineError::Format(format!("the file has no usable {arch}.{k}")))
        };
        let (layers, embd, ffn, heads) = (
            need("block_count")?,
            need("embedding_length")?,
            need("feed_forward_length")?,
            need("attention.head_count")?,
        );
        let kv_heads = md_usize(c, &format!("{arch}.attention.head_count_kv")).unwrap_or(heads);
        if kv_heads == 0 || !heads.is_multiple_of(kv_heads) || !embd.is_multiple_of(heads) {
            return Err(EngineError::Format(format!(
                "{heads} heads, {kv_heads} key/value heads and width {embd} do not fit together"
            )));
        }
        let head_dim = md_usize(c, &format!("{arch}.attention.key_length")).unwrap_or(embd / heads);
        let rope_dim = md_usize(c, &format!("{arch}.rope.dimension_count")).unwrap_or(head_dim);
        // The heads' width may differ from the model's (qwen3: 16 heads of
        // 128 for width 1024); the projections' shapes follow the heads.
        if head_dim == 0 || rope_dim > head_dim || !rope_dim.is_multiple_of(2) {
            return Err(EngineError::Unsupported(format!(
                "head size {head_dim} with {rope_dim} rotated values for width {embd}"
            )));
        }
        let default_base = if neox { 1_000_000.0 } else { 10_000.0 };
        let gemma = arch == "gemma3";
        let window = match gemma {
            true => Some(Window {
                size: need("attention.sliding_window")?,
                // The files do not say it; gemma3 has one global block in six.
                pattern: md_usize(c, &format!("{arch}.attention.sliding_window_type"))
                    .filter(|&p| p > 0)
                    .unwrap_or(6),
                rope_base: md_f32(c, &format!("{arch}.rope.local_freq_base")).unwrap_or(10_000.0),
                global_scale: md_f32(c, &format!("{arch}.rope.scaling.factor"))
                    .filter(|f| f.is_finite() && *f > 0.0)
                    .unwrap_or(1.0),
            }),
            false => None,
        };
        Ok(Config {
            layers,
            embd,
            ffn,
            heads,
            kv_heads,
            head_dim,
            rope_dim,
            rope_base: md_f32(c, &format!("{arch}.rope.freq_base")).unwrap_or(default_base),
            neox,
            eps: md_f32(c, &format!("{arch}.attention.layer_norm_rms_epsilon")).unwrap_or(1e-5),
            context: md_usize(c, &format!("{arch}.context_length")).unwrap_or(4096),
            act: match gemma {
                true => Activation::GeluTanh,
                false => Activation::Silu,
            },
            embed_scale: match gemma {
                true => (embd as f32).sqrt(),
                false => 1.0,
            },
            query_scale: match gemma && layers == 62 && heads > 0 && embd >= heads {
                true => (head_dim as f32 / (embd / heads) as f32).sqrt(),
                false => 1.0,
            },
            window,
            arch,
        })
    }
}

/// A matrix of quantized blocks (`rows x cols`), with an optional bias.
/// Where the CPU has AVX-512 VNNI, matrices of the formats [`PackedQ8`]
/// takes are repacked at load into its interleaved layout; others keep the
/// file's bytes.
#[derive(Debug, Clone)]
pub struct Linear {
    rows: usize,
    cols: usize,
    store: Store,
    bias: Option<Vec<f32>>,
}

/// How a [`Linear`] holds its weights.
#[derive(Debug, Clone)]
enum Store {
    /// The file's blocks of this format.
    Blocks(QType, Vec<u8>),
    /// Repacked.
    Packed(PackedQ8),
}

impl Linear {
    /// A matrix of the file's blocks, repacked where that is faster.
    fn new(qtype: QType, rows: usize, cols: usize, data: Vec<u8>) -> Result<Self, EngineError> {
        let m = QMatrix::new(qtype, rows, cols, &data)?;
        let store = match PackedQ8::packs(qtype) && PackedQ8::available() {
            true => Store::Packed(PackedQ8::pack(&m)?),
            false => Store::Blocks(qtype, data),
        };
        Ok(Linear {
            rows,
            cols,
            store,
            bias: None,
        })
    }

    /// Rows (outputs).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Row `r` as `f32` values into `out` (`cols` long), e.g. an embedding.
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) -> Result<(), EngineError> {
        match &self.store {
            Store::Packed(p) => p.dequantize_row(r, out)?,
            Store::Blocks(t, data) => {
                QMatrix::new(*t, self.rows, self.cols, data)?.dequantize_row(r, out)?
            }
        }
        Ok(())
    }

    /// `y = x W^T + b` for quantized activations `x` (`n x cols`); `y` is
    /// resized to `n x rows`.
    pub fn apply(&self, x: &QActs, y: &mut Vec<f32>) -> Result<(), EngineError> {
        y.resize(x.rows() * self.rows, 0.0);
        match &self.store {
            Store::Packed(p) => p.matmul(x, y)?,
            Store::Blocks(t, data) => {
                seki_kernels::quant::matmul(&QMatrix::new(*t, self.rows, self.cols, data)?, x, y)?
            }
        }
        if let Some(b) = &self.bias {
            for row in y.chunks_exact_mut(self.rows) {
                for (v, bv) in row.iter_mut().zip(b) {
                    *v += bv;
                }
            }
        }
        Ok(())
    }
}

/// One transformer block.
#[derive(Debug, Clone)]
pub struct Layer {
    /// Norm before attention.
    pub attn_norm: Vec<f32>,
    /// Query projection.
    pub wq: Linear,
    /// Key projection.
    pub wk: Linear,
    /// Value projection.
    pub wv: Linear,
    /// Attention output projection.
    pub wo: Linear,
    /// Norm before the MLP.
    pub ffn_norm: Vec<f32>,
    /// MLP gate projection.
    pub gate: Linear,
    /// MLP up projection.
    pub up: Linear,
    /// MLP down projection.
    pub down: Linear,
    /// qwen3: RMS norm of each query head before the rotation (`head_dim`).
    pub q_norm: Option<Vec<f32>>,
    /// qwen3: RMS norm of each key head before the rotation (`head_dim`).
    pub k_norm: Option<Vec<f32>>,
    /// gemma3: RMS norm of the attention's output before the residual.
    pub post_attn_norm: Option<Vec<f32>>,
    /// gemma3: RMS norm of the MLP's output before the residual.
    pub post_ffn_norm: Option<Vec<f32>>,
}

/// All tensors.
#[derive(Debug, Clone)]
pub struct Weights {
    /// Token embeddings (`vocab x embd`).
    pub embed: Linear,
    /// The blocks.
    pub layers: Vec<Layer>,
    /// The final norm.
    pub norm: Vec<f32>,
    /// The output projection (`vocab x embd`), when not tied to the
    /// embeddings.
    pub output: Option<Linear>,
}

impl Weights {
    /// The output projection (the embeddings when tied).
    pub fn output(&self) -> &Linear {
        self.output.as_ref().unwrap_or(&self.embed)
    }

    /// Vocabulary size.
    pub fn vocab(&self) -> usize {
        self.embed.rows()
    }
}

/// Reads tensors of one file.
struct Reader<'a, R> {
    content: &'a gguf_file::Content,
    file: R,
}

fn info<'c>(
    content: &'c gguf_file::Content,
    name: &str,
) -> Result<&'c gguf_file::TensorInfo, EngineError> {
    content
        .tensor_infos
        .get(name)
        .ok_or_else(|| EngineError::Format(format!("the file has no tensor '{name}'")))
}

impl<'a, R: Read + Seek> Reader<'a, R> {
    fn info(&self, name: &str) -> Result<&'a gguf_file::TensorInfo, EngineError> {
        info(self.content, name)
    }

    /// A vector of `len` values as `f32` (any GGML type, through candle).
    fn vector(&mut self, name: &str, len: usize) -> Result<Vec<f32>, EngineError> {
        let info = self.info(name)?;
        if info.shape.elem_count() != len {
            return Err(EngineError::Format(format!(
                "tensor '{name}' has shape {:?}, expected {len} values",
                info.shape.dims()
            )));
        }
        let t = info.read(
            &mut self.file,
            self.content.tensor_data_offset,
            &Device::Cpu,
        )?;
        Ok(t.dequantize(&Device::Cpu)?
            .flatten_all()?
            .to_vec1::<f32>()?)
    }

    /// A quantized `rows x cols` matrix, its bytes as stored.
    fn matrix(&mut self, name: &str, rows: usize, cols: usize) -> Result<Linear, EngineError> {
        let info = self.info(name)?;
        if info.shape.dims() != [rows, cols] {
            return Err(EngineError::Format(format!(
                "tensor '{name}' has shape {:?}, expected [{rows}, {cols}]",
                info.shape.dims()
            )));
        }
        let qtype = match info.ggml_dtype {
            GgmlDType::Q4_0 => QType::Q4_0,
            GgmlDType::Q4_1 => QType::Q4_1,
            GgmlDType::Q5_0 => QType::Q5_0,
            GgmlDType::Q5_1 => QType::Q5_1,
            GgmlDType::Q8_0 => QType::Q8_0,
            GgmlDType::Q4K => QType::Q4_K,
            GgmlDType::Q5K => QType::Q5_K,
            GgmlDType::Q6K => QType::Q6_K,
            other => {
                return Err(EngineError::Unsupported(format!(
                    "tensor '{name}' of type {other:?}"
                )))
            }
        };
        let len = qtype
            .row_bytes(cols)?
            .checked_mul(rows)
            .ok_or_else(|| EngineError::Format(format!("tensor '{name}': size overflows")))?;
        let mut data = vec![0u8; len];
        self.file.seek(SeekFrom::Start(
            self.content.tensor_data_offset + info.offset,
        ))?;
        self.file.read_exact(&mut data)?;
        Linear::new(qtype, rows, cols, data)
    }

    fn has(&self, name: &str) -> bool {
        self.content.tensor_infos.contains_key(name)
    }
}

impl Weights {
    /// Read every tensor of `path` (whose header is `content`) for `cfg`.
    pub fn load(
        path: &Path,
        content: &gguf_file::Content,
        cfg: &Config,
    ) -> Result<Self, EngineError> {
        let file = std::io::BufReader::new(std::fs::File::open(path)?);
        let mut r = Reader { content, file };
        let (d, hd) = (cfg.embd, cfg.head_dim);
        let vocab = r
            .info("token_embd.weight")?
            .shape
            .dims()
            .first()
            .copied()
            .unwrap_or(0);
        let embed = r.matrix("token_embd.weight", vocab, d)?;
        let mut layers = Vec::with_capacity(cfg.layers);
        for l in 0..cfg.layers {
            let p = format!("blk.{l}");
            let mut proj = |name: &str, rows: usize, cols: usize| -> Result<Linear, EngineError> {
                let mut m = r.matrix(&format!("{p}.{name}.weight"), rows, cols)?;
                let bias = format!("{p}.{name}.bias");
                if r.has(&bias) {
                    m.bias = Some(r.vector(&bias, rows)?);
                }
                Ok(m)
            };
            let wq = proj("attn_q", cfg.heads * hd, d)?;
            let wk = proj("attn_k", cfg.kv_heads * hd, d)?;
            let wv = proj("attn_v", cfg.kv_heads * hd, d)?;
            let wo = proj("attn_output", d, cfg.heads * hd)?;
            let gate = proj("ffn_gate", cfg.ffn, d)?;
            let up = proj("ffn_up", cfg.ffn, d)?;
            let down = proj("ffn_down", d, cfg.ffn)?;
            let mut head_norm = |name: &str| -> Result<Option<Vec<f32>>, EngineError> {
                let name = format!("{p}.{name}.weight");
                match r.has(&name) {
                    true => r.vector(&name, hd).map(Some),
                    false => Ok(None),
                }
            };
            let (q_norm, k_norm) = (head_norm("attn_q_norm")?, head_norm("attn_k_norm")?);
            let mut wide_norm = |name: &str| -> Result<Option<Vec<f32>>, EngineError> {
                let name = format!("{p}.{name}.weight");
                match (cfg.window.is_some(), r.has(&name)) {
                    (true, _) => r.vector(&name, d).map(Some),
                    (false, true) => Err(EngineError::Unsupported(format!(
                        "tensor '{name}' outside the gemma3 family"
                    ))),
                    (false, false) => Ok(None),
                }
            };
            let post_attn_norm = wide_norm("post_attention_norm")?;
            let post_ffn_norm = wide_norm("post_ffw_norm")?;
            layers.push(Layer {
                attn_norm: r.vector(&format!("{p}.attn_norm.weight"), d)?,
                ffn_norm: r.vector(&format!("{p}.ffn_norm.weight"), d)?,
                wq,
                wk,
                wv,
                wo,
                gate,
                up,
                down,
                q_norm,
                k_norm,
                post_attn_norm,
                post_ffn_norm,
            });
        }
        let norm = r.vector("output_norm.weight", d)?;
        let output = if r.has("output.weight") {
            Some(r.matrix("output.weight", vocab, d)?)
        } else {
            None
        };
        Ok(Weights {
            embed,
            layers,
            norm,
            output,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sixth_block_is_global() {
        let mut c = Config {
            arch: "gemma3".into(),
            layers: 26,
            embd: 1152,
            ffn: 6912,
            heads: 4,
            kv_heads: 1,
            head_dim: 256,
            rope_dim: 256,
            rope_base: 1e6,
            neox: true,
            eps: 1e-6,
            context: 32768,
            act: Activation::GeluTanh,
            embed_scale: 1152f32.sqrt(),
            window: Some(Window {
                size: 512,
                pattern: 6,
                rope_base: 1e4,
                global_scale: 1.0,
            }),
            query_scale: 1.0,
        };
        let global: Vec<usize> = (0..c.layers)
            .filter(|&l| c.window_of(l).is_none())
            .collect();
        assert_eq!(global, [5, 11, 17, 23]);
        assert_eq!(c.window_of(0), Some(512));
        c.window = None;
        assert!((0..c.layers).all(|l| c.window_of(l).is_none()));
    }

    /// gemma3's metadata with `layers` blocks of the 27B's widths.
    fn gemma3_content(layers: u32) -> gguf_file::Content {
        use gguf_file::Value;
        let mut metadata = std::collections::HashMap::new();
        metadata.insert(
            "general.architecture".to_string(),
            Value::String("gemma3".into()),
        );
        for (k, v) in [
            ("block_count", layers),
            ("embedding_length", 5376),
            ("feed_forward_length", 21504),
            ("attention.head_count", 32),
            ("attention.head_count_kv", 16),
            ("attention.key_length", 128),
            ("attention.sliding_window", 1024),
        ] {
            metadata.insert(format!("gemma3.{k}"), Value::U32(v));
        }
        gguf_file::Content {
            magic: gguf_file::VersionedMagic::GgufV3,
            metadata,
            tensor_infos: Default::default(),
            tensor_data_offset: 0,
        }
    }

    #[test]
    fn the_27b_gemma3_scales_queries_by_its_width_per_head() {
        // 62 blocks: scores scaled by 1/sqrt(5376 / 32) = 1/sqrt(168), not
        // 1/sqrt(128): the queries carry sqrt(128 / 168).
        let c = Config::from_content(&gemma3_content(62)).unwrap();
        assert!((c.query_scale - (128f32 / 168.0).sqrt()).abs() < 1e-6);
        assert!((c.query_scale / 128f32.sqrt() - 1.0 / 168f32.sqrt()).abs() < 1e-6);
        // Other sizes keep 1/sqrt(head size).
        let c = Config::from_content(&gemma3_content(48)).unwrap();
        assert_eq!(c.query_scale, 1.0);
    }
}
