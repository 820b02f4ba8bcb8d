//! The in-process backend: a quantized GGUF model run with Candle on the CPU.
//!
//! Loading reads the file's metadata (architecture, tokenizer, chat
//! template), optionally re-quantizes 4/5-bit weights to Q8_0 (cached on
//! disk), and builds the model. A chat renders the template, encodes the
//! prompt, runs it through the model in one batch, then decodes token by
//! token with the KV cache, sampling with the profile's settings and the
//! call's seed; with a constraint (a JSON schema or a regular expression),
//! each step samples only from the tokens that keep the output a valid
//! prefix.

pub mod chat_template;
pub mod engine;
pub mod gguf;
pub mod requant;
pub mod sampler;
pub mod settings;
pub mod tokenizer;

use super::constrain::{Active, Guide, Masker, Matcher, VocabTrie};
use super::Usage;
use super::{ChatModel, ChatOptions, ChatResponse, Constraint, FinishReason, LlmError, Message};
use crate::rng::Rng;
use candle_core::{Device, Tensor};
use chat_template::ChatTemplate;
use settings::{ConstraintEngine, GgufProfile, Requantize, FETCH_COMMAND};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokenizer::Tokenizer;

/// End-of-turn markers that stop generation besides the EOS token.
const END_MARKERS: [&str; 6] = [
    "<|im_end|>",
    "<|eot_id|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|end|>",
];

/// Timings of one generation, for `seki llm bench`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timings {
    /// Prompt tokens.
    pub prompt_tokens: usize,
    /// Seconds for the prompt pass.
    pub prompt_seconds: f64,
    /// Generated tokens.
    pub generated_tokens: usize,
    /// Seconds for generation (after the prompt pass).
    pub generation_seconds: f64,
    /// Seconds spent computing constraint masks.
    pub mask_seconds: f64,
    /// Prompt tokens whose cached keys and values were reused from the
    /// previous call (not run again; included in `prompt_tokens`).
    pub reused_prompt_tokens: usize,
}

struct Inner {
    name: String,
    model_name: String,
    weights: Mutex<gguf::Weights>,
    tokenizer: Tokenizer,
    template: ChatTemplate,
    trie: Arc<VocabTrie>,
    /// llguidance's factory for this vocabulary, built at the first
    /// constrained reply (it precomputes over the whole vocabulary).
    guide: std::sync::OnceLock<Result<Guide, String>>,
    stops: Vec<u32>,
    settings: GgufProfile,
    device: Device,
}

/// A GGUF model loaded in-process.
#[derive(Clone)]
pub struct LocalModel {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for LocalModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalModel")
            .field("name", &self.inner.name)
            .field("model", &self.inner.model_name)
            .finish_non_exhaustive()
    }
}

/// The error for a model file that is not there.
fn missing_model(profile: &str, path: &Path) -> LlmError {
    let default = path.ends_with(settings::DEFAULT_MODEL);
    if default {
        LlmError::Setup(format!(
            "the model file {} is missing; fetch it with: {FETCH_COMMAND}",
            path.display()
        ))
    } else {
        LlmError::Setup(format!(
            "LLM profile '{profile}': the model file {} does not exist; set llm.profiles.{profile}.model to a GGUF file (or run {FETCH_COMMAND} for the default model)",
            path.display()
        ))
    }
}

