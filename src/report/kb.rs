//! The knowledge base as one self-contained HTML page (`seki kb report`):
//! its records by space and evaluator, where each came from, the best cell
//! of each group drawn, score against size with the Pareto front, every
//! record in a sortable table (any of them opens as a diagram), and the
//! insights with the records they cite.
//!
//! Scores are only compared within a group of the same space and evaluation
//! protocol (evaluator, dataset, settings): a published CIFAR-10 test
//! accuracy and a proxy's validation accuracy are different quantities, and
//! so are two proxies' scores.

use super::page::{fmt, fmt_count, stat, status_badge, td_int, td_num, thead, Page};
use super::{pareto_front, plot, ReportError};
use crate::knowledge::{Entry, InsightStatus, KnowledgeBase};
use crate::markup::escape;
use crate::space::diagram;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// File name of the page in its output folder.
pub const FILE: &str = "kb-report.html";

/// One group of comparable records.
struct Group<'a> {
    space: &'static str,
    protocol: String,
    label: String,
    evaluator: String,
    dataset: String,
    entries: Vec<&'a Entry>,
}

fn groups(kb: &KnowledgeBase) -> Vec<Group<'_>> {
    let mut out: Vec<Group> = Vec::new();
    for e in kb.entries() {
        let r = &e.record;
        let protocol = r.protocol();
        match out
            .iter_mut()
            .find(|g| g.space == r.space.name() && g.protocol == protocol)
        {
            Some(g) => g.entries.push(e),
            None => out.push(Group {
                space: r.space.name(),
                protocol,
                label: r.evaluator.protocol_label(),
                evaluator: r.evaluator.kind.clone(),
                dataset: r.evaluator.dataset.clone().unwrap_or_default(),
                entries: vec![e],
            }),
        }
    }
    out
}

/// A record's score with its standard error, when known.
fn score_text(r: &crate::knowledge::ArchRecord) -> String {
    r.score
        .map_or("-".into(), |v| crate::stats::with_se(v, r.score_se()))
}

fn anchor(id: &str) -> String {
    // Ids are free text; keep the anchor to characters safe in a fragment.
    let safe: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("rec-{safe}")
}

fn who(e: &Entry) -> String {
    let p = &e.record.provenance;
    match p.source.as_str() {
        "paper" => p.citation.clone().unwrap_or_else(|| "paper".into()),
        "session" => format!(
            "session {}{}{}",
            p.session.as_deref().unwrap_or("?"),
            p.strategy
                .as_deref()
                .map_or(String::new(), |s| format!(", {s}")),
            p.llm.as_deref().map_or(String::new(), |l| format!(", {l}"))
        ),
        other => other.to_string(),
    }
}

/// Render the page.
pub fn render(kb: &KnowledgeBase) -> String {
    let mut page = Page::new();
    let gs = groups(kb);
    for (a, l) in [
        ("overview", "Overview"),
        ("groups", "Spaces and protocols"),
        ("records", "Records"),
        ("insights", "Insights"),
    ] {
        page.nav(a, l);
    }
    let entries = kb.entries();
    let mut s = String::from(
        "<section class=\"card\" id=\"overview\"><h2>Overview</h2><div class=\"stats\">",
    );
    s.push_str(&stat(&entries.len().to_string(), "architecture records"));
    let mut hashes: Vec<&str> = entries.iter().map(|e| e.hash.as_str()).collect();
    hashes.sort_unstable();
    hashes.dedup();
    s.push_str(&stat(&hashes.len().to_string(), "distinct architectures"));
    for src in ["paper", "session", "user"] {
        let n = entries
            .iter()
            .filter(|e| e.record.provenance.source == src)
            .count();
        s.push_str(&stat(&n.to_string(), &format!("from {src}s")));
    }
    s.push_str(&stat(&kb.insights().len().to_string(), "insights"));
    let contradicted = kb
        .insights()
        .iter()
        .filter(|i| i.status == InsightStatus::Contradicted)
        .count();
    s.push_str(&stat(&contradicted.to_string(), "contradicted"));
    s.push_str("</div>");
    // Records by space and dataset.
    s.push_str(
        "<h3 id=\"groups\">Records by space and evaluation protocol</h3><p class=\"meta\">Scores are ranked only within one protocol (evaluator, dataset, settings).</p><table class=\"groups\">",
    );
    s.push_str(&thead(&[
        ("space", false),
        ("evaluator", false),
        ("dataset", false),
        ("protocol", false),
        ("records", true),
        ("papers", true),
        ("sessions", true),
        ("users", true),
        ("best score", true),
        ("best", false),
    ]));
    s.push_str("<tbody>");
    for g in &gs {
        let count = |src: &str| {
            g.entries
                .iter()
                .filter(|e| e.record.provenance.source == src)
                .count()
        };
        let best = best_of(g);
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td>{}{}{}{}{}<td>{}</td></tr>",
            g.space,
            escape(&g.evaluator),
            escape(&g.dataset),
            escape(&g.label),
            td_int(g.entries.len()),
            td_int(count("paper")),
            td_int(count("session")),
            td_int(count("user")),
            td_num(best.and_then(|e| e.record.score), 2),
            best.map_or(String::new(), |e| format!(
                "<a href=\"#{}\">{}</a>",
                anchor(&e.record.id),
                escape(e.record.name.as_deref().unwrap_or(&e.record.id))
            ))
        );
    }
    s.push_str("</tbody></table></section>\n");
    page.push(&s);
    for g in &gs {
        group_section(&mut page, g);
    }
    records_section(&mut page, kb);
    insights_section(&mut page, kb);
    let subtitle = format!(
        "{} · {} records · {} insights",
        kb.dir().display(),
        entries.len(),
        kb.insights().len()
    );
    page.finish("seki knowledge base", &subtitle)
}

