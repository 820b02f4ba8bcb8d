//! The `seki` command line: a thin layer over the library.

mod cli;

use std::process::ExitCode;

/// How long candle's own worker threads (its element-wise ops' pool,
/// beside rayon's) spin between ops before they sleep. Candle's default
/// (25,000 rounds) keeps its worker spinning through seki's own kernels,
/// which run on rayon's threads: on two cores that took a core from them
/// (training 114-123 -> 144-151 images/s on `seki bench-train`, two threads,
/// with 500-2,000). A value the user sets is kept.
const CANDLE_SPIN_LIMIT: &str = "1000";

fn main() -> ExitCode {
    if std::env::var_os("CANDLE_BARRIER_POOL_SPIN_LIMIT").is_none() {
        // Before any thread exists: candle reads it when its pool starts.
        std::env::set_var("CANDLE_BARRIER_POOL_SPIN_LIMIT", CANDLE_SPIN_LIMIT);
    }
    let args = match cli::Cli::try_parse_args() {
        Ok(a) => a,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    cli::init_logging(args.verbose, args.quiet);
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}
