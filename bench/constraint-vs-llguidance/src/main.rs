//! seki's grammar constraint against llguidance's on the same grammar, the
//! same vocabulary and the same texts.
//!
//! For each model file (its tokenizer only) and each grammar (the DARTS
//! compact notation's regular expression, which seki's agent uses, and the
//! JSON schema of the DARTS JSON form), every DARTS architecture of the
//! knowledge base is written in that form, tokenized by seki's tokenizer,
//! and walked token by token. At each step both engines compute the mask of
//! allowed tokens; the masks are compared (they must agree on every token
//! but end-of-sequence, which seki leaves to the sampler) and timed:
//!
//! * `fresh`: without either engine's mask cache (seki: a trie walk from
//!   the state; llguidance: `invalidate_bias_cache` before
//!   `compute_mask`), after one untimed pass so llguidance's lexer states
//!   exist, as its own benchmark measures;
//! * `as used`: each engine as it runs in generation (seki: masks cached per
//!   automaton state within one text, as within one reply; llguidance: a
//!   clone per text of one parser kept per grammar, sharing its lexer's
//!   states, with its last-mask cache);
//! * `setup`: compiling the grammar (and, once per vocabulary, seki's trie
//!   and llguidance's token trie and parser factory).
//!
//! Usage: `constraint-vs-llguidance [--rounds N] MODEL.gguf...`; the last
//! line of output is one JSON object.

use anyhow::{anyhow, bail, Context, Result};
use llguidance::api::TopLevelGrammar;
use llguidance::earley::SlicedBiasComputer;
use llguidance::toktrie::{ApproximateTokEnv, InferenceCapabilities, TokEnv, TokRxInfo, TokTrie};
use llguidance::{Matcher as LlgMatcher, ParserFactory};
use seki::llm::constrain::{Masker, MatchState, Matcher, VocabTrie};
use seki::llm::local::gguf;
use seki::llm::Constraint;
use seki::space::{notation, Space};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// The DARTS architectures of the knowledge base.
fn architectures(kb: &Path) -> Result<Vec<seki::space::Arch>> {
    let text = std::fs::read_to_string(kb).with_context(|| format!("reading {}", kb.display()))?;
    let mut out = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let v: Value = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: not JSON", kb.display(), i + 1))?;
        if v.get("space").and_then(Value::as_str) != Some("darts") {
            continue;
        }
        let arch = v
            .get("arch")
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("{}:{}: no arch", kb.display(), i + 1))?;
        out.push(Space::Darts.parse(arch)?);
    }
    if out.is_empty() {
        bail!("{}: no DARTS architectures", kb.display());
    }
    Ok(out)
}

/// A grammar in both engines' terms, with the texts to walk.
struct Case {
    name: &'static str,
    seki: Constraint,
    llg: Value,
    texts: Vec<String>,
}

fn cases(archs: &[seki::space::Arch]) -> Vec<Case> {
    let pattern = notation::arch_pattern(Space::Darts, 1);
    let schema = notation::arch_schema(Space::Darts);
    let mut compact = schema.clone();
    // seki writes compact JSON; llguidance allows whitespace unless told.
    compact["x-guidance"] = json!({"whitespace_flexible": false});
    vec![
        Case {
            name: "darts-notation-regex",
            seki: Constraint::Regex(pattern.clone()),
            llg: json!({"regex": pattern}),
            texts: archs.iter().map(notation::to_llm).collect(),
        },
        Case {
            name: "darts-json-schema",
            seki: Constraint::JsonSchema(schema),
            llg: json!({"schema": compact}),
            texts: archs.iter().map(|a| a.to_json().to_string()).collect(),
        },
        // The widest masks there are: inside a free string almost every
        // token fits.
        Case {
            name: "json-free-string",
            seki: Constraint::JsonSchema(json!({"type": "string"})),
            llg: json!({"schema": {"type": "string", "x-guidance": {"whitespace_flexible": false}}}),
            texts: archs
                .iter()
                .map(|a| Value::String(a.to_string()).to_string())
                .collect(),
        },
    ]
}

fn grammar(v: &Value) -> Result<TopLevelGrammar> {
    if let Some(rx) = v.get("regex").and_then(Value::as_str) {
        return Ok(TopLevelGrammar::from_regex(rx));
    }
    let schema = v
        .get("schema")
        .cloned()
        .ok_or_else(|| anyhow!("no grammar"))?;
    Ok(TopLevelGrammar::from_json_schema(schema))
}

/// Milliseconds since `t`.
fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

