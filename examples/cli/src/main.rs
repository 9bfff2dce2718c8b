//! The `hearth` command-line tool.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[cfg(feature = "hub")]
mod hub_cmd;

#[derive(Parser, Debug)]
#[command(
    name = "hearth",
    version,
    about = "On-device inference for Liquid AI's LFM2 models"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Download a model into the models directory (resumable, SHA-256 verified)
    #[cfg(feature = "hub")]
    Pull(hub_cmd::PullArgs),
    /// List the downloaded models (or the catalogue with --catalogue)
    #[cfg(feature = "hub")]
    List(hub_cmd::ListArgs),
    /// Delete a downloaded model
    #[cfg(feature = "hub")]
    Rm(hub_cmd::RmArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result: hearth::Result<()> = match cli.command {
        #[cfg(feature = "hub")]
        Command::Pull(args) => hub_cmd::pull(args),
        #[cfg(feature = "hub")]
        Command::List(args) => hub_cmd::list(args),
        #[cfg(feature = "hub")]
        Command::Rm(args) => hub_cmd::rm(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