impl LocalModel {
    /// Load the model of a `gguf` profile called `name`.
    pub fn load(name: &str, p: &GgufProfile) -> Result<Self, LlmError> {
        if p.threads > 0 {
            set_threads(p.threads);
        }
        if !p.model.is_file() {
            return Err(missing_model(name, &p.model));
        }
        // Every check that can fail on a bad file runs before the (slow)
        // re-quantization and weight loading, so a broken setup fails at once.
        let in_file = |e: String| LlmError::Local(format!("{}: {e}", p.model.display()));
        let content = gguf::read_content(&p.model).map_err(LlmError::Local)?;
        let arch = gguf::check_architecture(&content, &p.model).map_err(LlmError::Local)?;
        let tokenizer = gguf::tokenizer(&content).map_err(in_file)?;
        let tok_text = |id: Option<u32>| {
            id.and_then(|i| tokenizer.token(i))
                .unwrap_or_default()
                .to_string()
        };
        let (bos, eos) = (tok_text(tokenizer.bos()), tok_text(tokenizer.eos()));
        let template = match gguf::md_string(&content, "tokenizer.chat_template") {
            Some(t) => ChatTemplate::new(&t, "gguf", &bos, &eos),
            None => {
                let (origin, t) = chat_template::fallback(&arch, |s| tokenizer.id(s).is_some());
                ChatTemplate::new(t, origin, &bos, &eos)
            }
        }
        .map_err(|e| in_file(e.to_string()))?;
        template.probe().map_err(|e| in_file(e.to_string()))?;
        let model_name = gguf::md_string(&content, "general.name").unwrap_or_else(|| {
            p.model
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        });
        let mut stops: Vec<u32> = tokenizer.eos().into_iter().collect();
        for m in END_MARKERS {
            if let Some(id) = tokenizer.id(m) {
                if tokenizer.is_control(id) && !stops.contains(&id) {
                    stops.push(id);
                }
            }
        }
        let (path, content) = match p.requantize {
            Requantize::None => (p.model.clone(), content),
            Requantize::Q8_0 => {
                let (path, made) = requant::requantized(&p.model, &content, p.cache_dir.as_deref())
                    .map_err(|e| LlmError::Local(format!("re-quantizing to Q8_0: {e}")))?;
                if made {
                    tracing::info!("re-quantized {} to {}", p.model.display(), path.display());
                }
                if path == p.model {
                    (path, content)
                } else {
                    let c = gguf::read_content(&path).map_err(LlmError::Local)?;
                    (path, c)
                }
            }
        };
        let device = Device::Cpu;
        let weights = gguf::load(&path, content, &device, p.engine).map_err(LlmError::Local)?;
        let trie = Arc::new(VocabTrie::new(
            tokenizer.len(),
            (0..tokenizer.len() as u32)
                .filter(|&i| !tokenizer.is_control(i))
                .map(|i| (i, tokenizer.token_bytes(i))),
        ));
        Ok(LocalModel {
            inner: Arc::new(Inner {
                name: name.to_string(),
                model_name,
                weights: Mutex::new(weights),
                tokenizer,
                template,
                trie,
                guide: std::sync::OnceLock::new(),
                stops,
                settings: p.clone(),
                device,
            }),
        })
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.inner.tokenizer
    }

    /// The model file's path as configured.
    pub fn model_path(&self) -> PathBuf {
        self.inner.settings.model.clone()
    }

    /// Render a conversation with the model's chat template.
    pub fn render(&self, messages: &[Message]) -> Result<String, LlmError> {
        self.inner
            .template
            .render(messages)
            .map_err(|e| LlmError::Local(e.to_string()))
    }

    /// Generate a reply, blocking (the async [`ChatModel::chat`] runs this
    /// on a blocking thread). Returns the reply and its timings.
    pub fn generate(
        &self,
        messages: &[Message],
        options: &ChatOptions,
    ) -> Result<(ChatResponse, Timings), LlmError> {
        let inner = &*self.inner;
        let started = Instant::now();
        let local = |e: candle_core::Error| LlmError::Local(e.to_string());
        let prompt = self.render(messages)?;
        let mut tokens = inner
            .tokenizer
            .encode(&prompt, true)
            .map_err(|e| LlmError::Local(e.to_string()))?;
        if inner.tokenizer.add_bos() {
            if let Some(b) = inner.tokenizer.bos() {
                if tokens.first() != Some(&b) {
                    tokens.insert(0, b);
                }
            }
        }
        let mut active = match &options.constraint {
            None => None,
            Some(c) => Some(self.constrain(c)?),
        };
        let mut weights = inner
            .weights
            .lock()
            .map_err(|_| LlmError::Local("the model is poisoned by an earlier panic".into()))?;
        let limit = inner.settings.context_tokens.min(weights.max_positions());
        if tokens.len() >= limit {
            return Err(LlmError::Local(format!(
                "the prompt has {} tokens; the context holds {limit}",
                tokens.len()
            )));
        }
        let max_new = options.max_tokens.min(limit - tokens.len());
        let settings = sampler::Settings {
            temperature: options.temperature as f32,
            top_p: options.top_p as f32,
            top_k: inner.settings.top_k,
            repeat_penalty: inner.settings.repeat_penalty,
        };
        let seed = options.seed.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0)
        });
        let mut rng = Rng::seed(seed);
        let (mut logits, mut t) = prefill(&mut weights, &tokens, &inner.device, true)?;

        let t1 = Instant::now();
        let mut out: Vec<u32> = Vec::new();
        let mut all = tokens.clone();
        let mut finish = FinishReason::Length;
        let mut text_bytes: Vec<u8> = Vec::new();
        for _ in 0..max_new {
            let mut l: Vec<f32> = logits
                .squeeze(0)
                .and_then(|x| x.to_dtype(candle_core::DType::F32))
                .and_then(|x| x.to_vec1())
                .map_err(local)?;
            let mask = match &mut active {
                Some(a) => {
                    let tm = Instant::now();
                    let mut mask = a.mask().map_err(|e| {
                        LlmError::Local(format!(
                            "no token can continue the constrained output ({e})"
                        ))
                    })?;
                    if a.is_complete() {
                        for &e in &inner.stops {
                            if let Some(x) = mask.get_mut(e as usize) {
                                *x = true;
                            }
                        }
                    }
                    t.mask_seconds += tm.elapsed().as_secs_f64();
                    Some(mask)
                }
                None => None,
            };
            let recent_from = all.len().saturating_sub(inner.settings.repeat_last_n);
            let Some(next) = sampler::sample(
                &mut l,
                mask.as_deref(),
                &all[recent_from..],
                &settings,
                &mut rng,
            ) else {
                return Err(LlmError::Local(
                    "no token can continue the constrained output (the schema admits nothing here)"
                        .into(),
                ));
            };
            if inner.stops.contains(&next) {
                finish = FinishReason::Stop;
                break;
            }
            out.push(next);
            all.push(next);
            text_bytes.extend_from_slice(inner.tokenizer.token_bytes(next));
            if let Some(a) = &mut active {
                if !a.advance(next, inner.tokenizer.token_bytes(next)) {
                    return Err(LlmError::Local(
                        "internal: a sampled token left the constraint".into(),
                    ));
                }
                if a.is_finished() {
                    finish = FinishReason::ConstraintComplete;
                    break;
                }
            }
            if let Some(cut) = options
                .stop
                .iter()
                .filter(|s| !s.is_empty())
                .filter_map(|s| find(&text_bytes, s.as_bytes()))
                .min()
            {
                text_bytes.truncate(cut);
                finish = FinishReason::StopSequence;
                break;
            }
            let input = Tensor::new(&[next], &inner.device)
                .and_then(|x| x.unsqueeze(0))
                .map_err(local)?;
            logits = weights.forward(&input, all.len() - 1).map_err(local)?;
        }
        t.generated_tokens = out.len();
        t.generation_seconds = t1.elapsed().as_secs_f64();
        tracing::debug!(
            "{}: prompt {} tokens in {:.3} s, generated {} tokens in {:.3} s ({:.3} s computing masks)",
            inner.name,
            t.prompt_tokens,
            t.prompt_seconds,
            t.generated_tokens,
            t.generation_seconds,
            t.mask_seconds
        );
        let text = String::from_utf8_lossy(&text_bytes).into_owned();
        Ok((
            ChatResponse {
                text,
                usage: Usage {
                    prompt_tokens: tokens.len() as u64,
                    completion_tokens: out.len() as u64,
                    cached_prompt_tokens: t.reused_prompt_tokens as u64,
                },
                latency_seconds: started.elapsed().as_secs_f64(),
                finish,
                model: inner.model_name.clone(),
                cost_usd: None,
            },
            t,
        ))
    }
}

