//! `seki kb ...`

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use seki::knowledge::{self, now_rfc3339, ArchRecord, Entry, KnowledgeBase, OpenOptions};
use seki::space::Space;
use std::path::{Path, PathBuf};

#[derive(Debug, Args, Clone)]
pub struct KbOpts {
    /// Knowledge-base folder [config: kb.dir].
    #[arg(long, value_name = "DIR")]
    pub kb: Option<PathBuf>,
    /// Load the good lines of files with malformed lines (and report the bad ones).
    #[arg(long)]
    pub skip_bad_lines: bool,
}

#[derive(Debug, Subcommand)]
pub enum KbCommand {
    /// List architecture records, best first within each evaluation
    /// protocol (evaluator, dataset, settings); protocols are never ranked
    /// against each other.
    List {
        #[command(flatten)]
        opts: KbOpts,
        /// Only this search space.
        #[arg(long)]
        space: Option<Space>,
        /// Only the best K.
        #[arg(long, value_name = "K")]
        top: Option<usize>,
        /// Rank by this metric (`score` or a metrics key such as `params`).
        #[arg(long, default_value = "score")]
        metric: String,
        /// Only the Pareto front over (metric, params).
        #[arg(long)]
        pareto: bool,
        /// Print JSON Lines.
        #[arg(long)]
        json: bool,
    },
    /// Show one record (by id, or by a prefix of its canonical hash).
    Show {
        #[command(flatten)]
        opts: KbOpts,
        /// Record id or canonical-hash prefix.
        id: String,
    },
    /// Add records from a file: a JSON object, a JSON list or JSON Lines. `id`,
    /// `created`, `evaluator` and `provenance` may be left out.
    Add {
        #[command(flatten)]
        opts: KbOpts,
        /// The file.
        file: PathBuf,
    },
    /// Remove a record or insight.
    Remove {
        #[command(flatten)]
        opts: KbOpts,
        /// Record or insight id.
        id: String,
    },
    /// Add what an export file holds that this knowledge base lacks.
    Import {
        #[command(flatten)]
        opts: KbOpts,
        /// A file written by `seki kb export`.
        file: PathBuf,
    },
    /// Write every record and insight to one JSON file.
    Export {
        #[command(flatten)]
        opts: KbOpts,
        /// Output file.
        file: PathBuf,
    },
    /// Remove records repeating an architecture already recorded under the same evaluator.
    Dedupe {
        #[command(flatten)]
        opts: KbOpts,
    },
    /// Write the knowledge base as one self-contained HTML page (kb-report.html):
    /// records by space and dataset with their provenance, the best cells
    /// drawn, the Pareto fronts, and the insights with their evidence.
    Report {
        #[command(flatten)]
        opts: KbOpts,
        /// Output folder [default: the current folder].
        #[arg(long, value_name = "DIR", default_value = ".")]
        out: PathBuf,
    },
    /// Judge each NAS-Bench-201 insight's claim against the whole table:
    /// is it true (the cells where it holds differ from the rest in its
    /// direction, both in mean 200-epoch test accuracy and in their share
    /// of the table's best cells), false, or mixed; with a tally by the
    /// session's own verdict (supported, contradicted, undecided).
    Truth(super::kb_truth::TruthArgs),
    /// List the distilled insights with their evidence.
    Insights {
        #[command(flatten)]
        opts: KbOpts,
        /// Only this search space.
        #[arg(long)]
        space: Option<Space>,
        /// Print JSON Lines.
        #[arg(long)]
        json: bool,
    },
}

fn open(config: Option<&Path>, opts: &KbOpts, write: bool) -> Result<KnowledgeBase> {
    let loaded = super::load_config(config)?;
    let dir = opts.kb.clone().unwrap_or(loaded.config.kb.dir);
    let kb = KnowledgeBase::open(
        &dir,
        OpenOptions {
            skip_bad_lines: opts.skip_bad_lines || loaded.config.kb.skip_bad_lines,
            write,
            create: write,
        },
    )?;
    for s in kb.skipped() {
        eprintln!(
            "warning: skipped {}:{}: {}",
            s.path.display(),
            s.line,
            s.message
        );
    }
    Ok(kb)
}

fn fmt_num(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(x) if x.abs() >= 1e5 => format!("{:.2}M", x / 1e6),
        Some(x) => format!("{x:.2}"),
    }
}

