//! `seki kb truth`: are the claims a knowledge base holds true on the
//! NAS-Bench-201 table?

use anyhow::{anyhow, Result};
use clap::Args;
use seki::bench::claims;
use seki::knowledge::claim::Verdict;
use seki::knowledge::truth::TruthVerdict;
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub struct TruthArgs {
    /// Knowledge-base folders whose NAS-Bench-201 insights are judged
    /// (repeat for several sessions' knowledge bases) [default: kb.dir].
    #[arg(long = "kb", value_name = "DIR")]
    pub kbs: Vec<PathBuf>,
    /// NAS-Bench-201 table CSV [config: evaluator.nb201.table].
    #[arg(long, value_name = "PATH")]
    pub table: Option<PathBuf>,
    /// The fraction of the table that counts as its best cells.
    #[arg(long, value_name = "F", default_value_t = 0.1)]
    pub top: f64,
    /// Judge each claim again on its session's evaluations, from these run
    /// folders' journals, with the rule sessions apply now (across cells and
    /// within parent-child lineages) instead of the verdict the knowledge
    /// base holds; claims of other sessions are left out (repeat the flag).
    #[arg(long = "rejudge", value_name = "RUN_DIR")]
    pub rejudge: Vec<PathBuf>,
    /// Print one JSON object per claim, then the tally.
    #[arg(long)]
    pub json: bool,
}

pub fn run(config: Option<&Path>, a: TruthArgs) -> Result<()> {
    let loaded = super::load_config(config)?;
    let path = a
        .table
        .clone()
        .unwrap_or_else(|| loaded.config.evaluator.nb201.table.clone());
    let kbs = if a.kbs.is_empty() {
        vec![loaded.config.kb.dir.clone()]
    } else {
        a.kbs.clone()
    };
    let mut c = claims::check(&path, &kbs, a.top).map_err(|e| match e {
        claims::ClaimsError::Top(_) => anyhow!("--top: {e}"),
        e => e.into(),
    })?;
    if !a.rejudge.is_empty() {
        let n = claims::rejudge(&mut c, &a.rejudge)?;
        eprintln!(
            "judged {n} claims again on their sessions' evaluations ({} run folders)",
            a.rejudge.len()
        );
    }
    let verdicts = [
        Verdict::Supported,
        Verdict::Contradicted,
        Verdict::Undecided,
    ];
    let truths = [
        TruthVerdict::True,
        TruthVerdict::False,
        TruthVerdict::Mixed,
        TruthVerdict::Untestable,
    ];
    let name = Verdict::name;
    if a.json {
        for j in &c.judged {
            println!("{}", serde_json::to_string(j)?);
        }
        let mut tally = serde_json::Map::new();
        for v in verdicts {
            let mut row = serde_json::Map::new();
            row.insert("claims".into(), c.count(v, None).into());
            row.insert("distinct".into(), c.distinct(v).into());
            for t in truths {
                row.insert(t.name().into(), c.count(v, Some(t)).into());
            }
            tally.insert(name(v).into(), row.into());
        }
        println!(
            "{}",
            serde_json::json!({ "tally": tally, "knowledge_bases": c.knowledge_bases })
        );
        return Ok(());
    }
    println!(
        "claims judged against {} ({} cells, test accuracy after 200 epochs; best {:.0} %: {} cells)",
        c.table,
        c.cells,
        a.top * 100.0,
        c.n_top
    );
    if c.judged.is_empty() {
        println!(
            "no NAS-Bench-201 insight with a claim in {} knowledge base(s)",
            c.knowledge_bases
        );
        return Ok(());
    }
    let pct = |v: f64| format!("{:.0} %", v * 100.0);
    let mean = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
    println!(
        "{:<13} {:<10} {:<36} {:>16} {:>16} {:>14}",
        "SESSION", "TABLE", "CLAIM", "MEAN WITH (N)", "MEAN WITHOUT", "IN BEST / ALL"
    );
    for j in &c.judged {
        let t = &j.table;
        println!(
            "{:<13} {:<10} {:<36} {:>16} {:>16} {:>14}",
            name(j.session),
            t.verdict.name(),
            j.claim,
            format!("{} ({})", mean(t.mean_with), t.n_with),
            mean(t.mean_without),
            format!("{} / {}", pct(t.share_top), pct(t.share_all))
        );
    }
    println!();
    println!(
        "{:<13} {:>6} {:>8} {:>6} {:>6} {:>6} {:>11}",
        "SESSION", "CLAIMS", "DISTINCT", "TRUE", "FALSE", "MIXED", "UNTESTABLE"
    );
    for v in verdicts {
        println!(
            "{:<13} {:>6} {:>8} {:>6} {:>6} {:>6} {:>11}",
            name(v),
            c.count(v, None),
            c.distinct(v),
            c.count(v, Some(TruthVerdict::True)),
            c.count(v, Some(TruthVerdict::False)),
            c.count(v, Some(TruthVerdict::Mixed)),
            c.count(v, Some(TruthVerdict::Untestable))
        );
    }
    let s = c.count(Verdict::Supported, None);
    if s > 0 {
        let t = c.count(Verdict::Supported, Some(TruthVerdict::True));
        println!(
            "supported claims true: {t} of {s} ({}) over {} knowledge base(s)",
            pct(t as f64 / s as f64),
            c.knowledge_bases
        );
    }
    let k = c.count(Verdict::Contradicted, None);
    if k > 0 {
        let f = c.count(Verdict::Contradicted, Some(TruthVerdict::False));
        println!(
            "contradicted claims false: {f} of {k} ({})",
            pct(f as f64 / k as f64)
        );
    }
    Ok(())
}
