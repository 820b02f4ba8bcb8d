//! The score-blind stand-in: a model that reads nothing. Asked for a
//! constrained reply (an architecture in the space's notation, a JSON
//! choice, a claim), it draws one at random from what the constraint allows;
//! asked for free text, it answers a fixed filler. Seeded, so a session with
//! it is as reproducible as any other.
//!
//! A pattern with finitely many replies (the architecture notations) is
//! drawn uniformly over its replies: each byte with probability in
//! proportion to the replies that follow it, counted once per pattern. A
//! walk that picked bytes uniformly would favour ops whose codes share few
//! prefixes (`none`, `skip`, `avg` over `conv1` and `conv3`, each of which
//! has half of `conv…`), a stand-in weaker than chance. Other constraints
//! (JSON schemas with free strings) are a walk over the allowed bytes.
//!
//! It is the baseline that measures what the language model adds: the same
//! agent, prompts, operators and budgets, with the model's reading of the
//! prompt taken away. Whatever seki gains over it is the model's.

use super::constrain::{MatchState, Matcher};
use super::{
    ChatModel, ChatOptions, ChatResponse, Constraint, FinishReason, LlmError, Message, Usage,
};
use crate::rng::Rng;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// The reply to a request for free text.
pub const FILLER: &str =
    "No analysis: this is the score-blind stand-in, which reads neither scores nor prompts.";

/// Bytes a drawn reply may take before the draw starts again.
const MAX_BYTES: usize = 4096;
/// Draws tried before giving up on a constraint.
const TRIES: usize = 64;
/// Most replies a pattern may have to be drawn uniformly (beyond it, or
/// with infinitely many, the walk is used).
const MAX_COUNT: f64 = 1e300;

/// The stand-in's profile (`kind = "blind"`).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BlindProfile {
    /// Mixed into every draw (each call's own seed comes from the session's
    /// random stream, so sessions with it are reproducible as they are).
    pub seed: u64,
}

/// The score-blind stand-in model (`kind = "blind"`).
#[derive(Debug)]
pub struct BlindModel {
    seed: u64,
    calls: AtomicU64,
    /// Per pattern, its reply counts (see [`Counts`]).
    counts: Mutex<HashMap<String, Counts>>,
}

impl BlindModel {
    /// A stand-in drawing from `seed` (mixed with each call's own seed, when
    /// the caller gives one, else with the call's number).
    pub fn new(seed: u64) -> Self {
        BlindModel {
            seed,
            calls: AtomicU64::new(0),
            counts: Mutex::new(HashMap::new()),
        }
    }
}

/// The bytes a draw chooses among: printable ASCII and the newline.
fn alphabet() -> impl Iterator<Item = u8> {
    (0x20u8..0x7f).chain(std::iter::once(b'\n'))
}

/// One random walk through the constraint's language: at each step a byte
/// drawn uniformly among those that keep a completion reachable (whitespace
/// only where nothing else is allowed), stopping at a complete reply with
/// probability one half (always where nothing may follow). `None` when the
/// walk ran past [`MAX_BYTES`] or into a dead end.
fn walk(m: &Matcher, rng: &mut Rng) -> Option<String> {
    let mut state = m.start();
    let mut out: Vec<u8> = Vec::new();
    loop {
        let complete = m.is_complete(&state);
        if complete && (!m.can_continue(&state) || rng.unit() < 0.5) {
            return String::from_utf8(out).ok();
        }
        if out.len() >= MAX_BYTES {
            return None;
        }
        let next: Vec<(u8, MatchState)> = alphabet()
            .filter_map(|b| {
                let mut s = state.clone();
                (m.step_in_place(&mut s, b) && (m.is_complete(&s) || m.can_continue(&s)))
                    .then_some((b, s))
            })
            .collect();
        let solid: Vec<&(u8, MatchState)> = next
            .iter()
            .filter(|(b, _)| !b.is_ascii_whitespace())
            .collect();
        let pool: Vec<&(u8, MatchState)> = if solid.is_empty() {
            next.iter().collect()
        } else {
            solid
        };
        if pool.is_empty() {
            return complete.then(|| String::from_utf8(out).ok()).flatten();
        }
        let k = ((rng.unit() * pool.len() as f64) as usize).min(pool.len() - 1);
        let (b, s) = pool[k].clone();
        out.push(b);
        state = s;
    }
}

/// A random reply the constraint accepts, by the walk.
pub fn draw(m: &Matcher, rng: &mut Rng) -> Option<String> {
    (0..TRIES).find_map(|_| walk(m, rng))
}

/// How many replies of at most `left` more bytes complete each state of a
/// pattern: memoised, so a pattern's counts are made once.
#[derive(Debug, Default)]
pub struct Counts {
    memo: HashMap<(MatchState, usize), f64>,
}

impl Counts {
    /// Replies of at most `left` more bytes from `s`.
    fn count(&mut self, m: &Matcher, s: &MatchState, left: usize) -> f64 {
        if let Some(&c) = self.memo.get(&(s.clone(), left)) {
            return c;
        }
        let mut c = if m.is_complete(s) { 1.0 } else { 0.0 };
        if left > 0 && m.can_continue(s) {
            for b in alphabet() {
                let mut t = s.clone();
                if m.step_in_place(&mut t, b) {
                    c += self.count(m, &t, left - 1);
                }
            }
        }
        self.memo.insert((s.clone(), left), c);
        c
    }

