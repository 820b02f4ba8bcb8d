//! Reports: a Markdown summary of one or more run directories with SVG charts
//! (best score against evaluations; score against parameters with the Pareto
//! front), the insights with their evidence, and token and cost use; and the
//! same runs as one self-contained HTML page ([`html`]) with cell diagrams,
//! the search's lineage and sortable tables. [`kb`] renders a knowledge base
//! the same way.

pub mod activity;
pub mod html;
pub mod kb;
pub mod lineage;
pub mod page;
pub mod plot;
pub mod rungs;

use crate::eval::EvaluatorKind;
use crate::knowledge::{Insight, InsightStatus};
use crate::record::{journal, Event, PoolEntry, Reevaluation, Step, StrategyState, Summary};
use crate::stats::{self, Uncertainty};
use activity::Activity;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// A report failure.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A run directory could not be read.
    #[error("{0}")]
    Journal(#[from] journal::JournalError),
    /// A file could not be written.
    #[error(transparent)]
    Store(#[from] crate::knowledge::StoreError),
    /// `summary.json` does not read as a summary.
    #[error("{path}: not a seki summary: {message}")]
    Summary {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Nothing to report.
    #[error("{0} has no evaluations to report")]
    Empty(PathBuf),
}

/// One run as the report sees it.
#[derive(Debug, Clone)]
pub struct Run {
    /// The run directory.
    pub dir: PathBuf,
    /// Its label (session id and strategy).
    pub label: String,
    /// Its strategy.
    pub strategy: String,
    /// Its space.
    pub space: String,
    /// Evaluations in order.
    pub steps: Vec<Step>,
    /// The summary, if the session ended.
    pub summary: Option<Summary>,
    /// The insights the strategy held at the end.
    pub insights: Vec<Insight>,
    /// The session id (the run directory's name when it was made).
    pub session: String,
    /// The evaluator, as the run's config snapshot names it (empty if unknown).
    pub evaluator: String,
    /// When the session started (RFC 3339).
    pub started: String,
    /// Why it ended, if it did.
    pub end_reason: Option<String>,
    /// Seconds it ran, over all its runs.
    pub elapsed: f64,
    /// LLM use, reply outcomes, duplicates.
    pub activity: Activity,
    /// Architectures the strategy was shown (knowledge-base records and its
    /// own), so that insight evidence from outside the session can be named.
    pub pool: Vec<PoolEntry>,
    /// For each insight id, the later designs that supported it.
    pub supports: BTreeMap<String, u32>,
    /// Repeated evaluations (other seeds) of evaluated architectures.
    pub reevaluations: Vec<Reevaluation>,
}

/// The architecture a session returns, with its score and noise.
#[derive(Debug, Clone)]
pub struct Returned<'a> {
    /// Its index in `steps`.
    pub index: usize,
    /// Its first evaluation.
    pub step: &'a Step,
    /// Its score: the mean over its evaluations where it was repeated.
    pub score: f64,
    /// The standard error of `score`, when known.
    pub se: Option<f64>,
    /// Evaluations behind `score`.
    pub repeats: usize,
}

/// The evaluator a run's config snapshot names, with its dataset (empty when
/// the snapshot is missing or no longer reads as a config).
fn evaluator_of(dir: &Path) -> String {
    let path = dir.join(crate::record::CONFIG);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return String::new();
    };
    let Ok(loaded) = crate::config::Config::parse(&text, Some(&path), dir) else {
        return String::new();
    };
    let c = &loaded.config;
    match c.search.evaluator {
        EvaluatorKind::Nb201 => {
            let ds = crate::eval::nb201_table::dataset_of(&c.evaluator.nb201.table).map_or_else(
                |_| "?".to_string(),
                |d| crate::eval::nb201_table::display_dataset(&d),
            );
            format!("NAS-Bench-201 table ({ds})")
        }
        EvaluatorKind::Candle => {
            format!("candle training on {}", c.evaluator.candle.dataset.name())
        }
    }
}