#[derive(Default)]
struct Times {
    /// Per-step mask times, ms.
    seki_fresh: Vec<f64>,
    llg_fresh: Vec<f64>,
    seki_used: Vec<f64>,
    llg_used: Vec<f64>,
    seki_setup: Vec<f64>,
    llg_setup: Vec<f64>,
    steps: usize,
    disagreements: usize,
    /// Disagreements on tokens that begin with a byte no UTF-8 text has
    /// at a character's start (a continuation byte, 0xC0, 0xC1, 0xF5-0xFF).
    stray_bytes: usize,
    /// Disagreements on tokens with DEL (0x7F), which JSON strings may
    /// hold unescaped.
    del: usize,
    allowed: usize,
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => 0.0,
        n => s[n / 2],
    }
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

struct Vocab {
    tok: seki::llm::local::tokenizer::Tokenizer,
    trie: Arc<VocabTrie>,
    env: TokEnv,
    factory: ParserFactory,
    /// Ids that are not text (control tokens, end-of-sequence).
    special: Vec<bool>,
}

fn vocab(model: &Path) -> Result<(Vocab, f64, f64)> {
    let content = gguf::read_content(model).map_err(|e| anyhow!(e))?;
    let tok = gguf::tokenizer(&content).map_err(|e| anyhow!(e))?;
    let n = tok.len();
    let special: Vec<bool> = (0..n as u32).map(|i| tok.is_control(i)).collect();
    let t = Instant::now();
    let trie = Arc::new(VocabTrie::new(
        n,
        (0..n as u32)
            .filter(|&i| !special[i as usize])
            .map(|i| (i, tok.token_bytes(i))),
    ));
    let seki_ms = ms(t);
    let t = Instant::now();
    // Control tokens get llguidance's special-token marker, so no grammar
    // text matches them (seki leaves them out of its trie).
    let words: Vec<Vec<u8>> = (0..n as u32)
        .map(|i| match special[i as usize] {
            true => [&[TokTrie::SPECIAL_TOKEN_MARKER][..], tok.token_bytes(i)].concat(),
            false => tok.token_bytes(i).to_vec(),
        })
        .collect();
    let eos = tok
        .eos()
        .ok_or_else(|| anyhow!("{}: no end-of-sequence token", model.display()))?;
    let ttrie = TokTrie::from(&TokRxInfo::new(n as u32, eos), &words);
    let env: TokEnv = Arc::new(ApproximateTokEnv::new(ttrie));
    let mut factory = ParserFactory::new(
        &env,
        InferenceCapabilities::default(),
        &SlicedBiasComputer::general_slices(),
    )?;
    factory.quiet();
    let llg_ms = ms(t);
    Ok((
        Vocab {
            tok,
            trie,
            env,
            factory,
            special,
        },
        seki_ms,
        llg_ms,
    ))
}

/// The states seki passes through along `ids` (the start and after each
/// token).
fn seki_states(a: &Matcher, v: &Vocab, ids: &[u32], text: &str) -> Result<Vec<MatchState>> {
    let mut s = a.start();
    let mut out = vec![s.clone()];
    for &id in ids {
        for &b in v.tok.token_bytes(id) {
            if !a.step_in_place(&mut s, b) {
                bail!("seki's constraint rejects {text:?}");
            }
        }
        out.push(s.clone());
    }
    Ok(out)
}