    /// A reply drawn uniformly among those of at most [`MAX_BYTES`] bytes;
    /// `None` when there are none or too many to count.
    pub fn uniform(&mut self, m: &Matcher, rng: &mut Rng) -> Option<String> {
        let mut s = m.start();
        let total = self.count(m, &s, MAX_BYTES);
        if !(1.0..MAX_COUNT).contains(&total) {
            return None;
        }
        let mut out = Vec::new();
        for left in (0..=MAX_BYTES).rev() {
            let here = self.count(m, &s, left);
            let mut u = rng.unit() * here;
            if m.is_complete(&s) {
                if u < 1.0 {
                    return String::from_utf8(out).ok();
                }
                u -= 1.0;
            }
            if left == 0 {
                break;
            }
            let mut next = None;
            let mut last = None;
            for b in alphabet() {
                let mut t = s.clone();
                if !m.step_in_place(&mut t, b) {
                    continue;
                }
                let c = self.count(m, &t, left - 1);
                if c <= 0.0 {
                    continue;
                }
                if u < c {
                    next = Some((b, t));
                    break;
                }
                u -= c;
                last = Some((b, t));
            }
            // Rounding may leave u a hair above the last count.
            let (b, t) = next.or(last)?;
            out.push(b);
            s = t;
        }
        m.is_complete(&s)
            .then(|| String::from_utf8(out).ok())
            .flatten()
    }
}

#[async_trait::async_trait]
impl ChatModel for BlindModel {
    fn name(&self) -> String {
        "blind (score-blind stand-in)".into()
    }

    async fn chat(
        &self,
        _messages: &[Message],
        options: &ChatOptions,
    ) -> Result<ChatResponse, LlmError> {
        let started = std::time::Instant::now();
        let n = self.calls.fetch_add(1, Ordering::Relaxed);
        let mut rng = Rng::seed(
            self.seed
                ^ options
                    .seed
                    .unwrap_or(n)
                    .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                ^ 0xB11D,
        );
        let text = match &options.constraint {
            None => FILLER.to_string(),
            Some(c) => {
                let m = Matcher::compile(c).map_err(|e| LlmError::Setup(format!("blind: {e}")))?;
                let uniform = match c {
                    Constraint::Regex(p) => {
                        let mut all = self.counts.lock().map_err(|_| {
                            LlmError::Setup(
                                "blind: the counts are poisoned by an earlier panic".into(),
                            )
                        })?;
                        all.entry(p.clone()).or_default().uniform(&m, &mut rng)
                    }
                    Constraint::JsonSchema(_) => None,
                };
                uniform.or_else(|| draw(&m, &mut rng)).ok_or_else(|| LlmError::BadReply {
                    backend: "blind".into(),
                    message: format!(
                        "no reply of at most {MAX_BYTES} bytes found in {TRIES} random draws from the constraint"
                    ),
                })?
            }
        };
        Ok(ChatResponse {
            usage: Usage {
                prompt_tokens: 0,
                completion_tokens: text.len().div_ceil(4) as u64,
                ..Usage::default()
            },
            text,
            latency_seconds: started.elapsed().as_secs_f64(),
            finish: FinishReason::Stop,
            model: "blind".into(),
            cost_usd: Some(0.0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::constrain;
    use crate::llm::Constraint;

    fn ask(m: &BlindModel, c: Option<Constraint>, seed: Option<u64>) -> String {
        let opts = ChatOptions {
            constraint: c,
            seed,
            ..ChatOptions::default()
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(m.chat(&[Message::user("anything")], &opts))
            .unwrap()
            .text
    }

    #[test]
    fn draws_vary_satisfy_the_constraint_and_repeat_with_the_seed() {
        let m = BlindModel::new(3);
        let re = Constraint::Regex("(a|bb|ccc)-[0-9]{2}".into());
        let mut seen = std::collections::BTreeSet::new();
        for s in 0..40 {
            let t = ask(&m, Some(re.clone()), Some(s));
            assert!(constrain::check(&re, &t).is_ok(), "{t:?}");
            assert_eq!(
                t,
                ask(&m, Some(re.clone()), Some(s)),
                "same seed, same reply"
            );
            seen.insert(t);
        }
        assert!(seen.len() > 20, "{seen:?}");
        let schema = Constraint::JsonSchema(serde_json::json!({
            "type": "object",
            "properties": {
                "choice": {"type": "string", "enum": ["A", "B", "C"]},
                "why": {"type": "string"}
            },
            "required": ["choice", "why"]
        }));
        let mut choices = std::collections::BTreeSet::new();
        for s in 0..30 {
            let t = ask(&m, Some(schema.clone()), Some(s));
            let v = constrain::check(&schema, &t).unwrap_or_else(|e| panic!("{t:?}: {e}"));
            choices.insert(v["choice"].as_str().unwrap().to_string());
        }
        assert_eq!(choices.len(), 3, "{choices:?}");
    }

    #[test]
    fn a_finite_pattern_is_drawn_uniformly_not_by_its_prefixes() {
        // A walk picking bytes uniformly gives `none` 1/4 and `conv3` 1/8.
        let m = BlindModel::new(9);
        let re =
            Constraint::Regex("(?:none|skip|conv1|conv3|avg) (?:none|skip|conv1|conv3|avg)".into());
        let mut n: std::collections::BTreeMap<String, usize> = Default::default();
        for s in 0..2000 {
            let t = ask(&m, Some(re.clone()), Some(s));
            assert!(constrain::check(&re, &t).is_ok(), "{t:?}");
            *n.entry(t.split(' ').next().unwrap().to_string())
                .or_default() += 1;
        }
        // 400 each expected; sd about 18.
        for (op, k) in &n {
            assert!((330..=470).contains(k), "{op}: {k} of 2000 ({n:?})");
        }
        assert_eq!(n.len(), 5);
    }

    #[test]
    fn free_text_gets_the_filler() {
        assert_eq!(ask(&BlindModel::new(1), None, None), FILLER);
    }
}
