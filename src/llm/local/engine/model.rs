//! The forward pass: embeddings, then per block RMS norm, q/k/v projections
//! (with qwen2's biases; qwen3's and gemma3's per-head RMS norms of queries
//! and keys), rotary embedding, grouped-query causal attention over the
//! cache (gemma3: five blocks in six over a sliding window, with their own
//! rotary base), output projection and residual, RMS norm, gated MLP (SiLU;
//! gemma3: GELU) and residual, gemma3 norming each of the two outputs
//! before its residual; then the final norm and the logits.

use super::cache::KvCache;
use super::weights::{Activation, Config, Weights};
use super::EngineError;
use candle_core::quantized::gguf_file;
use seki_kernels::attention::{self, AttnDims};
use seki_kernels::quant::QActs;
use std::path::Path;

/// RMS norm of `t`'s rows in place when the block has the norm (qwen3's and
/// gemma3's per-head norms of queries and keys, gemma3's norms of the
/// attention's and the MLP's outputs); `tmp` is scratch.
fn norm_in_place(norm: &Option<Vec<f32>>, eps: f32, t: &mut Vec<f32>, tmp: &mut Vec<f32>) {
    if let Some(w) = norm {
        tmp.resize(t.len(), 0.0);
        attention::rms_norm(t, w, eps, tmp);
        std::mem::swap(t, tmp);
    }
}

/// A loaded model with its cache.
#[derive(Debug, Clone)]
pub struct Engine {
    cfg: Config,
    w: Weights,
    cache: KvCache,
    /// Rotary frequencies of the global blocks, then of the local ones.
    inv_freq: [Vec<f32>; 2],
}

/// Scratch buffers of one pass.
#[derive(Default)]
struct Buffers {
    h: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    att: Vec<f32>,
    o: Vec<f32>,
    gate: Vec<f32>,
    up: Vec<f32>,
    /// Scratch of the norms applied in place.
    normed: Vec<f32>,
    acts: QActs,
}