fn best_of<'a>(g: &Group<'a>) -> Option<&'a Entry> {
    g.entries
        .iter()
        .copied()
        .filter(|e| e.record.score.is_some_and(f64::is_finite))
        .max_by(|a, b| {
            a.record
                .score
                .unwrap_or(0.0)
                .total_cmp(&b.record.score.unwrap_or(0.0))
        })
}

fn group_section(page: &mut Page, g: &Group) {
    let title = format!("{} · {}", g.space, g.label);
    let mut s = format!(
        "<section class=\"card group\"><h2>{}</h2><div class=\"figs\">",
        escape(&title)
    );
    if let Some(e) = best_of(g) {
        let caption = format!(
            "<b>best</b> — <a href=\"#{}\">{}</a> · score {} · {} parameters · {}",
            anchor(&e.record.id),
            escape(e.record.name.as_deref().unwrap_or(&e.record.id)),
            escape(&score_text(&e.record)),
            fmt_count(e.record.metric("params")),
            escape(&who(e))
        );
        s.push_str(&super::page::arch_figure(
            &caption,
            &format!(
                "{}<pre class=\"arch\">{}</pre>",
                diagram::svg(&e.arch),
                escape(&e.record.arch)
            ),
        ));
    }
    let sized: Vec<&Entry> = g
        .entries
        .iter()
        .copied()
        .filter(|e| e.record.score.is_some() && e.record.metric("params").is_some())
        .collect();
    let pts: Vec<(f64, f64, usize)> = sized
        .iter()
        .enumerate()
        .filter_map(|(i, e)| Some((e.record.metric("params")?, e.record.score?, i)))
        .collect();
    let front = pareto_front(&pts);
    if pts.len() >= 2 {
        let points: Vec<plot::Point> = pts
            .iter()
            .filter_map(|&(p, sc, i)| {
                let e = sized.get(i)?;
                Some(plot::Point {
                    x: p,
                    y: sc,
                    color: String::new(),
                    href: format!("#{}", anchor(&e.record.id)),
                    tip: format!(
                        "{}: score {}, {} parameters",
                        e.record.name.as_deref().unwrap_or(&e.record.id),
                        score_text(&e.record),
                        fmt_count(Some(p))
                    ),
                    highlight: false,
                })
            })
            .collect();
        s.push_str(&super::page::figure(
            "Score against parameters; the Pareto front in red.",
            &plot::pareto(&points, &front, &format!("Score against size: {title}")),
        ));
    }
    s.push_str("</div>");
    if pts.len() >= 2 {
        s.push_str("<h3>Pareto front</h3><table class=\"pareto\">");
        s.push_str(&thead(&[
            ("record", false),
            ("parameters", true),
            ("score", true),
            ("source", false),
        ]));
        s.push_str("<tbody>");
        for i in front {
            let Some(&(p, sc, j)) = pts.get(i) else {
                continue;
            };
            let Some(e) = sized.get(j) else { continue };
            let _ = write!(
                s,
                "<tr><td><a href=\"#{}\">{}</a></td><td class=\"num\">{}</td>{}<td>{}</td></tr>",
                anchor(&e.record.id),
                escape(e.record.name.as_deref().unwrap_or(&e.record.id)),
                fmt_count(Some(p)),
                td_num(Some(sc), 2),
                escape(&who(e))
            );
        }
        s.push_str("</tbody></table>");
    }
    s.push_str("</section>\n");
    page.push(&s);
}

