//! The `wasock` command line: one module per subcommand, each a clap `Args`
//! struct with an `execute` method.

mod build;
mod check;
mod new;
mod serve;
mod status;

use clap::{Parser, Subcommand, ValueEnum};
use std::process::ExitCode;

/// A WebSocket server whose endpoints are sandboxed WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "wasock", version, about)]
pub struct Cli {
    /// More log output (-v: debug, -vv: trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// How log lines are written to stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the plugins found under PATH... over WebSocket.
    Serve(Box<serve::Serve>),
    /// Run each plugin's build command.
    Build(build::Build),
    /// Validate each plugin's manifest and component, and list its imports.
    Check(check::Check),
    /// Create a new plugin directory from a template (Rust, JavaScript, Python).
    New(new::New),
    /// Show a running server's endpoints (asks its admin listener).
    Status(status::Status),
}

impl Command {
    /// Runs the subcommand.
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        match self {
            Command::Serve(cmd) => (*cmd).execute(),
            Command::Build(cmd) => cmd.execute(),
            Command::Check(cmd) => cmd.execute(),
            Command::New(cmd) => cmd.execute(),
            Command::Status(cmd) => cmd.execute(),
        }
    }
}

/// The shape of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event (ANSI colours on a terminal).
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, the
    /// event's fields (`message`, `plugin`, `session`, `handler`, `cause`...)
    /// at the top level, and `spans`, the enclosing spans with their fields
    /// (`endpoint{plugin}`, `session{plugin, session, peer}`).
    Json,
}

/// Logs to stderr in `format`; `RUST_LOG` wins over `-v`.
pub fn init_tracing(verbose: u8, format: LogFormat) {
    let default = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let fmt = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => fmt.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init(),
        LogFormat::Json => fmt.json().flatten_event(true).with_current_span(false).with_span_list(true).init(),
    }
}