impl LocalModel {
    /// Speed measurement: one prompt pass over `prompt_tokens` tokens of
    /// text, then `generate` greedy tokens (end-of-turn ignored).
    pub fn bench(&self, prompt_tokens: usize, generate: usize) -> Result<Timings, LlmError> {
        let inner = &*self.inner;
        let local = |e: candle_core::Error| LlmError::Local(e.to_string());
        let text = "The quick brown fox jumps over the lazy dog while a neural architecture search explores cells of convolutions, pools and skip connections. ";
        let mut tokens = Vec::new();
        while tokens.len() < prompt_tokens.max(1) {
            tokens.extend(
                inner
                    .tokenizer
                    .encode(text, false)
                    .map_err(|e| LlmError::Local(e.to_string()))?,
            );
        }
        tokens.truncate(prompt_tokens.max(1));
        let mut weights = inner
            .weights
            .lock()
            .map_err(|_| LlmError::Local("the model is poisoned by an earlier panic".into()))?;
        let limit = inner.settings.context_tokens.min(weights.max_positions());
        if tokens.len() + generate >= limit {
            return Err(LlmError::Local(format!(
                "{} + {generate} tokens do not fit the context of {limit}",
                tokens.len()
            )));
        }
        let (mut logits, mut t) = prefill(&mut weights, &tokens, &inner.device, false)?;
        let t1 = Instant::now();
        for pos in tokens.len()..tokens.len() + generate {
            let next = logits
                .squeeze(0)
                .and_then(|x| x.argmax(0))
                .and_then(|x| x.to_scalar::<u32>())
                .map_err(local)?;
            let input = Tensor::new(&[next], &inner.device)
                .and_then(|x| x.unsqueeze(0))
                .map_err(local)?;
            logits = weights.forward(&input, pos).map_err(local)?;
        }
        t.generated_tokens = generate;
        t.generation_seconds = t1.elapsed().as_secs_f64();
        Ok(t)
    }
}

impl LocalModel {
    /// The vocabulary's end-of-sequence id (else the first stop token).
    fn eos(&self) -> u32 {
        let inner = &*self.inner;
        inner
            .tokenizer
            .eos()
            .or_else(|| inner.stops.first().copied())
            .unwrap_or(0)
    }

