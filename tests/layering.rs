//! The layering rule: a module never imports one the layering puts above it.
//! The layers, top first, as README's "Where things live" states them; every
//! `crate::…` path in `src/` (code and its unit tests, doc comments aside) is
//! checked against them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The layers, top first. A module may use those below its own line only.
const LAYERS: &[&[&str]] = &[
    &["main", "cli"],
    &["bench", "proxy", "serve"],
    &["session", "report"],
    &["config"],
    &["agent", "executor"],
    &["strategy"],
    &["record"],
    &["eval"],
    &["knowledge"],
    &["space", "prompt"],
    &["llm"],
    &["markup", "stats", "store", "duration", "child", "pareto"],
    &["rng"],
];

fn rank(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code of a file without its comments (line comments, doc comments and
/// block comments); string literals and line breaks are kept.
fn code_of(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let b = text.as_bytes();
    let (mut i, mut in_str) = (0, false);
    while i < b.len() {
        let c = b[i];
        if in_str {
            if c == b'\\' {
                out.push_str(&text[i..(i + 2).min(b.len())]);
                i += 2;
                continue;
            }
            if c == b'"' {
                in_str = false;
            }
            out.push(c as char);
            i += 1;
        } else if c == b'"' {
            in_str = true;
            out.push('"');
            i += 1;
        } else if text[i..].starts_with("//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if text[i..].starts_with("/*") {
            let end = text[i + 2..].find("*/").map_or(b.len(), |e| i + 2 + e + 2);
            // Its line breaks stay, so lines keep their numbers.
            out.extend(text[i..end].chars().filter(|c| *c == '\n'));
            i = end;
        } else {
            let ch = text[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// The top-level modules a piece of code names through `crate::`.
fn imports(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a::b, c, d::{e, f}}`: the top-level names.
            let mut depth = 0;
            let mut item_start = true;
            for (k, ch) in group.char_indices() {
                match ch {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && (c.is_ascii_alphanumeric() || c == '_') => {
                        out.insert(ident(&group[k..]));
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

#[test]
fn no_module_imports_one_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut modules = BTreeSet::new();
    let mut violations = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs").to_string();
        if module == "lib" {
            continue;
        }
        modules.insert(module.clone());
        let Some(own) = rank(&module) else {
            violations.push(format!(
                "src/{module}: not in the layering (add it to LAYERS here and to README's \"Where things live\")"
            ));
            continue;
        };
        let code = code_of(&std::fs::read_to_string(f).unwrap());
        for name in imports(&code) {
            if name == module {
                continue;
            }
            match rank(&name) {
                Some(r) if r > own => {}
                Some(_) => violations.push(format!(
                    "{}: {module} uses crate::{name}, which is not below it",
                    rel.display()
                )),
                None => violations.push(format!(
                    "{}: crate::{name} is not a module of the layering",
                    rel.display()
                )),
            }
        }
    }
    assert!(
        modules.len() > 15,
        "found only {modules:?} under {}",
        src.display()
    );
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn the_checker_sees_every_form_of_import() {
    let code = code_of(
        "use crate::a::b;\n/// crate::doc\nuse crate::{c, d::{e, f}, g::h};\n// crate::x\nfn f() { crate::i::j(); let s = \"//\"; crate::k(); }",
    );
    let got: Vec<String> = imports(&code).into_iter().collect();
    assert_eq!(got, ["a", "c", "d", "g", "i", "k"]);
}

/// What only the library builds: the command line parses flags, calls one
/// library function and prints (issue 26).
const BUILT_BY_THE_LIBRARY: &[&str] = &[
    "Nb201Table::load",
    "CandleEvaluator::",
    "::with_current_exe",
    "Session::",
    "RegularizedEvolution::",
    "executor::build",
    "eval::build",
    "strategy::build",
    "agent::build",
    "Models::same",
    "BlindModel::new",
    "ProxyCsv::load",
    "KnowledgeBase::open",
    "WarmStart::open",
    "setup::models",
    "current_exe",
];

/// `(file, pattern)` allowed: `seki kb` opens the knowledge base it
/// inspects or edits (the command's subject, with its own flags: the
/// folder, --skip-bad-lines, read or write).
const ALLOWED: &[(&str, &str)] = &[("kb.rs", "KnowledgeBase::open")];

#[test]
fn the_command_line_builds_no_evaluator_strategy_executor_or_session() {
    let cli = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src")
        .join("cli");
    let mut files = Vec::new();
    rust_files(&cli, &mut files);
    files.sort();
    assert!(files.len() > 3, "found only {files:?}");
    let mut hits = Vec::new();
    for f in &files {
        let name = f.strip_prefix(&cli).unwrap().to_string_lossy().to_string();
        let code = code_of(&std::fs::read_to_string(f).unwrap());
        for (n, line) in code.lines().enumerate() {
            for p in BUILT_BY_THE_LIBRARY {
                if line.contains(p) && !ALLOWED.contains(&(name.as_str(), *p)) {
                    hits.push(format!("src/cli/{name}:{}: {p}", n + 1));
                }
            }
        }
    }
    assert!(
        hits.is_empty(),
        "src/cli/ builds what the library should (move it beside what it serves):\n{}",
        hits.join("\n")
    );
}

#[test]
fn the_construction_check_keeps_line_numbers() {
    let code =
        code_of("/// Nb201Table::load\nfn f() {\n    /* x\n y */ let t = Nb201Table::load(p);\n}");
    let at: Vec<usize> = code
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains("Nb201Table::load"))
        .map(|(n, _)| n + 1)
        .collect();
    assert_eq!(at, [4]);
}