fn records_section(page: &mut Page, kb: &KnowledgeBase) {
    let mut s = String::from("<section class=\"card\" id=\"records\"><h2>Records</h2><p class=\"meta\">Every architecture record with its provenance. Click a column header to sort; <b>cell</b> draws the architecture. Links to sources are given as text; this page loads nothing.</p><div class=\"scroll\"><table class=\"sortable records\" data-selftest-col=\"3\">");
    s.push_str(&thead(&[
        ("id", false),
        ("name", false),
        ("space", false),
        ("score", true),
        ("± SE", true),
        ("params", true),
        ("evaluator", false),
        ("dataset", false),
        ("source", false),
        ("provenance", false),
        ("created", false),
        ("hash", false),
        ("cell", false),
    ]));
    s.push_str("<tbody>");
    for (i, e) in kb.entries().iter().enumerate() {
        let r = &e.record;
        let p = &r.provenance;
        let mut prov = escape(&who(e));
        if let Some(u) = &p.url {
            let _ = write!(prov, "<br><span class=\"mono muted\">{}</span>", escape(u));
        }
        if let Some(t) = &p.prompt_template {
            let _ = write!(
                prov,
                "<br><span class=\"muted\">prompt: {}</span>",
                escape(t)
            );
        }
        let button = page.view_button(
            &e.arch,
            &format!(
                "{} · score {}",
                r.name.as_deref().unwrap_or(&r.id),
                fmt(r.score, 2)
            ),
        );
        let params = r.metric("params");
        let _ = write!(
            s,
            "<tr id=\"{}\" data-n=\"{i}\"><td><code>{}</code></td><td>{}</td><td>{}</td>{}{}<td class=\"num\" data-v=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"prov\">{prov}</td><td>{}</td><td><code>{}</code></td><td>{button}</td></tr>",
            anchor(&r.id),
            escape(&r.id),
            escape(r.name.as_deref().unwrap_or("")),
            r.space.name(),
            td_num(r.score, crate::stats::decimals(r.score_se())),
            td_num(r.score_se(), crate::stats::decimals(r.score_se())),
            params.map_or(String::new(), |x| x.to_string()),
            fmt_count(params),
            escape(&r.evaluator.kind),
            escape(r.evaluator.dataset.as_deref().unwrap_or("")),
            escape(&p.source),
            escape(&r.created),
            escape(&e.hash)
        );
    }
    s.push_str("</tbody></table></div></section>\n");
    page.push(&s);
}

