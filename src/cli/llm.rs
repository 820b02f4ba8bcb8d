//! `seki llm`: talk to a configured LLM profile and measure its speed.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use seki::llm::{ChatOptions, Constraint, Message, Profile};
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
pub enum LlmCommand {
    /// Send one prompt and print the reply (usage goes to stderr).
    Chat(ChatArgs),
    /// Measure prompt and generation speed (tokens/s) of a local profile.
    Bench(BenchArgs),
}

#[derive(Debug, Args)]
pub struct ChatArgs {
    /// The user message.
    pub prompt: String,
    /// Profile from [llm.profiles] [config: llm.default_profile].
    #[arg(long, value_name = "PROFILE")]
    pub llm: Option<String>,
    /// A JSON schema file the reply must satisfy (enforced while decoding
    /// by local models; requested from servers and checked afterwards).
    #[arg(long, value_name = "FILE")]
    pub schema: Option<PathBuf>,
    /// A regular expression the whole reply must match (enforced while
    /// decoding by local models; an instruction to servers, checked
    /// afterwards).
    #[arg(long, value_name = "PATTERN", conflicts_with = "schema")]
    pub regex: Option<String>,
    /// Seed (same seed, same reply for local models).
    #[arg(long)]
    pub seed: Option<u64>,
    /// A system message.
    #[arg(long, value_name = "TEXT")]
    pub system: Option<String>,
    /// Most tokens to generate.
    #[arg(long, default_value_t = 256)]
    pub max_tokens: usize,
    /// Sampling temperature (0: greedy).
    #[arg(long, default_value_t = 0.7)]
    pub temperature: f64,
    /// Print the whole response (text, usage, latency, finish reason) as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Profile from [llm.profiles] [config: llm.default_profile].
    #[arg(long, value_name = "PROFILE")]
    pub llm: Option<String>,
    /// Prompt length in tokens.
    #[arg(long, default_value_t = 128)]
    pub prompt_tokens: usize,
    /// Tokens to generate.
    #[arg(long, default_value_t = 64)]
    pub tokens: usize,
    /// Print JSON (keys prompt_tokens_per_s, generation_tokens_per_s, ...).
    #[arg(long)]
    pub json: bool,
}

pub fn run(config: Option<&Path>, c: LlmCommand) -> Result<()> {
    let loaded = super::load_config(config)?;
    match c {
        LlmCommand::Chat(a) => chat(&loaded.config, a),
        LlmCommand::Bench(a) => bench(&loaded.config, a),
    }
}

fn chat(config: &seki::config::Config, a: ChatArgs) -> Result<()> {
    let schema = match &a.schema {
        None => None,
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read schema file {}", p.display()))?;
            let v: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", p.display()))?;
            seki::llm::constrain::Grammar::compile(&v)
                .with_context(|| format!("schema file {}", p.display()))?;
            Some(Constraint::JsonSchema(v))
        }
    };
    let constraint = match &a.regex {
        Some(p) => {
            seki::llm::constrain::RegexDfa::new(p)?;
            Some(Constraint::Regex(p.clone()))
        }
        None => schema,
    };
    let model = seki::llm::from_profile(&config.llm, a.llm.as_deref())?;
    let mut messages = Vec::new();
    if let Some(s) = &a.system {
        messages.push(Message::system(s.clone()));
    }
    messages.push(Message::user(a.prompt.clone()));
    let options = ChatOptions {
        temperature: a.temperature,
        max_tokens: a.max_tokens,
        seed: a.seed,
        constraint: constraint.clone(),
        ..Default::default()
    };
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let r = rt.block_on(model.chat(&messages, &options))?;
    if let Some(c) = &constraint {
        if let Err(e) = seki::llm::constrain::check(c, &r.text) {
            let what = match c {
                Constraint::JsonSchema(_) => "schema",
                Constraint::Regex(_) => "pattern",
            };
            bail!(
                "the reply does not satisfy the {what}: {e}\nreply: {}",
                r.text
            );
        }
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!("{}", r.text);
    }
    let cost = r
        .cost_usd
        .map(|c| format!(", cost ${c:.6}"))
        .unwrap_or_default();
    eprintln!(
        "usage: {} prompt + {} completion tokens ({} of the prompt cached), {:.2} s, finish {:?}, model {}{cost}",
        r.usage.prompt_tokens,
        r.usage.completion_tokens,
        r.usage.cached_prompt_tokens,
        r.latency_seconds,
        r.finish,
        r.model
    );
    Ok(())
}

