//! The `vantiq-sim` binary: `vantiq-sim serve` runs the emulator; the other subcommands
//! drive a running one through its control API.

#![forbid(unsafe_code)]

mod cli;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    cli::run().await
}
