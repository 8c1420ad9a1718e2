//! The `mldeploy` binary: parse arguments, call `run`, turn the outcome into an exit code.

use std::process::ExitCode;

use clap::Parser;
use mldeploy::cli::Cli;
use mldeploy::exit::{self, ExitStatus};
use mldeploy::output::Printer;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let printer = Printer::new(&cli.global);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(ExitStatus::Environment.code());
        }
    };
    let outcome = runtime.block_on(async {
        tokio::select! {
            result = mldeploy::run(&cli, &printer) => result,
            status = mldeploy::interrupted() => Err(exit::error(status, "interrupted")),
        }
    });
    // A command that failed or was interrupted may not have finished a Docker release (taken
    // back, so the previous one serves) or reached its lock's release. The lock goes last: the
    // host is the project's again only once the half-made release is gone.
    let (undone, leftovers) = match outcome {
        Ok(_) => (Vec::new(), Vec::new()),
        Err(_) => runtime.block_on(async {
            let undone = mldeploy::undo::undo_pending().await;
            (undone, mldeploy::lock::release_all_held().await)
        }),
    };
    // Do not wait for blocking work (a context still being hashed or sent) after an interrupt.
    runtime.shutdown_background();
    let status = match outcome {
        Ok(status) => status,
        Err(err) => {
            let status = exit::status_of(&err);
            printer.error(&err, status);
            if status == ExitStatus::Interrupted {
                if let Some(note) = exit::interrupt_note() {
                    printer.note(note);
                }
            }
            status
        }
    };
    for line in undone {
        printer.note(line);
    }
    for leftover in leftovers {
        printer.note(leftover);
    }
    ExitCode::from(status.code())
}
