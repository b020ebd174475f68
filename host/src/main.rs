//! The `wasock` binary: parses the command line, sets up logging and hands
//! over to the subcommand. Everything else lives in the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = wasock::cli::Cli::parse();
    wasock::cli::init_tracing(cli.verbose, cli.log_format);
    match cli.command.execute() {
        Ok(code) => code,
        Err(err) => {
            tracing::error!("{err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
