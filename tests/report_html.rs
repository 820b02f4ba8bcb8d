//! The HTML report and the cell diagrams, end to end: real NB201 sessions
//! through the CLI, `seki report`, `seki kb report` and `seki arch --svg`,
//! then the pages opened in headless Chromium (Debian's `chromium`, which
//! scripts/setup.sh installs): a screenshot, no console message, no script
//! error, and every chart, diagram and lineage row present after the
//! page's script ran.
//!
//! Without Chromium the browser checks are skipped with a message, except
//! under CI (the `CI` variable set), where they fail.

mod common;
use common::browser::{browse, chromium};
use common::*;
use std::path::Path;

const FIXTURE: &str = "tests/fixtures/seki-nb201-replies.jsonl";

/// Two sessions (REA, and seki driven by recorded replies) and their report.
fn sessions(d: &Path) -> (String, String) {
    ok(seki(d).args([
        "search",
        "--strategy",
        "rea",
        "--space",
        "nb201",
        "--evaluator",
        "nb201",
        "--budget",
        "30",
        "--run-dir",
        "rea",
        "--kb-records",
        "none",
        "-q",
    ]));
    std::fs::create_dir_all(d.join("kb")).unwrap();
    let out = ok(seki(d).args([
        "search",
        "--strategy",
        "seki",
        "--budget",
        "8",
        "--run-dir",
        "seki",
        "--kb",
        "kb",
        "--llm-replay",
        &root().join(FIXTURE).display().to_string(),
    ]));
    assert!(out.contains("html       seki/report.html"), "{out}");
    let report = ok(seki(d).args(["report", "seki", "rea", "--out", "cmp"]));
    assert_eq!(report.trim(), "cmp/report.md\ncmp/report.html");
    let html = std::fs::read_to_string(d.join("cmp/report.html")).unwrap();
    let kb = ok(seki(d).args(["kb", "report", "--kb", "kb", "--out", "kbpage"]));
    assert_eq!(kb.trim(), "kbpage/kb-report.html");
    let kb_html = std::fs::read_to_string(d.join("kbpage/kb-report.html")).unwrap();
    (html, kb_html)
}

/// The evaluation number of a run's best architecture.
fn best_of(run: &Path) -> u64 {
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    s["best"]["evaluation"].as_u64().unwrap()
}

/// Attribute values that would make a browser fetch something.
fn external_loads(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attr in ["src=\"", "href=\"", "action=\"", "srcset=\""] {
        for (i, _) in html.match_indices(attr) {
            let v = &html[i + attr.len()..];
            let v = &v[..v.find('"').unwrap_or(v.len())];
            if attr != "href=\"" || !v.starts_with('#') {
                found.push(format!("{attr}{v}"));
            }
        }
    }
    for bad in [
        "url(", "@import", "<link", "<iframe", "<img", "<object", "<embed",
    ] {
        if html.contains(bad) {
            found.push(bad.to_string());
        }
    }
    found
}