fn fmt_score(r: &ArchRecord, metric: &str) -> String {
    match (metric, r.metric(metric)) {
        ("score", Some(v)) => seki::stats::with_se(v, r.score_se()),
        (_, v) => fmt_num(v),
    }
}

fn print_rows(entries: &[&Entry], metric: &str) {
    println!(
        "{:<28} {:<6} {:>13} {:>8} {:<13} {:<17} NAME / SOURCE",
        "ID",
        "SPACE",
        metric.to_uppercase(),
        "PARAMS",
        "EVALUATOR",
        "HASH"
    );
    for e in entries {
        let r = &e.record;
        let who = r
            .name
            .clone()
            .or_else(|| r.provenance.session.clone())
            .unwrap_or_else(|| r.provenance.source.clone());
        println!(
            "{:<28} {:<6} {:>13} {:>8} {:<13} {:<17} {}",
            r.id,
            r.space.name(),
            fmt_score(r, metric),
            fmt_num(r.metric("params")),
            r.evaluator.kind,
            e.hash,
            who
        );
    }
}

pub fn run(config: Option<&Path>, c: KbCommand) -> Result<()> {
    match c {
        KbCommand::List {
            opts,
            space,
            top,
            metric,
            pareto,
            json,
        } => {
            let kb = open(config, &opts, false)?;
            for (i, p) in kb.protocols(space).iter().enumerate() {
                let mut rows = if pareto {
                    kb.pareto(space, &p.key, &metric)
                } else {
                    kb.top_k(space, &p.key, &metric, top.unwrap_or(usize::MAX))
                };
                if !pareto && top.is_none() {
                    // Also list records without the metric, after the ranked ones.
                    rows.extend(kb.entries().iter().filter(|e| {
                        space.is_none_or(|s| e.record.space == s)
                            && e.record.protocol() == p.key
                            && e.record.metric(&metric).is_none()
                    }));
                }
                if let Some(k) = top {
                    rows.truncate(k);
                }
                if json {
                    for e in rows {
                        let mut v = serde_json::to_value(&e.record)?;
                        if let Some(o) = v.as_object_mut() {
                            o.insert("hash".into(), e.hash.clone().into());
                            o.insert("protocol".into(), p.label.clone().into());
                        }
                        println!("{v}");
                    }
                } else {
                    if i > 0 {
                        println!();
                    }
                    println!("== {} ({} records) ==", p.label, p.records);
                    print_rows(&rows, &metric);
                }
            }
        }
        KbCommand::Show { opts, id } => {
            let kb = open(config, &opts, false)?;
            let e = kb.find(&id)?;
            let mut v = serde_json::to_value(&e.record)?;
            if let Some(o) = v.as_object_mut() {
                o.insert("hash".into(), e.hash.clone().into());
                o.insert("canonical".into(), e.arch.canonical().into());
                o.insert("arch_json".into(), e.arch.to_json());
                let cited: Vec<&str> = kb
                    .insights()
                    .iter()
                    .filter(|i| i.evidence.contains(&e.record.id))
                    .map(|i| i.id.as_str())
                    .collect();
                o.insert("cited_by_insights".into(), serde_json::to_value(cited)?);
                let same: Vec<&str> = kb
                    .by_hash(&e.hash)
                    .iter()
                    .filter(|x| x.record.id != e.record.id)
                    .map(|x| x.record.id.as_str())
                    .collect();
                o.insert("same_architecture".into(), serde_json::to_value(same)?);
            }
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        KbCommand::Add { opts, file } => {
            let records = read_new_records(&file)?;
            let mut kb = open(config, &opts, true)?;
            let n = records.len();
            let ids: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
            kb.add(records)
                .with_context(|| format!("nothing from {} was added", file.display()))?;
            println!("added {n} record(s): {}", ids.join(", "));
        }
        KbCommand::Remove { opts, id } => {
            let mut kb = open(config, &opts, true)?;
            let cited = kb.remove(&id)?;
            println!("removed {id}");
            if !cited.is_empty() {
                println!(
                    "dropped it from the evidence of insight(s): {}",
                    cited.join(", ")
                );
            }
        }
        KbCommand::Import { opts, file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let doc: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("{}: not valid JSON", file.display()))?;
            let mut kb = open(config, &opts, true)?;
            let n = kb
                .import(&doc)
                .with_context(|| format!("cannot import {}", file.display()))?;
            println!(
                "imported {} record(s) and {} insight(s); {} record(s) were already present",
                n.architectures, n.insights, n.present
            );
        }
        KbCommand::Export { opts, file } => {
            let kb = open(config, &opts, false)?;
            let doc = kb.export();
            let mut text = serde_json::to_string_pretty(&doc)?;
            text.push('\n');
            seki::store::write_atomic(&file, text.as_bytes())?;
            println!(
                "exported {} record(s) and {} insight(s) to {}",
                kb.entries().len(),
                kb.insights().len(),
                file.display()
            );
        }
        KbCommand::Dedupe { opts } => {
            let mut kb = open(config, &opts, true)?;
            let removed = kb.dedupe()?;
            if removed.is_empty() {
                println!("no duplicates");
            }
            for (gone, kept) in &removed {
                println!("removed {gone} (same architecture and evaluator as {kept})");
            }
        }
        KbCommand::Truth(a) => super::kb_truth::run(config, a)?,
        KbCommand::Report { opts, out } => {
            let kb = open(config, &opts, false)?;
            let path = seki::report::kb::write(&kb, &out)?;
            println!("{}", path.display());
        }
        KbCommand::Insights { opts, space, json } => {
            let kb = open(config, &opts, false)?;
            let ins = kb.insights_for(space);
            if json {
                for i in ins {
                    println!("{}", serde_json::to_string(i)?);
                }
            } else if ins.is_empty() {
                println!("no insights yet (searches with the seki strategy distil them)");
            } else {
                for i in ins {
                    let status = match i.status {
                        knowledge::InsightStatus::Active => "active".to_string(),
                        knowledge::InsightStatus::Contradicted => {
                            format!("contradicted by {}", i.contradicted_by.join(", "))
                        }
                    };
                    println!(
                        "{} [{}] ({status})\n  {}\n  evidence: {}",
                        i.id,
                        i.space,
                        i.text,
                        i.evidence.join(", ")
                    );
                }
            }
        }
    }
    Ok(())
}