fn pool_of(state: &StrategyState, into: &mut Vec<PoolEntry>) {
    for p in state.knowledge().pool {
        if !into.iter().any(|i| i.id == p.id) {
            into.push(p);
        }
    }
}

impl Run {
    /// Read a run directory.
    pub fn load(dir: &Path) -> Result<Run, ReportError> {
        let events = journal::read(&dir.join(crate::record::JOURNAL))?;
        let (mut strategy, mut space, mut session) = (String::new(), String::new(), String::new());
        let (mut started, mut end_reason, mut elapsed) = (String::new(), None, 0.0);
        let mut steps: Vec<Step> = Vec::new();
        let mut last_state = StrategyState::none();
        let mut activity = Activity::default();
        let mut pool = Vec::new();
        let mut reevaluations = Vec::new();
        for e in events {
            activity.observe(&e, steps.len());
            match e {
                Event::Start {
                    strategy: st,
                    space: sp,
                    session: se,
                    initial_state,
                    time,
                    ..
                } => {
                    strategy = st;
                    space = sp;
                    session = se;
                    started = time;
                    pool_of(&initial_state, &mut pool);
                }
                Event::Evaluation(s) => {
                    last_state = s.state.strategy_state.clone();
                    elapsed = s.state.elapsed;
                    steps.push(*s);
                }
                Event::Duplicate { state, .. } | Event::Refused { state, .. } => {
                    elapsed = state.elapsed;
                    last_state = state.strategy_state;
                }
                Event::Submitted(sub) => {
                    elapsed = sub.state.elapsed;
                    last_state = sub.state.strategy_state;
                }
                Event::End { reason, .. } => end_reason = Some(reason),
                Event::Reevaluation(r) => {
                    elapsed = r.elapsed;
                    reevaluations.push(*r);
                }
                _ => {}
            }
        }
        pool_of(&last_state, &mut pool);
        let known = last_state.knowledge();
        if steps.is_empty() {
            return Err(ReportError::Empty(dir.to_path_buf()));
        }
        let summary = read_summary(dir)?;
        Ok(Run {
            dir: dir.to_path_buf(),
            label: format!("{session} ({strategy})"),
            strategy,
            space,
            steps,
            summary,
            insights: known.insights,
            session,
            evaluator: evaluator_of(dir),
            started,
            end_reason,
            elapsed,
            activity,
            pool,
            supports: known.supports,
            reevaluations,
        })
    }

    /// An evaluation's score over it and its repeats: the mean and its
    /// uncertainty (`None` when it did not score).
    pub fn estimate(&self, step: &Step) -> Option<(f64, Option<Uncertainty>)> {
        let ok = |st: &crate::eval::Evaluation| {
            (st.status == crate::eval::EvalStatus::Ok)
                .then_some(st.score)
                .flatten()
                .map(|v| (v, st.score_se))
        };
        let mut ev: Vec<(f64, Option<f64>)> = Vec::new();
        ev.extend(ok(&step.result));
        if ev.is_empty() {
            return None;
        }
        ev.extend(
            self.reevaluations
                .iter()
                .filter(|r| r.of == step.n)
                .filter_map(|r| ok(&r.result)),
        );
        let scores: Vec<f64> = ev.iter().map(|e| e.0).collect();
        let ses: Vec<Option<f64>> = ev.iter().map(|e| e.1).collect();
        let mean = stats::mean_sd(&scores).0;
        Some((mean, Uncertainty::of_repeats(&scores, &ses).map(|x| x.1)))
    }