fn run_case(v: &Vocab, case: &Case, rounds: usize, t: &mut Times) -> Result<()> {
    let st = Instant::now();
    let a = &Matcher::compile(&case.seki)?;
    t.seki_setup.push(ms(st));
    let st = Instant::now();
    let template = LlgMatcher::new(Ok(v.factory.create_parser(grammar(&case.llg)?)?));
    t.llg_setup.push(ms(st));
    let eos = v.env.tok_trie().eos_token();
    for round in 0..=rounds {
        for text in &case.texts {
            let ids = v.tok.encode(text, false)?;
            let states = seki_states(a, v, &ids, text)?;
            // As in generation: seki's masks cached per state within one
            // reply; llguidance's parser cloned from one kept per grammar
            // (sharing its lexer's states) with its last-mask cache.
            let masker = Masker::new(a.clone(), Arc::clone(&v.trie));
            let mut m = template.clone();
            let mut used = template.clone();
            for (step, state) in states.iter().enumerate() {
                if m.is_stopped() {
                    // llguidance stops when only end-of-sequence remains.
                    if step + 1 != states.len() {
                        bail!("llguidance stopped early in {text:?}");
                    }
                    break;
                }
                // Fresh masks (round 0 is the untimed pass).
                m.invalidate_bias_cache();
                let t0 = Instant::now();
                let lm = m.compute_mask().map_err(|e| anyhow!("llguidance: {e}"))?;
                let l_ms = ms(t0);
                let t0 = Instant::now();
                let sm = v.trie.mask(a, state);
                let s_ms = ms(t0);
                // As used: seki's per-state cache, llguidance's own.
                let t0 = Instant::now();
                let _ = masker.mask(state);
                let su_ms = ms(t0);
                let t0 = Instant::now();
                let _ = used
                    .compute_mask()
                    .map_err(|e| anyhow!("llguidance: {e}"))?;
                let lu_ms = ms(t0);
                if round > 0 {
                    t.llg_fresh.push(l_ms);
                    t.seki_fresh.push(s_ms);
                    t.seki_used.push(su_ms);
                    t.llg_used.push(lu_ms);
                } else {
                    t.steps += 1;
                    for (id, &ok) in sm.iter().enumerate() {
                        if id as u32 == eos || v.special[id] {
                            continue;
                        }
                        t.allowed += usize::from(ok);
                        if ok != lm.is_allowed(id as u32) {
                            t.disagreements += 1;
                            let b = v.tok.token_bytes(id as u32);
                            if b.first()
                                .is_some_and(|&c| (0x80..0xC2).contains(&c) || c >= 0xF5)
                            {
                                t.stray_bytes += 1;
                            } else if b.contains(&0x7F) {
                                t.del += 1;
                            }
                            if std::env::var_os("SHOW_ALL").is_some() || t.disagreements <= 5 {
                                eprintln!(
                                    "{}: step {step} of {text:?}: token {id} {:02x?}: seki {ok}, llguidance {}",
                                    case.name,
                                    v.tok.token_bytes(id as u32),
                                    lm.is_allowed(id as u32)
                                );
                            }
                        }
                    }
                }
                if let Some(&id) = ids.get(step) {
                    m.consume_token(id)
                        .map_err(|e| anyhow!("llguidance: {e}"))?;
                    used.consume_token(id)
                        .map_err(|e| anyhow!("llguidance: {e}"))?;
                }
            }
        }
    }
    Ok(())
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mut rounds = 3usize;
    let mut models: Vec<PathBuf> = Vec::new();
    let mut kb = PathBuf::from("knowledge/architectures.jsonl");
    while let Some(a) = args.next() {
        match a.as_str() {
            "--rounds" => rounds = args.next().context("--rounds N")?.parse()?,
            "--kb" => kb = args.next().context("--kb FILE")?.into(),
            _ => models.push(a.into()),
        }
    }
    if models.is_empty() {
        bail!("usage: constraint-vs-llguidance [--rounds N] [--kb FILE] MODEL.gguf...");
    }
    let archs = architectures(&kb)?;
    let mut rows = Vec::new();
    for model in &models {
        let (v, seki_vocab_ms, llg_vocab_ms) = vocab(model)?;
        let name = model
            .file_name()
            .map_or(String::new(), |n| n.to_string_lossy().into_owned());
        for case in cases(&archs) {
            let mut t = Times::default();
            run_case(&v, &case, rounds, &mut t)?;
            println!(
                "{name} [{}], {} tokens, {} steps, {} allowed, {} disagreements ({} on tokens beginning mid-character, {} with DEL)\n  \
                 mask ms/step fresh: seki {:.4} (median {:.4}), llguidance {:.4} (median {:.4})\n  \
                 mask ms/step as used: seki {:.4}, llguidance {:.4}\n  \
                 setup ms: grammar seki {:.2}, llguidance {:.2}; vocabulary seki {:.1}, llguidance {:.1}",
                case.name,
                v.tok.len(),
                t.steps,
                t.allowed,
                t.disagreements,
                t.stray_bytes,
                t.del,
                mean(&t.seki_fresh),
                median(&t.seki_fresh),
                mean(&t.llg_fresh),
                median(&t.llg_fresh),
                mean(&t.seki_used),
                mean(&t.llg_used),
                mean(&t.seki_setup),
                mean(&t.llg_setup),
                seki_vocab_ms,
                llg_vocab_ms,
            );
            rows.push(json!({
                "model": name,
                "grammar": case.name,
                "steps": t.steps,
                "disagreements": t.disagreements,
                "disagreements_mid_character": t.stray_bytes,
                "disagreements_del": t.del,
                "seki_mask_ms_fresh": mean(&t.seki_fresh),
                "llguidance_mask_ms_fresh": mean(&t.llg_fresh),
                "seki_mask_ms_as_used": mean(&t.seki_used),
                "llguidance_mask_ms_as_used": mean(&t.llg_used),
                "fresh_ratio": mean(&t.llg_fresh) / mean(&t.seki_fresh).max(1e-12),
                "as_used_ratio": mean(&t.llg_used) / mean(&t.seki_used).max(1e-12),
                "seki_grammar_setup_ms": mean(&t.seki_setup),
                "llguidance_grammar_setup_ms": mean(&t.llg_setup),
                "seki_vocab_setup_ms": seki_vocab_ms,
                "llguidance_vocab_setup_ms": llg_vocab_ms,
            }));
        }
    }
    println!(
        "{}",
        json!({ "llguidance": "1.9.1", "rounds": rounds, "cases": rows })
    );
    Ok(())
}
