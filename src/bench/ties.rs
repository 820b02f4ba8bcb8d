//! The tie rule under evaluation noise (`seki bench noise-ties`): a local
//! search on the NAS-Bench-201 table with Gaussian noise added, each
//! decision checked against the noiseless table.

use super::mean_std;
use crate::eval::Nb201Table;
use serde::Serialize;

/// Settings of the noise-tie measurement ([`noise_ties`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NoiseTies {
    /// Gaussian noise (points) added to the table's validation accuracy.
    pub noise_sd: f64,
    /// Tie thresholds compared (standard errors; 0: strict comparison).
    pub z: Vec<f64>,
    /// Independent runs per threshold (each its own noise draw and start).
    pub seeds: usize,
    /// Children evaluated per run.
    pub steps: usize,
}

/// What one tie threshold did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TieResult {
    /// The threshold.
    pub z: f64,
    /// What a tie did to the current architecture.
    pub on_tie: crate::agent::OnTie,
    /// Child-against-parent decisions made.
    pub decisions: usize,
    /// Decisions "improved": clearly better than the current architecture
    /// (what the LLM is told).
    pub improved: usize,
    /// Of those, children whose noiseless score was higher: the precision
    /// of "improved".
    pub improved_truly: usize,
    /// Children whose noiseless score was higher than their parent's.
    pub truly_better: usize,
    /// Decisions that were ties (within noise).
    pub ties: usize,
    /// Mean noiseless 12-epoch validation accuracy of the final current
    /// architecture.
    pub final_valid_mean: f64,
    /// Mean 200-epoch test accuracy of the final current architecture.
    pub final_test_mean: f64,
    /// Its sample standard deviation over runs.
    pub final_test_sd: f64,
}

/// Measure the agent's "did the child improve on its parent" decision under
/// evaluation noise, without training or an LLM: on the NAS-Bench-201 table
/// with Gaussian noise of `noise_sd` (each run its own draw), a local
/// search keeps a current architecture, proposes a random single-edge
/// mutation of it, says "improved" when the child is better by more than
/// `z` standard errors, and lets the child replace the current one by the
/// agent's rule ([`crate::agent::replaces_current`]) with each `on_tie`
/// choice. Each decision is checked against the noiseless table.
pub fn noise_ties(table: &Nb201Table, s: &NoiseTies) -> Vec<TieResult> {
    use crate::agent::OnTie;
    let mut out = Vec::new();
    for &z in &s.z {
        out.push(tie_run(table, s, z, OnTie::Higher));
        if z > 0.0 {
            out.push(tie_run(table, s, z, OnTie::Keep));
            out.push(tie_run(table, s, z, OnTie::Child));
        }
    }
    out
}

fn tie_run(table: &Nb201Table, s: &NoiseTies, z: f64, on_tie: crate::agent::OnTie) -> TieResult {
    use crate::space::nb201::Nb201Cell;
    {
        let mut r = TieResult {
            z,
            on_tie,
            decisions: 0,
            improved: 0,
            improved_truly: 0,
            truly_better: 0,
            ties: 0,
            final_valid_mean: 0.0,
            final_test_mean: 0.0,
            final_test_sd: 0.0,
        };
        let (mut valids, mut tests) = (Vec::new(), Vec::new());
        for seed in 0..s.seeds as u64 {
            let noisy = table.clone().with_noise(s.noise_sd, seed);
            let mut rng = crate::rng::Rng::seed(seed ^ 0x71E5);
            let look = |c: &Nb201Cell| -> Option<(f64, Option<f64>, f64, f64)> {
                let row = noisy.row(c)?;
                let score = noisy.noisy_score(c, 0)?;
                Some((score, noisy.score_se(score), row.valid_12ep, row.test_200ep))
            };
            let mut current = Nb201Cell::random(&mut rng);
            let Some(mut cur) = look(&current) else {
                continue;
            };
            let mut seen = std::collections::HashSet::from([current.code()]);
            for _ in 0..s.steps {
                let mut child = current.mutate(&mut rng);
                for _ in 0..50 {
                    if !seen.contains(&child.code()) {
                        break;
                    }
                    child = current.mutate(&mut rng);
                }
                seen.insert(child.code());
                let Some(ch) = look(&child) else { continue };
                r.decisions += 1;
                let truly = ch.2 > cur.2;
                r.truly_better += usize::from(truly);
                let cmp = crate::stats::compare(ch.0, ch.1, cur.0, cur.1, z);
                r.ties += usize::from(cmp == crate::stats::Comparison::Tie);
                if cmp == crate::stats::Comparison::Better {
                    r.improved += 1;
                    r.improved_truly += usize::from(truly);
                }
                if crate::agent::replaces_current(ch.0, ch.1, cur.0, cur.1, z, on_tie) {
                    current = child;
                    cur = ch;
                }
            }
            valids.push(cur.2);
            tests.push(cur.3);
        }
        r.final_valid_mean = mean_std(&valids).0;
        (r.final_test_mean, r.final_test_sd) = mean_std(&tests);
        r
    }
}

/// The noise-tie results as a text table.
pub fn render_ties(s: &NoiseTies, results: &[TieResult]) -> String {
    let mut out = format!(
        "noise sd {} points on the 12-epoch validation accuracy; {} runs x {} children each\n",
        s.noise_sd, s.seeds, s.steps
    );
    out.push_str(&format!(
        "{:>5}  {:>7}  {:>9}  {:>8}  {:>22}  {:>20}  {:>6}  {:>17}  {:>17}\n",
        "tie_z",
        "on tie",
        "decisions",
        "improved",
        "of them truly better",
        "true gains detected",
        "ties",
        "final valid (true)",
        "final test 200ep"
    ));
    for r in results {
        let pct = |a: usize, b: usize| {
            if b == 0 {
                "-".to_string()
            } else {
                format!("{:.1}%", 100.0 * a as f64 / b as f64)
            }
        };
        out.push_str(&format!(
            "{:>5}  {:>7}  {:>9}  {:>8}  {:>22}  {:>20}  {:>6}  {:>17.2}  {:>17}\n",
            r.z,
            if r.z == 0.0 {
                "-"
            } else {
                match r.on_tie {
                    crate::agent::OnTie::Higher => "higher",
                    crate::agent::OnTie::Keep => "keep",
                    crate::agent::OnTie::Child => "child",
                }
            },
            r.decisions,
            r.improved,
            pct(r.improved_truly, r.improved),
            pct(r.improved_truly, r.truly_better),
            r.ties,
            r.final_valid_mean,
            format!("{:.2} ± {:.2}", r.final_test_mean, r.final_test_sd)
        ));
    }
    out
}
