//! The `coi-agent` binary: parses arguments and hands them to the library.

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    // clap exits with status 2 on a usage error and 0 for --help and --version.
    let cli = coi_agent::cli::Cli::parse();
    coi_agent::sys::ignore_file_size_signal();
    coi_agent::cli::main(cli)
}