fn bench(config: &seki::config::Config, a: BenchArgs) -> Result<()> {
    let (name, profile) = config.llm.profile(a.llm.as_deref())?;
    let Profile::Gguf(p) = profile else {
        bail!("seki llm bench measures local (kind = \"gguf\") profiles; '{name}' is a remote profile");
    };
    let model = seki::llm::LocalModel::load(name, p)?;
    // One short warm-up run, then the measured one.
    model.bench(8, 2)?;
    let t = model.bench(a.prompt_tokens, a.tokens)?;
    let pps = t.prompt_tokens as f64 / t.prompt_seconds.max(1e-9);
    let gps = t.generated_tokens as f64 / t.generation_seconds.max(1e-9);
    // Constrained decoding: one DARTS proposal (masks cached per state, as
    // in use), then every mask along it again from scratch, and the widest
    // mask there is (inside a free string, where almost every token fits).
    let notation = Constraint::Regex(seki::space::notation::arch_pattern(
        seki::space::Space::Darts,
        1,
    ));
    let ask = [Message::user(format!(
        "Propose a DARTS architecture, written as {}.",
        seki::space::notation::format_hint(seki::space::Space::Darts)
    ))];
    let mut opts = ChatOptions {
        temperature: 0.8,
        max_tokens: 400,
        seed: Some(0),
        constraint: Some(notation.clone()),
        ..Default::default()
    };
    let (r, ct) = model.generate(&ask, &opts)?;
    // A second sample of the same prompt (another seed): its prefill is
    // shared with the first (prefix reuse), as the agent's several
    // candidates per prompt are.
    opts.seed = Some(1);
    let (_, ct2) = model.generate(&ask, &opts)?;
    let cold = model.mask_cost(&notation, &r.text)?;
    let free = model.mask_cost(
        &Constraint::JsonSchema(serde_json::json!({"type": "string"})),
        "\"",
    )?;
    let c_gps = ct.generated_tokens as f64 / ct.generation_seconds.max(1e-9);
    let mask_ms_cached = 1e3 * ct.mask_seconds / (ct.generated_tokens.max(1) as f64);
    let mask_ms_cold = 1e3 * cold.iter().sum::<f64>() / cold.len().max(1) as f64;
    let mask_ms_free = 1e3 * free.last().copied().unwrap_or(0.0);
    // Masks against the unconstrained decode step they precede.
    let mask_share = mask_ms_cached / (1e3 / gps.max(1e-9));
    let mask_pct = 100.0 * mask_share;
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "profile": name,
                "model": p.model.display().to_string(),
                "requantize": p.requantize,
                "prompt_tokens": t.prompt_tokens,
                "generated_tokens": t.generated_tokens,
                "prompt_tokens_per_s": pps,
                "generation_tokens_per_s": gps,
                "constrained_tokens": ct.generated_tokens,
                "constrained_generation_tokens_per_s": c_gps,
                "mask_ms_per_token_cached": mask_ms_cached,
                "mask_ms_per_state_uncached": mask_ms_cold,
                "mask_ms_free_string_uncached": mask_ms_free,
                "mask_share_of_decode_step": mask_share,
                "sample_prompt_tokens": ct.prompt_tokens,
                "first_sample_prompt_seconds": ct.prompt_seconds,
                "second_sample_reused_prompt_tokens": ct2.reused_prompt_tokens,
                "second_sample_prompt_seconds": ct2.prompt_seconds,
            })
        );
    } else {
        println!(
            "profile {name} ({})\nprompt:     {} tokens, {pps:.1} tokens/s\ngeneration: {} tokens, {gps:.1} tokens/s\nconstrained (DARTS notation): {} tokens, {c_gps:.1} tokens/s; masks {mask_ms_cached:.3} ms/token as used (cached, {mask_pct:.1}% of a decode step), {mask_ms_cold:.3} ms/state from scratch, {mask_ms_free:.3} ms for the widest (free JSON string)\nsecond sample of that prompt: {} of {} prompt tokens reused, prefill {:.1} ms (first sample {:.1} ms)",
            p.model.display(),
            t.prompt_tokens,
            t.generated_tokens,
            ct.generated_tokens,
            ct2.reused_prompt_tokens,
            ct2.prompt_tokens,
            1e3 * ct2.prompt_seconds,
            1e3 * ct.prompt_seconds,
        );
    }
    Ok(())
}
