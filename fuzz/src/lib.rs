//! A fuzz harness for seki's parsers that runs on stable Rust.
//!
//! Each [`Target`] is one parser with a seed corpus of real files (the
//! shipped knowledge base and config, recorded journals and LLM replies,
//! the real GGUF header, real Fashion-MNIST IDX bytes, ...), a dictionary of
//! tokens that matter to it, and optionally a generator that builds
//! structured inputs from random bytes with [`arbitrary`]. [`run`] feeds a
//! target `n` inputs, each a seed or a generated input put through a few
//! deterministic mutations (bit flips, byte and block edits, splices of
//! other seeds, dictionary tokens, interesting integers), catches panics,
//! and writes each panicking input to a folder. The same seed gives the same
//! inputs, so a finding can be replayed (`seki-fuzz --replay FILE`).
//!
//! Besides "no panic", several targets check a property of what they
//! accept: an architecture re-parses from its printed forms, a config
//! re-parses from its snapshot, text the schema automaton completes is
//! JSON that the schema's validator accepts.

pub mod mutate;
pub mod targets;

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::Instant;

pub use mutate::Rng;
pub use targets::{targets, Target, Verdict};

/// What one target's run found.
#[derive(Debug, Clone)]
pub struct Report {
    /// The target.
    pub name: &'static str,
    /// Inputs run.
    pub inputs: u64,
    /// Inputs the parser accepted.
    pub accepted: u64,
    /// Inputs it rejected with an error.
    pub rejected: u64,
    /// Inputs that panicked (a panic or a broken property).
    pub panics: u64,
    /// The first panics: message and where the input was written.
    pub findings: Vec<(String, Option<PathBuf>)>,
    /// Seconds the run took.
    pub seconds: f64,
    /// The slowest input, in milliseconds.
    pub slowest_ms: f64,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<12} {:>9} inputs  {:>9} accepted  {:>9} rejected  {} panics  {:.1} s (slowest {:.1} ms)",
            self.name,
            self.inputs,
            self.accepted,
            self.rejected,
            self.panics,
            self.seconds,
            self.slowest_ms
        )
    }
}

thread_local! {
    /// Set while an input runs: the panic hook stores the message here
    /// instead of printing it.
    static CAUGHT: RefCell<Option<Option<String>>> = const { RefCell::new(None) };
}

/// Install a panic hook that keeps quiet about panics of fuzzed inputs (and
/// passes any other panic to the previous hook). Idempotent.
pub fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let handled = CAUGHT.with(|c| {
                let mut c = c.borrow_mut();
                match c.as_mut() {
                    Some(slot) => {
                        let msg = info
                            .payload()
                            .downcast_ref::<&str>()
                            .map(|s| s.to_string())
                            .or_else(|| info.payload().downcast_ref::<String>().cloned())
                            .unwrap_or_else(|| "(non-string panic)".into());
                        let at = info
                            .location()
                            .map(|l| format!(" at {}:{}", l.file(), l.line()))
                            .unwrap_or_default();
                        *slot = Some(format!("{msg}{at}"));
                        true
                    }
                    None => false,
                }
            });
            if !handled {
                previous(info);
            }
        }));
    });
}

/// Run one input, catching a panic: `Ok(verdict)` or `Err(message)`.
pub fn run_one(target: &Target, input: &[u8]) -> Result<Verdict, String> {
    install_panic_hook();
    CAUGHT.with(|c| *c.borrow_mut() = Some(None));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (target.run)(input)));
    let msg = CAUGHT.with(|c| c.borrow_mut().take().flatten());
    r.map_err(|_| msg.unwrap_or_else(|| "panic".into()))
}

/// A short, stable name for an input.
pub fn fingerprint(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Feed `target` `inputs` inputs derived from `seed`; panicking inputs go
/// to `crashes/<target>/` when given. `progress` is called now and then
/// with the count done.
pub fn run(
    target: &Target,
    inputs: u64,
    seed: u64,
    crashes: Option<&Path>,
    mut progress: impl FnMut(u64),
) -> Report {
    let started = Instant::now();
    let mut rng = Rng::new(seed ^ mutate::hash_str(target.name));
    let mut report = Report {
        name: target.name,
        inputs: 0,
        accepted: 0,
        rejected: 0,
        panics: 0,
        findings: Vec::new(),
        seconds: 0.0,
        slowest_ms: 0.0,
    };
    let mut input = Vec::new();
    for i in 0..inputs {
        target.input(&mut rng, &mut input);
        let t = Instant::now();
        let r = run_one(target, &input);
        report.slowest_ms = report.slowest_ms.max(t.elapsed().as_secs_f64() * 1e3);
        report.inputs += 1;
        match r {
            Ok(Verdict::Accepted) => report.accepted += 1,
            Ok(Verdict::Rejected) => report.rejected += 1,
            Err(msg) => {
                report.panics += 1;
                let saved = crashes.and_then(|dir| {
                    let dir = dir.join(target.name);
                    std::fs::create_dir_all(&dir).ok()?;
                    let p = dir.join(format!("{}.bin", fingerprint(&input)));
                    std::fs::write(&p, &input).ok()?;
                    Some(p)
                });
                if report.findings.len() < 20 {
                    report.findings.push((msg, saved));
                }
            }
        }
        if (i + 1) % 50_000 == 0 {
            progress(i + 1);
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    report
}