/// Read records for `kb add`, filling in what a hand-written record may leave out.
fn read_new_records(file: &Path) -> Result<Vec<ArchRecord>> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let t = text.trim_start();
    let values: Vec<(usize, serde_json::Value)> = if t.starts_with('[') {
        let v: Vec<serde_json::Value> = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a valid JSON list", file.display()))?;
        v.into_iter().enumerate().map(|(i, x)| (i + 1, x)).collect()
    } else if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
        vec![(1, v)]
    } else {
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let v = serde_json::from_str(line)
                .map_err(|e| anyhow::anyhow!("{}:{}: {e}", file.display(), i + 1))?;
            out.push((i + 1, v));
        }
        out
    };
    if values.is_empty() {
        bail!("{}: no records", file.display());
    }
    let mut records = Vec::new();
    for (n, mut v) in values {
        let where_ = format!("{}: record {n}", file.display());
        let o = v
            .as_object_mut()
            .ok_or_else(|| anyhow::anyhow!("{where_}: expected a JSON object"))?;
        let space: Space = o
            .get("space")
            .and_then(|s| s.as_str())
            .ok_or_else(|| anyhow::anyhow!("{where_}: missing field space (darts or nb201)"))?
            .parse()
            .map_err(|e| anyhow::anyhow!("{where_}: field space: {e}"))?;
        let arch_text = match o.get("arch") {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(other @ serde_json::Value::Object(_)) => other.to_string(),
            _ => {
                bail!("{where_}: missing field arch (the architecture in a text form of its space)")
            }
        };
        let arch = space
            .parse(&arch_text)
            .map_err(|e| anyhow::anyhow!("{where_}: field arch: {e}"))?;
        o.insert("arch".into(), arch.to_text().into());
        o.entry("id")
            .or_insert_with(|| format!("user-{}", arch.hash()).into());
        o.entry("created").or_insert_with(|| now_rfc3339().into());
        o.entry("evaluator")
            .or_insert_with(|| serde_json::json!({"kind": "user"}));
        o.entry("provenance")
            .or_insert_with(|| serde_json::json!({"source": "user"}));
        let r: ArchRecord =
            serde_json::from_value(v).map_err(|e| anyhow::anyhow!("{where_}: {e}"))?;
        records.push(r);
    }
    Ok(records)
}
