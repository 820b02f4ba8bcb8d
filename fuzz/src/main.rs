//! `seki-fuzz`: run the fuzz targets (see `bench/fuzz.sh`).
//!
//! ```text
//! seki-fuzz [--inputs N] [--seed S] [--target NAME]... [--crashes DIR] [--root DIR]
//! seki-fuzz --list
//! seki-fuzz --target NAME --replay FILE    # run one saved input, panic and all
//! ```

use seki_fuzz::{run, targets};
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut inputs: u64 = 1_000_000;
    let mut seed: u64 = 1;
    let mut only: Vec<String> = Vec::new();
    let mut crashes = PathBuf::from("target/fuzz-crashes");
    let mut root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut replay: Option<PathBuf> = None;
    let mut list = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| {
            args.next().unwrap_or_else(|| {
                eprintln!("{name} needs a value");
                std::process::exit(2)
            })
        };
        let number = |name: &str, v: String| {
            v.replace('_', "").parse::<u64>().unwrap_or_else(|_| {
                eprintln!("{name}: '{v}' is not a whole number");
                std::process::exit(2)
            })
        };
        match a.as_str() {
            "--inputs" => inputs = number("--inputs", value("--inputs")),
            "--seed" => seed = number("--seed", value("--seed")),
            "--target" => only.push(value("--target")),
            "--crashes" => crashes = PathBuf::from(value("--crashes")),
            "--root" => root = PathBuf::from(value("--root")),
            "--replay" => replay = Some(PathBuf::from(value("--replay"))),
            "--list" => list = true,
            "-h" | "--help" => {
                println!("usage: seki-fuzz [--inputs N] [--seed S] [--target NAME]... [--crashes DIR] [--root DIR] | --list | --target NAME --replay FILE");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("unknown argument '{other}' (see --help)");
                return ExitCode::from(2);
            }
        }
    }
    let all = targets(&root);
    if list {
        for t in &all {
            println!("{:<12} {} ({} seeds)", t.name, t.about, t.seeds.len());
        }
        return ExitCode::SUCCESS;
    }
    for name in &only {
        if !all.iter().any(|t| t.name == name) {
            eprintln!("unknown target '{name}' (see --list)");
            return ExitCode::from(2);
        }
    }
    let chosen: Vec<_> = all
        .iter()
        .filter(|t| only.is_empty() || only.iter().any(|n| n == t.name))
        .collect();
    if let Some(file) = replay {
        let Ok(bytes) = std::fs::read(&file) else {
            eprintln!("cannot read {}", file.display());
            return ExitCode::from(2);
        };
        for t in chosen {
            // Not caught: the panic and its backtrace show.
            println!("{}: {:?}", t.name, (t.run)(&bytes));
        }
        return ExitCode::SUCCESS;
    }
    println!(
        "fuzzing {} targets, {inputs} inputs each, seed {seed}; panicking inputs go to {}",
        chosen.len(),
        crashes.display()
    );
    let mut total = 0;
    let mut panics = 0;
    for t in chosen {
        let name = t.name;
        let r = run(t, inputs, seed, Some(&crashes), |done| {
            eprint!("\r{name}: {done}/{inputs}   ");
        });
        eprint!("\r");
        println!("{r}");
        for (msg, saved) in &r.findings {
            println!(
                "    panic: {msg}{}",
                saved
                    .as_ref()
                    .map(|p| format!(" (input: {})", p.display()))
                    .unwrap_or_default()
            );
        }
        total += r.inputs;
        panics += r.panics;
    }
    println!("total: {total} inputs, {panics} panics");
    if panics == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
