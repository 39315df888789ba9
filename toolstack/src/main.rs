//! `xl`: the command users drive the hypervisor with.

use clap::{Parser, Subcommand};
use std::process::ExitCode;
use toolstack::demo;

/// The toolstack of a split-privilege hypervisor on KVM, with Xen's xl commands.
#[derive(Parser)]
#[command(name = "xl", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Boot Domain-0 and a guest in this process, time event-channel round
    /// trips between them, shut both down and report.
    Demo {
        /// Print a JSON summary on stdout (console output goes to stderr).
        #[arg(long)]
        json: bool,
        /// Number of event-channel round trips to time.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        round_trips: u32,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("XL_LOG")
                .unwrap_or_else(|_| "warn,console=off".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Demo { json, round_trips } => {
            let options = demo::DemoOptions { json, round_trips };
            match demo::run(&options) {
                Ok(summary) => {
                    if json {
                        println!(
                            "{}",
                            serde_json::to_string_pretty(&summary).expect("summary serializes")
                        );
                    } else {
                        demo::print(&summary);
                    }
                    if demo::succeeded(&summary) {
                        ExitCode::SUCCESS
                    } else {
                        eprintln!("xl demo: a domain did not boot or shut down cleanly");
                        ExitCode::FAILURE
                    }
                }
                Err(e) => {
                    eprintln!("xl demo: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