fn insights_section(page: &mut Page, kb: &KnowledgeBase) {
    let mut s = String::from("<section class=\"card\" id=\"insights\"><h2>Insights</h2>");
    if kb.insights().is_empty() {
        s.push_str("<p class=\"muted\">No insights yet (searches with the seki strategy distil them).</p></section>\n");
        page.push(&s);
        return;
    }
    s.push_str("<div class=\"scroll\"><table class=\"sortable insights\">");
    s.push_str(&thead(&[
        ("id", false),
        ("space", false),
        ("status", false),
        ("insight", false),
        ("evidence", false),
        ("mean score of evidence, per protocol", true),
        ("contradicted by", false),
        ("provenance", false),
    ]));
    s.push_str("<tbody>");
    for ins in kb.insights() {
        let link = |page: &mut Page, id: &str| match kb.get(id) {
            Some(e) => format!(
                "<a href=\"#{}\">{}</a>{}",
                anchor(id),
                escape(id),
                page.view_button(&e.arch, &format!("{id} · score {}", fmt(e.record.score, 2)))
            ),
            None => format!("<code title=\"no such record\">{}</code>", escape(id)),
        };
        let ev: Vec<String> = ins.evidence.iter().map(|id| link(page, id)).collect();
        let against: Vec<String> = ins
            .contradicted_by
            .iter()
            .map(|id| link(page, id))
            .collect();
        let stats = kb.evidence_stats(ins);
        let first = stats.iter().find_map(|st| st.mean_score);
        let per_protocol: Vec<String> = stats
            .iter()
            .filter_map(|st| {
                Some(format!(
                    "{:.2} <span class=\"muted\">({}, {} record{})</span>",
                    st.mean_score?,
                    escape(&st.label),
                    st.scored,
                    if st.scored == 1 { "" } else { "s" }
                ))
            })
            .collect();
        let mean_cell = format!(
            "<td class=\"num\" data-v=\"{}\">{}</td>",
            first.map_or(String::new(), |v| v.to_string()),
            per_protocol.join("<br>")
        );
        let p = &ins.provenance;
        let prov = [
            p.session.as_deref().map(|x| format!("session {x}")),
            p.llm.as_deref().map(|x| format!("LLM {x}")),
            p.prompt_template.as_deref().map(|x| format!("prompt {x}")),
            Some(ins.created.clone()),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" · ");
        let _ = write!(
            s,
            "<tr class=\"insight\"><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>{}<td>{}</td><td class=\"muted\">{}</td></tr>",
            escape(&ins.id),
            ins.space.name(),
            status_badge(match ins.status {
                InsightStatus::Active => "active",
                InsightStatus::Contradicted => "contradicted",
            }),
            escape(&ins.text),
            ev.join(", "),
            mean_cell,
            against.join(", "),
            escape(&prov)
        );
    }
    s.push_str("</tbody></table></div></section>\n");
    page.push(&s);
}

/// Write the page into `out` (created if needed); returns its path.
pub fn write(kb: &KnowledgeBase, out: &Path) -> Result<PathBuf, ReportError> {
    std::fs::create_dir_all(out).map_err(crate::store::io_err(out))?;
    let path = out.join(FILE);
    crate::store::write_atomic(&path, render(kb).as_bytes())?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::OpenOptions;

    #[test]
    fn the_shipped_knowledge_base_renders_with_every_published_cell() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("knowledge");
        let kb = KnowledgeBase::open(&dir, OpenOptions::default()).unwrap();
        let html = render(&kb);
        let n = kb.entries().len();
        assert!(n >= 10);
        assert_eq!(html.matches("<tr id=\"rec-").count(), n);
        assert!(html.contains("DARTS_V2") && html.contains("data-chart=\"pareto\""));
        assert!(html.contains("class=\"cell-diagram\""));
        // Citations and URLs are text, never loaded or linked.
        assert!(html.contains("arXiv:1806.09055"));
        for bad in ["src=", "href=\"http", "href=\"//", "url(", "@import"] {
            assert!(!html.contains(bad), "{bad}");
        }
    }

    #[test]
    fn insight_text_is_escaped_and_evidence_linked() {
        let d = tempfile::tempdir().unwrap();
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("knowledge/architectures.jsonl");
        std::fs::copy(&src, d.path().join("architectures.jsonl")).unwrap();
        let ins = serde_json::json!({"id": "i1", "space": "darts", "text": "<img src=x onerror=alert(1)> use sep convs",
            "evidence": ["darts-v2", "gone"], "status": "contradicted", "contradicted_by": ["darts-v1"],
            "provenance": {"source": "session", "session": "s<1>", "llm": "m"}, "created": "2026-01-01T00:00:00Z"});
        std::fs::write(d.path().join("insights.jsonl"), format!("{ins}\n")).unwrap();
        let kb = KnowledgeBase::open(d.path(), OpenOptions::default()).unwrap();
        let html = render(&kb);
        assert!(!html.contains("<img") && html.contains("&lt;img src=x"));
        assert!(html.contains("<a href=\"#rec-darts-v2\">darts-v2</a>"));
        assert!(html.contains("title=\"no such record\">gone<"));
        assert!(html.contains("session s&lt;1&gt;"));
        assert!(html.contains("status contradicted"));
        assert_eq!(anchor("a b/c"), "rec-a_b_c");
    }
}