#[test]
fn report_html_is_self_contained_and_complete() {
    let d = tempfile::tempdir().unwrap();
    let (html, kb_html) = sessions(d.path());
    for page in [&html, &kb_html] {
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert_eq!(external_loads(page), Vec::<String>::new());
    }
    // Both runs compared: one curve chart with a line each.
    assert_eq!(html.matches(r#"data-chart="best-so-far""#).count(), 1);
    assert_eq!(html.matches(r#"<path class="series""#).count(), 2);
    // A lineage row per evaluation, best path marked, per-run sections.
    assert_eq!(html.matches(r#"<tr class="lineage-row"#).count(), 38);
    assert!(html.contains("lineage-row best-path"));
    for id in [
        "run-0",
        "run-1",
        "evals-0",
        "evals-1",
        "r0-insights",
        "r0-llm",
        "r1-operators",
    ] {
        assert!(html.contains(&format!("id=\"{id}\"")), "{id}");
    }
    // The seki run's LLM usage, reply outcomes, insights and failures.
    for want in [
        "evolution_strategy",
        "inspiration_patterns",
        "parsed after a repair prompt",
        "gave up: fell back to a mutation",
        "nor_conv_3x3 on node1&lt;-0 helps: every top cell has it",
        "unknown op &#39;conv_7x7&#39;",
        "knowledge inspiration",
        "self-evolution",
    ] {
        assert!(html.contains(want), "{want}");
    }
    // An insight's evidence from the session links to its evaluation row.
    let best = best_of(&d.path().join("seki"));
    let evidence = html
        .split("<tr class=\"insight\"")
        .nth(1)
        .expect("an insight row");
    assert!(
        evidence.contains("<a href=\"#r0-e") && evidence.contains("\">seki-"),
        "{evidence}"
    );
    assert!(html.contains(&format!(
        "<tr id=\"r0-e{best}\" data-n=\"{best}\" class=\"best-path\">"
    )));
    // The knowledge base page: the session's records and its insights.
    assert!(kb_html.contains("Records by space and evaluation protocol"));
    assert!(kb_html.contains("-i001</code>") && kb_html.contains("<tr id=\"rec-seki-"));
}

#[test]
fn arch_svg_draws_cells_to_stdout_or_a_file() {
    let d = tempfile::tempdir().unwrap();
    let nb = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|";
    let svg = ok(seki(d.path()).args(["arch", "--space", "nb201", "--svg", nb]));
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert_eq!(svg.matches("class=\"op-edge\"").count(), 6);
    let darts = root().join("knowledge/architectures.jsonl");
    let first: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(darts)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    std::fs::write(d.path().join("cell.txt"), first["arch"].as_str().unwrap()).unwrap();
    let out = ok(seki(d.path()).args([
        "arch",
        "--space",
        "darts",
        "--svg",
        "@cell.txt",
        "--out",
        "cell.svg",
    ]));
    assert_eq!(out.trim(), "cell.svg");
    let svg = std::fs::read_to_string(d.path().join("cell.svg")).unwrap();
    assert_eq!(svg.matches("class=\"op-edge\"").count(), 16);
    assert_eq!(svg.matches("data-kind=\"intermediate\"").count(), 8);
    let e = fails(seki(d.path()).args(["arch", "--space", "nb201", "--svg", "|bogus~0|"]));
    assert!(e.contains("bogus"), "{e}");
    let e = fails(seki(d.path()).args(["arch", "--svg", "--to", "json", nb]));
    assert!(e.contains("cannot be used with"), "{e}");
}

/// Console messages (any level: the pages log nothing) and page errors.
fn console(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
        .collect()
}

/// A DOM dump after the page's script ran: ready, no script error, and
/// nothing to load (the script added no such element either).
fn check_dom(dom: &str, stderr: &str, page: &str) {
    assert_eq!(external_loads(dom), Vec::<String>::new(), "{page}");
    assert!(
        dom.contains("data-ready=\"1\""),
        "{page}: script did not finish:\n{stderr}"
    );
    assert!(
        dom.contains("<pre id=\"js-errors\" hidden=\"\"></pre>"),
        "{page}: script errors: {}",
        dom.split("id=\"js-errors\"")
            .nth(1)
            .unwrap_or("")
            .chars()
            .take(500)
            .collect::<String>()
    );
    assert_eq!(
        console(stderr),
        Vec::<&str>::new(),
        "{page}: console messages"
    );
}

fn png_size(path: &Path) -> (u32, u32, usize) {
    let b = std::fs::read(path).unwrap();
    assert!(
        b.len() > 24 && b.starts_with(b"\x89PNG\r\n\x1a\n"),
        "not a PNG"
    );
    let be = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    (be(16), be(20), b.len())
}

#[test]
fn report_html_in_headless_chromium() {
    let Some(chromium) = chromium() else { return };
    let d = tempfile::tempdir().unwrap();
    sessions(d.path());
    let page = d.path().join("cmp/report.html");
    let url = format!("file://{}", page.display());

    // (a) A screenshot of the top of the page.
    let shot = d.path().join("report.png");
    let (_, err) = browse(
        &chromium,
        d.path(),
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1400,3000",
        ],
        &url,
    );
    assert!(shot.is_file(), "no screenshot:\n{err}");
    let (w, h, bytes) = png_size(&shot);
    assert_eq!((w, h), (1400, 3000));
    assert!(bytes > 40_000, "a nearly blank screenshot ({bytes} bytes)");
    assert_eq!(console(&err), Vec::<&str>::new(), "console messages");

    // (b) The DOM after the script ran: no errors, every part present.
    let (dom, err) = browse(&chromium, d.path(), &["--dump-dom"], &url);
    check_dom(&dom, &err, "report.html");
    assert_eq!(dom.matches("data-chart=\"best-so-far\"").count(), 1);
    assert_eq!(
        dom.matches("data-chart=\"lineage\"").count(),
        2,
        "one per run"
    );
    // Best and seed of both runs (and best of each in the overview), inline.
    let inline = dom.split("<template").next().unwrap();
    assert!(
        inline.matches("class=\"cell-diagram\"").count() >= 5,
        "diagrams"
    );
    assert_eq!(
        dom.matches("<tr class=\"lineage-row").count(),
        38,
        "lineage rows"
    );
    assert!(
        dom.contains("aria-sort") || dom.contains("tabindex=\"0\""),
        "sortable headers wired"
    );

    // (c) The script's own check: sort the first table by score (highest
    // first) and open the viewer on an architecture.
    let (dom, err) = browse(
        &chromium,
        d.path(),
        &["--dump-dom"],
        &format!("{url}?selftest"),
    );
    check_dom(&dom, &err, "report.html?selftest");
    let best = best_of(&d.path().join("seki"));
    assert!(
        dom.contains(&format!("data-selftest-first=\"{best}\"")),
        "sorted by score, the seki run's best comes first"
    );
    assert!(
        dom.contains("data-selftest-viewer=\"1\""),
        "the viewer shows one diagram"
    );

    // The knowledge-base page.
    let kb_url = format!(
        "file://{}",
        d.path().join("kbpage/kb-report.html").display()
    );
    let (dom, err) = browse(&chromium, d.path(), &["--dump-dom"], &kb_url);
    check_dom(&dom, &err, "kb-report.html");
    assert!(dom.contains("class=\"insight\""));
}