    /// The architecture the session returns: the summary's best (by the
    /// mean, where contenders were re-evaluated), else the best search score.
    pub fn returned(&self) -> Option<Returned<'_>> {
        let from_summary = self
            .summary
            .as_ref()
            .and_then(|s| s.best.as_ref())
            .and_then(|b| self.steps.iter().position(|s| s.n == b.evaluation));
        let index = match from_summary {
            Some(i) => i,
            None => {
                let b = self.best()?;
                self.steps.iter().position(|s| s.n == b.n)?
            }
        };
        let step = self.steps.get(index)?;
        let (score, u) = self.estimate(step)?;
        Some(Returned {
            index,
            step,
            score,
            se: u.as_ref().map(|u| u.se),
            repeats: u.as_ref().map_or(1, |u| u.repeats),
        })
    }

    /// Best score so far after each evaluation.
    pub fn best_so_far(&self) -> Vec<(usize, f64)> {
        let mut best = f64::NEG_INFINITY;
        let mut out = Vec::new();
        for s in &self.steps {
            if let Some(v) = s.result.score {
                best = best.max(v);
            }
            if best.is_finite() {
                out.push((s.n, best));
            }
        }
        out
    }

    /// As [`Self::best_so_far`], with the standard error of each best
    /// (the search's scores: rung 1).
    pub fn best_so_far_se(&self) -> Vec<(usize, f64, Option<f64>)> {
        let mut best: Option<(f64, Option<f64>)> = None;
        let mut out = Vec::new();
        for s in &self.steps {
            if let Some(v) = s.result.score {
                if best.is_none_or(|(b, _)| v > b) {
                    best = Some((v, s.result.score_se));
                }
            }
            if let Some((b, e)) = best {
                out.push((s.n, b, e));
            }
        }
        out
    }

    /// The best evaluation.
    pub fn best(&self) -> Option<&Step> {
        crate::record::best_step(&self.steps)
    }

    /// (params, score, evaluation) of evaluations whose parameter count is known.
    pub fn size_points(&self) -> Vec<(f64, f64, usize)> {
        self.steps
            .iter()
            .filter_map(|s| Some((*s.result.metrics.get("params")?, s.result.score?, s.n)))
            .collect()
    }
}

/// The session's hard budgets and its Pareto front, as markdown (empty
/// when it had neither).
pub fn budget_markdown(sum: &Summary) -> String {
    let mut md = String::new();
    if let Some(b) = &sum.budget {
        let _ = writeln!(
            md,
            "## Budget\n\n{} (costs of {}); every evaluated architecture is within it; {} proposals over it were refused without an evaluation.\n",
            b.constraints.describe(),
            b.measured_on,
            b.refused
        );
    }
    if let Some(f) = &sum.front {
        let _ = writeln!(
            md,
            "## Pareto front\n\n{} non-dominated of {} evaluations ({}); hypervolume {:.4} of the reference box {:?} (every coordinate minimised: error %, then the costs).\n",
            f.points.len(),
            sum.evaluations,
            f.objectives.join(", "),
            f.hypervolume,
            f.reference
        );
        let _ = writeln!(
            md,
            "| evaluation | score ± SE | cost | test accuracy (reported only) |\n| ---: | ---: | --- | ---: |"
        );
        for p in &f.points {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                p.evaluation,
                stats::with_se(p.score, p.score_se),
                p.cost.describe(),
                fmt_opt(p.test_accuracy, 2)
            );
        }
        md.push('\n');
    }
    md
}

/// Indices of the points no other point beats on both score (higher) and
/// parameters (fewer).
pub fn pareto_front(points: &[(f64, f64, usize)]) -> Vec<usize> {
    let mut front: Vec<usize> = (0..points.len())
        .filter(|&i| {
            let (p, s, _) = points[i];
            !points
                .iter()
                .any(|&(p2, s2, _)| p2 <= p && s2 >= s && (p2 < p || s2 > s))
        })
        .collect();
    front.sort_by(|&a, &b| points[a].0.total_cmp(&points[b].0));
    front
}

/// A run directory's `summary.json`, if the session ended (a summary that
/// does not read is an error naming the file, not a report without it).
fn read_summary(dir: &Path) -> Result<Option<Summary>, ReportError> {
    let path = dir.join(crate::record::SUMMARY);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(crate::store::io_err(&path)(e).into()),
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| ReportError::Summary {
            path,
            message: e.to_string(),
        })
}

/// Files a report wrote.
#[derive(Debug, Clone)]
pub struct Written {
    /// The Markdown report.
    pub markdown: PathBuf,
    /// The self-contained HTML report.
    pub html: PathBuf,
    /// The charts.
    pub charts: Vec<PathBuf>,
}

fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |x| format!("{x:.digits$}"))
}

/// Write `report.md` with its charts, and `report.html`, into `out` for the
/// given runs (the first is the subject; the others are compared with it).
pub fn write(runs: &[Run], out: &Path) -> Result<Written, ReportError> {
    std::fs::create_dir_all(out).map_err(crate::store::io_err(out))?;
    // What a writer killed in the middle of a report left.
    crate::store::remove_stale_temps(out);
    let mut charts = Vec::new();
    let best_chart = out.join("best_so_far.svg");
    crate::store::write_atomic(&best_chart, plot::best_so_far_file(runs).as_bytes())?;
    charts.push(best_chart);
    let subject = &runs[0];
    let points = subject.size_points();
    let pareto_chart = out.join("pareto.svg");
    let has_sizes = points.len() >= 2;
    if has_sizes {
        let svg = plot::pareto_file(subject, &points, &pareto_front(&points));
        crate::store::write_atomic(&pareto_chart, svg.as_bytes())?;
        charts.push(pareto_chart);
    }

    let mut md = String::new();
    let _ = writeln!(md, "# seki report: {}\n", subject.label);
    let _ = writeln!(md, "Run directory: `{}`  ", subject.dir.display());
    let _ = writeln!(
        md,
        "Space: {}, strategy: {}, evaluations: {}\n",
        subject.space,
        subject.strategy,
        subject.steps.len()
    );
    let _ = writeln!(md, "## Results\n");
    let _ = writeln!(md, "| run | strategy | evaluations | best score | test accuracy of best (reported only) | best found at |");
    let _ = writeln!(md, "| --- | --- | ---: | ---: | ---: | ---: |");
    for r in runs {
        let b = r.returned();
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            r.label,
            r.strategy,
            r.steps.len(),
            b.as_ref().map_or("-".into(), |b| {
                let mean = if b.repeats > 1 {
                    format!(" (mean of {})", b.repeats)
                } else {
                    String::new()
                };
                format!("{}{mean}", stats::with_se(b.score, b.se))
            }),
            fmt_opt(b.as_ref().and_then(|b| b.step.result.test_accuracy), 2),
            b.as_ref().map_or("-".into(), |b| b.step.n.to_string())
        );
    }
    let _ = writeln!(
        md,
        "\nScores are validation accuracies (%) ± one standard error: the binomial error of the validation set's size, or the spread over seeds where an architecture was evaluated more than once. Differences within about two standard errors are noise."
    );
    if let Some(b) = subject.returned() {
        let _ = writeln!(
            md,
            "\nBest architecture (evaluation {}, hash `{}`):\n\n```\n{}\n```\n",
            b.step.n, b.step.proposal.hash, b.step.proposal.arch
        );
    }
    if let Some(sum) = subject
        .summary
        .as_ref()
        .filter(|s| !s.contenders.is_empty())
    {
        let _ = writeln!(md, "## Contenders re-evaluated\n");
        let _ = writeln!(
            md,
            "The best few were trained again with other seeds; the session returns the best by the mean.\n"
        );
        let _ = writeln!(md, "| evaluation | first score | mean ± SE | evaluations | sd over seeds | test accuracy (reported only) |\n| ---: | ---: | ---: | ---: | ---: | ---: |");
        for c in &sum.contenders {
            let u = c.uncertainty.as_ref();
            let se = u.map(|u| u.se);
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} |",
                c.evaluation,
                stats::round(c.first_score, se),
                stats::with_se(c.mean, se),
                u.map_or(1, |u| u.repeats),
                fmt_opt(u.and_then(|u| u.sd), stats::decimals(se)),
                fmt_opt(c.test_accuracy, 2)
            );
        }
        if let Some(note) = &sum.contenders_note {
            let _ = writeln!(md, "\n{note}.");
        }
        md.push('\n');
    }
    if let Some(sum) = subject.summary.as_ref() {
        md.push_str(&budget_markdown(sum));
    }
    md.push_str(&rungs::markdown(subject));
    let _ = writeln!(
        md,
        "![best score so far against evaluations](best_so_far.svg)\n"
    );
    let _ = writeln!(md, "## Score against size\n");
    if has_sizes {
        let front = pareto_front(&points);
        let _ = writeln!(
            md,
            "![score against parameters, Pareto front marked](pareto.svg)\n"
        );
        let _ = writeln!(md, "Pareto front (fewest parameters first):\n");
        let _ = writeln!(
            md,
            "| evaluation | params | score |\n| ---: | ---: | ---: |"
        );
        for i in front {
            let (p, s, n) = points[i];
            let _ = writeln!(md, "| {n} | {:.0} | {s:.2} |", p);
        }
        md.push('\n');
    } else {
        let _ = writeln!(
            md,
            "This evaluator reports no parameter counts, so there is no size chart.\n"
        );
    }
    if let Some(s) = &subject.summary {
        let st = &s.strategy_stats;
        if let Some(r) = &st.replies {
            let _ = writeln!(md, "## LLM replies\n");
            let _ = writeln!(md, "| parsed first time | parsed after repair | fell back to a mutation | duplicates skipped | replies repeated (asked again) |\n| ---: | ---: | ---: | ---: | ---: |");
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} |\n",
                r.parsed_first_try,
                r.parsed_after_repair,
                r.fell_back,
                s.duplicates,
                st.llm_duplicates
            );
            if let Some(usage) = &st.usage {
                let _ = writeln!(md, "## Tokens and cost\n");
                let _ = writeln!(md, "| stage | calls | prompt tokens | completion tokens | seconds | cost (USD) |\n| --- | ---: | ---: | ---: | ---: | ---: |");
                for (stage, u) in usage {
                    let _ = writeln!(
                        md,
                        "| {stage} | {} | {} | {} | {:.1} | {:.4} |",
                        u.calls, u.prompt_tokens, u.completion_tokens, u.seconds, u.cost_usd
                    );
                }
                md.push('\n');
            }
        }
        let _ = writeln!(md, "Stopped: {}\n", s.stop_reason);
        if let Some(screen) = &st.screen {
            let _ = writeln!(
                md,
                "Zero-cost screen: untrained-network proxy {}, {:.1} CPU s of proxy scores (operators marked `zc`; never shown to the LLM).\n",
                screen.screen, screen.proxy_cpu_seconds
            );
        }
    } else {
        let _ = writeln!(
            md,
            "The session has not ended (no summary.json); resume it with `seki search --resume`.\n"
        );
    }
    let _ = writeln!(md, "## Insights\n");
    if subject.insights.is_empty() {
        let _ = writeln!(md, "No insights were distilled in this session.\n");
    }
    for i in &subject.insights {
        let evidence: Vec<String> = i.evidence.iter().map(|e| format!("`{e}`")).collect();
        let status = match i.status {
            InsightStatus::Contradicted => {
                format!(" — **contradicted** by {}", i.contradicted_by.join(", "))
            }
            InsightStatus::Active => String::new(),
        };
        let _ = writeln!(
            md,
            "- **{}**: {}{status}  \n  evidence: {}",
            i.id,
            i.text,
            evidence.join(", ")
        );
    }
    let markdown = out.join("report.md");
    crate::store::write_atomic(&markdown, md.as_bytes())?;
    let html = out.join("report.html");
    crate::store::write_atomic(&html, html::render(runs).as_bytes())?;
    Ok(Written {
        markdown,
        html,
        charts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pareto_front_keeps_only_undominated_points() {
        let pts = vec![
            (1.0, 80.0, 1),
            (2.0, 85.0, 2),
            (2.5, 84.0, 3),
            (3.0, 90.0, 4),
            (0.5, 70.0, 5),
        ];
        let f: Vec<usize> = pareto_front(&pts).into_iter().map(|i| pts[i].2).collect();
        assert_eq!(f, vec![5, 1, 2, 4]);
    }
}
