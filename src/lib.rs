//! mldeploy: deploys ML inference services to AWS ECS Fargate. `run` is the whole program;
//! `main` only parses arguments and turns the outcome into an exit code.

pub mod aws;
pub mod cli;
pub mod commands;
pub mod config;
pub mod cost;
pub mod exit;
pub mod gate;
pub mod iam_policy;
pub mod image;
pub mod lock;
pub mod model;
pub mod model_fit;
pub mod output;
pub mod registry;
pub mod reports;
pub mod session;
pub mod smoke;
pub mod targets;
pub mod undo;

use cli::{Cli, Command};
use exit::ExitStatus;
use output::Printer;
use session::Session;

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
        Command::Plan(args) => commands::up::run(&session, &args.as_up(), true).await,
        Command::Rollback(args) => commands::rollback::run(&session, args).await,
        Command::Promote(args) => commands::promote::run(&session, args).await,
        Command::Status(args) => commands::status::run(&session, args).await,
        Command::History(args) => commands::history::run(&session, args).await,
        Command::Destroy(args) => commands::destroy::run(&session, args).await,
        Command::Logs(args) => commands::logs::run(&session, args).await,
        Command::Run(args) => commands::run::run(&session, args).await,
        Command::IamPolicy(args) => commands::iam_policy::run(&session, args).await,
        Command::Completions(args) => commands::shell::completions(args.shell),
        Command::Man => commands::shell::man(),
        Command::Schema => commands::shell::schema(),
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
