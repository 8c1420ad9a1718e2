//! mldeploy: deploys ML inference services to AWS ECS Fargate. `run` is the whole program;
//! `main` only parses arguments and turns the outcome into an exit code.

pub mod aws;
pub mod cli;
pub mod commands;
pub mod config;
pub mod exit;
pub mod image;
pub mod lock;
pub mod model;
pub mod output;
pub mod smoke;
pub mod target;

use cli::{Cli, Command};
use commands::Session;
use exit::ExitStatus;
use output::Printer;

/// Runs one command to its end.
pub async fn run(cli: &Cli, printer: &Printer) -> anyhow::Result<ExitStatus> {
    let session = Session {
        global: &cli.global,
        printer,
    };
    match &cli.command {
        Command::Init(args) => commands::init::run(&session, args),
        Command::Build => commands::build::run(&session).await,
        Command::Push(args) => commands::push::run(&session, args).await,
        Command::Up(args) => commands::up::run(&session, args, args.deploy.dry_run).await,
        Command::Plan(args) => commands::up::run(&session, args, true).await,
        Command::Rollback(args) => commands::rollback::run(&session, args).await,
        Command::Status(args) => commands::status::run(&session, args).await,
        Command::History(args) => commands::history::run(&session, args).await,
        Command::Destroy(args) => commands::destroy::run(&session, args).await,
        Command::Logs(args) => commands::logs::run(&session, args).await,
    }
}

/// Resolves when the user interrupts (Ctrl-C) or the process is asked to terminate.
pub async fn interrupted() -> ExitStatus {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return ExitStatus::Interrupted;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
    ExitStatus::Interrupted
}

/// Prints an error for people (stderr) and, with `--output json`, as the one JSON object on stdout.
pub fn report_error(printer: &Printer, err: &anyhow::Error, status: ExitStatus) {
    let mut chain = err.chain().map(|e| e.to_string());
    let first = chain.next().unwrap_or_default();
    eprintln!("error: {first}");
    let mut previous = first.clone();
    for cause in chain {
        // anyhow repeats a cause that is also part of the message above it; show each once.
        if !previous.contains(&cause) {
            eprintln!("  caused by: {cause}");
        }
        previous = cause;
    }
    if printer.is_json() {
        let object = serde_json::json!({
            "error": format!("{err:#}"),
            "status": status,
            "exit_code": status.code(),
        });
        println!("{object}");
    }
}