    /// The constraint of one reply, by the profile's implementation.
    fn constrain(&self, c: &Constraint) -> Result<Active, LlmError> {
        let inner = &*self.inner;
        let setup = |e: super::constrain::ConstraintError| LlmError::Setup(e.to_string());
        if inner.settings.constraint_engine == ConstraintEngine::Llguidance {
            let guide = inner.guide.get_or_init(|| {
                let t = Instant::now();
                let tok = &inner.tokenizer;
                let g = Guide::new(tok.len(), self.eos(), |i| {
                    (!tok.is_control(i)).then(|| tok.token_bytes(i))
                })
                .map_err(|e| e.to_string());
                tracing::debug!(
                    "llguidance over {} tokens: {:.3} s",
                    tok.len(),
                    t.elapsed().as_secs_f64()
                );
                g
            });
            return match guide {
                Ok(g) => g
                    .start(c)
                    .map(|g| Active::Guidance(Box::new(g)))
                    .map_err(setup),
                Err(e) => Err(LlmError::Setup(format!("llguidance: {e}"))),
            };
        }
        let m = Matcher::compile(c).map_err(setup)?;
        Ok(Active::seki(Masker::new(m, Arc::clone(&inner.trie))))
    }

    /// Cost of computing constraint masks from scratch (no mask cache), by
    /// the profile's implementation: the seconds each mask took along
    /// `text`, for the start and after each of its tokens.
    pub fn mask_cost(&self, constraint: &Constraint, text: &str) -> Result<Vec<f64>, LlmError> {
        let tok = &self.inner.tokenizer;
        let ids = tok
            .encode(text, false)
            .map_err(|e| LlmError::Local(e.to_string()))?;
        let leaves = || LlmError::Local(format!("the text leaves the constraint: {text}"));
        let mut out = Vec::with_capacity(ids.len() + 1);
        let mut active = self.constrain(constraint)?;
        for step in 0..=ids.len() {
            if active.is_finished() {
                break;
            }
            let t = Instant::now();
            let mask = active.mask_uncached().map_err(|_| leaves())?;
            out.push(t.elapsed().as_secs_f64());
            tracing::debug!(
                "mask: {} allowed tokens",
                mask.iter().filter(|x| **x).count()
            );
            if let Some(&id) = ids.get(step) {
                if !active.advance(id, tok.token_bytes(id)) {
                    return Err(leaves());
                }
            }
        }
        Ok(out)
    }
}

/// Size Candle's CPU thread pools. Candle reads `CANDLE_NUM_THREADS` and
/// `RAYON_NUM_THREADS` once, when its pools start (at the first model
/// operation of the process), and offers no other setting; so this sets them
/// once, before any model runs, and only when the user has not set them.
fn set_threads(n: usize) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        for var in ["CANDLE_NUM_THREADS", "RAYON_NUM_THREADS"] {
            if std::env::var_os(var).is_none() {
                std::env::set_var(var, n.to_string());
            }
        }
    });
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[async_trait::async_trait]
impl ChatModel for LocalModel {
    fn name(&self) -> String {
        format!("gguf:{}:{}", self.inner.name, self.inner.model_name)
    }

    async fn chat(
        &self,
        messages: &[Message],
        options: &ChatOptions,
    ) -> Result<ChatResponse, LlmError> {
        let me = self.clone();
        let messages = messages.to_vec();
        let options = options.clone();
        tokio::task::spawn_blocking(move || me.generate(&messages, &options).map(|r| r.0))
            .await
            .map_err(|e| LlmError::Local(format!("generation thread failed: {e}")))?
    }
}

/// Run the prompt: the logits of its last position, and timings with the
/// prompt part filled in. With `reuse`, the cached positions the prompt
/// begins with are kept where the implementation can (seki's engine: a
/// conversation that grows, or several replies to one prompt, run only the
/// new tokens); otherwise the cache starts afresh.
fn prefill(
    weights: &mut gguf::Weights,
    tokens: &[u32],
    device: &candle_core::Device,
    reuse: bool,
) -> Result<(Tensor, Timings), LlmError> {
    let local = |e: candle_core::Error| LlmError::Local(e.to_string());
    let t0 = Instant::now();
    let kept = if reuse {
        weights.reuse_prefix(tokens)
    } else {
        weights.clear();
        0
    };
    let input = Tensor::new(&tokens[kept..], device)
        .and_then(|x| x.unsqueeze(0))
        .map_err(local)?;
    let logits = weights.forward(&input, kept).map_err(local)?;
    let t = Timings {
        prompt_tokens: tokens.len(),
        prompt_seconds: t0.elapsed().as_secs_f64(),
        reused_prompt_tokens: kept,
        ..Default::default()
    };
    Ok((logits, t))
}
