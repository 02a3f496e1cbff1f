//! The `sluice` command line: `serve`, `policy check|schema`, `eval`, `calibrate`, `explain`,
//! `model prepare` and `bench local`.

mod bench;
mod calibrate;
mod cli;
mod commands;
mod distill;
mod eval;
mod explain;

pub use cli::{Cli, Command};

use clap::Parser;
use std::process::ExitCode;

/// Parse the command line, run the command, report errors on stderr.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
