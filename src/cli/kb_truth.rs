//! `seki kb truth`: are the claims a knowledge base holds true on the
//! NAS-Bench-201 table?

use anyhow::{bail, Context, Result};
use clap::Args;
use seki::eval::Nb201Table;
use seki::knowledge::claim::Verdict;
use seki::knowledge::truth::{self, Truth, TruthVerdict};
use seki::knowledge::{KnowledgeBase, OpenOptions};
use seki::space::{nb201::Nb201Cell, Arch, Space};
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
    /// Print one JSON object per claim, then the tally.
    #[arg(long)]
    pub json: bool,
}

/// One insight's claim with the session's verdict and the table's.
#[derive(Debug, serde::Serialize)]
struct Judged {
    kb: String,
    insight: String,
    claim: String,
    session: Verdict,
    table: Truth,
}

pub fn run(config: Option<&Path>, a: TruthArgs) -> Result<()> {
    if !(a.top > 0.0 && a.top < 1.0) {
        bail!("--top: must be a fraction between 0 and 1 (got {})", a.top);
    }
    let loaded = super::load_config(config)?;
    let path = a
        .table
        .clone()
        .unwrap_or_else(|| loaded.config.evaluator.nb201.table.clone());
    let table = Nb201Table::load(&path)
        .with_context(|| format!("cannot read the NAS-Bench-201 table {}", path.display()))?;
    let cells: Vec<(Arch, f64)> = table
        .rows()
        .iter()
        .enumerate()
        .filter_map(|(code, r)| Some((Arch::Nb201(Nb201Cell::from_code(code)?), r.test_200ep)))
        .collect();
    let kbs = if a.kbs.is_empty() {
        vec![loaded.config.kb.dir.clone()]
    } else {
        a.kbs.clone()
    };
    let mut judged = Vec::new();
    for dir in &kbs {
        let kb = KnowledgeBase::open(dir, OpenOptions::default())
            .with_context(|| format!("cannot open knowledge base {}", dir.display()))?;
        for i in kb.insights_for(Some(Space::Nb201)) {
            let Some(c) = &i.claim else { continue };
            judged.push(Judged {
                kb: dir.display().to_string(),
                insight: i.id.clone(),
                claim: c.text(),
                session: i.stats.as_ref().map_or(Verdict::Undecided, |s| s.verdict),
                table: truth::judge(c, &cells, a.top),
            });
        }
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
    let count = |v: Verdict, t: Option<TruthVerdict>| {
        judged
            .iter()
            .filter(|j| j.session == v && t.is_none_or(|t| j.table.verdict == t))
            .count()
    };
    let name = |v: Verdict| match v {
        Verdict::Supported => "supported",
        Verdict::Contradicted => "contradicted",
        Verdict::Undecided => "undecided",
    };
    if a.json {
        for j in &judged {
            println!("{}", serde_json::to_string(j)?);
        }
        let mut tally = serde_json::Map::new();
        for v in verdicts {
            let mut row = serde_json::Map::new();
            row.insert("claims".into(), count(v, None).into());
            for t in truths {
                row.insert(t.name().into(), count(v, Some(t)).into());
            }
            tally.insert(name(v).into(), row.into());
        }
        println!(
            "{}",
            serde_json::json!({ "tally": tally, "knowledge_bases": kbs.len() })
        );
        return Ok(());
    }
    let n_top = judged.first().map_or(0, |j| j.table.n_top);
    println!(
        "claims judged against {} ({} cells, test accuracy after 200 epochs; best {:.0} %: {} cells)",
        path.display(),
        cells.len(),
        a.top * 100.0,
        n_top
    );
    if judged.is_empty() {
        println!(
            "no NAS-Bench-201 insight with a claim in {} knowledge base(s)",
            kbs.len()
        );
        return Ok(());
    }
    let pct = |v: f64| format!("{:.0} %", v * 100.0);
    let mean = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
    println!(
        "{:<13} {:<10} {:<36} {:>16} {:>16} {:>14}",
        "SESSION", "TABLE", "CLAIM", "MEAN WITH (N)", "MEAN WITHOUT", "IN BEST / ALL"
    );
    for j in &judged {
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
        "{:<13} {:>6} {:>6} {:>6} {:>6} {:>11}",
        "SESSION", "CLAIMS", "TRUE", "FALSE", "MIXED", "UNTESTABLE"
    );
    for v in verdicts {
        println!(
            "{:<13} {:>6} {:>6} {:>6} {:>6} {:>11}",
            name(v),
            count(v, None),
            count(v, Some(TruthVerdict::True)),
            count(v, Some(TruthVerdict::False)),
            count(v, Some(TruthVerdict::Mixed)),
            count(v, Some(TruthVerdict::Untestable))
        );
    }
    let s = count(Verdict::Supported, None);
    if s > 0 {
        let t = count(Verdict::Supported, Some(TruthVerdict::True));
        println!(
            "supported claims true: {t} of {s} ({}) over {} knowledge base(s)",
            pct(t as f64 / s as f64),
            kbs.len()
        );
    }
    Ok(())
}