impl Engine {
    /// Load the model of `path` (whose header is `content`): llama-, qwen2-,
    /// qwen3- and gemma3-family files with quantized matrices of the kernels' formats;
    /// anything else is [`EngineError::Unsupported`].
    pub fn load(path: &Path, content: &gguf_file::Content) -> Result<Self, EngineError> {
        let cfg = Config::from_content(content)?;
        let w = Weights::load(path, content, &cfg)?;
        // As GGML and candle compute them: base^(-2p / rope_dim) in f32.
        let freqs = |base: f32, scale: f32| -> Vec<f32> {
            (0..cfg.rope_dim / 2)
                .map(|p| 1.0 / base.powf((2 * p) as f32 / cfg.rope_dim as f32) / scale)
                .collect()
        };
        let inv_freq = match cfg.window {
            Some(w) => [
                freqs(cfg.rope_base, w.global_scale),
                freqs(w.rope_base, 1.0),
            ],
            None => [freqs(cfg.rope_base, 1.0), Vec::new()],
        };
        let cache = KvCache::new(cfg.layers, cfg.kv_heads * cfg.head_dim);
        Ok(Engine {
            cfg,
            w,
            cache,
            inv_freq,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Gate the MLP with `act` instead of the family's activation. For
    /// comparisons with a reference that differs there: candle-transformers
    /// 0.11's `quantized_gemma3` gates with SiLU where Gemma 3 (and
    /// llama.cpp, and this engine) use GELU.
    pub fn set_activation(&mut self, act: Activation) {
        self.cfg.act = act;
    }

    /// Vocabulary size (the length of a logits row).
    pub fn vocab(&self) -> usize {
        self.w.vocab()
    }

    /// Longest sequence.
    pub fn max_positions(&self) -> usize {
        self.cfg.context
    }

    /// The cached positions' token ids.
    pub fn cached(&self) -> &[u32] {
        self.cache.tokens()
    }

    /// Keep the first `len` cached positions only (`0`: a fresh start).
    pub fn truncate(&mut self, len: usize) {
        self.cache.truncate(len);
    }

    /// Prepare to run `tokens` from position 0: keep the cached positions
    /// they begin with, except the last token of `tokens` (it must run to
    /// give logits), drop the rest. Returns how many positions are kept; run
    /// `tokens[kept..]` next.
    pub fn reuse_prefix(&mut self, tokens: &[u32]) -> usize {
        let keep = self
            .cache
            .common_prefix(tokens)
            .min(tokens.len().saturating_sub(1));
        self.cache.truncate(keep);
        keep
    }

    /// Run `tokens` after the cached positions and add them to the cache.
    /// Returns the logits of the last token (`vocab` values), or of every
    /// token (`tokens.len() x vocab`) when `all`.
    pub fn forward(&mut self, tokens: &[u32], all: bool) -> Result<Vec<f32>, EngineError> {
        seki_kernels::on_pool(|| self.forward_here(tokens, all))
    }

    /// [`Engine::forward`] on the calling thread.
    fn forward_here(&mut self, tokens: &[u32], all: bool) -> Result<Vec<f32>, EngineError> {
        let n = tokens.len();
        if n == 0 {
            return Err(EngineError::Empty);
        }
        let c = &self.cfg;
        let pos0 = self.cache.len();
        if pos0 + n > c.context {
            return Err(EngineError::Context(pos0 + n, c.context));
        }
        let (d, hd) = (c.embd, c.head_dim);
        let vocab = self.w.vocab();
        let embed = &self.w.embed;
        let mut x = vec![0f32; n * d];
        for (&t, row) in tokens.iter().zip(x.chunks_exact_mut(d)) {
            if t as usize >= vocab {
                return Err(EngineError::Token(t, vocab));
            }
            embed.dequantize_row(t as usize, row)?;
            if c.embed_scale != 1.0 {
                row.iter_mut().for_each(|v| *v *= c.embed_scale);
            }
        }
        let mut b = Buffers {
            h: vec![0f32; n * d],
            att: vec![0f32; n * c.heads * hd],
            ..Default::default()
        };
        for (l, layer) in self.w.layers.iter().enumerate() {
            let window = c.window_of(l);
            let dims = AttnDims {
                heads: c.heads,
                kv_heads: c.kv_heads,
                head_dim: hd,
                window,
            };
            let inv_freq = &self.inv_freq[usize::from(window.is_some())];
            attention::rms_norm(&x, &layer.attn_norm, c.eps, &mut b.h);
            b.acts.quantize_from(&b.h, n, d)?;
            layer.wq.apply(&b.acts, &mut b.q)?;
            layer.wk.apply(&b.acts, &mut b.k)?;
            layer.wv.apply(&b.acts, &mut b.v)?;
            norm_in_place(&layer.q_norm, c.eps, &mut b.q, &mut b.normed);
            norm_in_place(&layer.k_norm, c.eps, &mut b.k, &mut b.normed);
            attention::rope(&mut b.q, c.heads, hd, pos0, inv_freq, c.neox);
            if c.query_scale != 1.0 {
                b.q.iter_mut().for_each(|v| *v *= c.query_scale);
            }
            attention::rope(&mut b.k, c.kv_heads, hd, pos0, inv_freq, c.neox);
            let (keys, values) = self.cache.extend(l, &b.k, &b.v);
            attention::causal(&b.q, keys, values, pos0, dims, &mut b.att);
            b.acts.quantize_from(&b.att, n, c.heads * hd)?;
            layer.wo.apply(&b.acts, &mut b.o)?;
            norm_in_place(&layer.post_attn_norm, c.eps, &mut b.o, &mut b.normed);
            attention::add(&mut x, &b.o);

            attention::rms_norm(&x, &layer.ffn_norm, c.eps, &mut b.h);
            b.acts.quantize_from(&b.h, n, d)?;
            layer.gate.apply(&b.acts, &mut b.gate)?;
            layer.up.apply(&b.acts, &mut b.up)?;
            match c.act {
                Activation::Silu => attention::silu_mul(&mut b.gate, &b.up),
                Activation::GeluTanh => attention::gelu_mul(&mut b.gate, &b.up),
            }
            b.acts.quantize_from(&b.gate, n, c.ffn)?;
            layer.down.apply(&b.acts, &mut b.o)?;
            norm_in_place(&layer.post_ffn_norm, c.eps, &mut b.o, &mut b.normed);
            attention::add(&mut x, &b.o);
        }
        self.cache.commit(tokens);
        let rows = if all { n } else { 1 };
        let last = &x[(n - rows) * d..];
        let mut h = vec![0f32; rows * d];
        attention::rms_norm(last, &self.w.norm, c.eps, &mut h);
        b.acts.quantize_from(&h, rows, d)?;
        let mut logits = Vec::new();
        self.w.output().apply(&b.acts, &mut logits)?;
        Ok(logits)
    }
}
