//! Command-line definitions (clap derive) and nothing else.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::duration::parse_duration;

#[derive(Debug, Parser)]
#[command(
    name = "mldeploy",
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("MLDEPLOY_COMMIT"), ")"),
    about = "Deploy ML inference services to AWS ECS Fargate: build, push, deploy, roll back, tear down",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Directory that holds mldeploy.toml (default: the current directory)
    #[arg(
        short = 'C',
        long = "dir",
        global = true,
        value_name = "DIR",
        env = "MLDEPLOY_DIR"
    )]
    pub dir: Option<PathBuf>,

    /// The mldeploy.toml to use (default: the one in --dir or the current directory, else in the
    /// nearest parent directory that has one)
    #[arg(
        short = 'f',
        long = "config",
        global = true,
        value_name = "FILE",
        env = "MLDEPLOY_CONFIG"
    )]
    pub config: Option<PathBuf>,

    /// Result format on stdout; with json, stdout carries exactly one JSON object
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Text, env = "MLDEPLOY_OUTPUT")]
    pub output: OutputFormat,

    /// AWS region (default: project.region in mldeploy.toml, then the AWS environment)
    #[arg(long, global = true, value_name = "REGION", env = "MLDEPLOY_REGION")]
    pub region: Option<String>,

    /// AWS profile from ~/.aws/config
    #[arg(long, global = true, value_name = "PROFILE", env = "MLDEPLOY_PROFILE")]
    pub profile: Option<String>,

    /// More detail on stderr (repeat for more)
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Only errors on stderr
    #[arg(short, long, global = true, env = "MLDEPLOY_QUIET")]
    pub quiet: bool,

    /// Plain progress lines instead of bars (implied when stderr is not a terminal or CI is set)
    #[arg(long, global = true, env = "MLDEPLOY_NO_PROGRESS")]
    pub no_progress: bool,

    /// The environment of mldeploy.toml to use ([env.NAME] over the base file); its stack is
    /// named <project>-<NAME>
    #[arg(long, global = true, value_name = "NAME", env = "MLDEPLOY_ENV")]
    pub env: Option<String>,

    /// Where the service runs (default: target.kind in mldeploy.toml, else ecs)
    #[arg(
        long,
        global = true,
        value_enum,
        value_name = "TARGET",
        env = "MLDEPLOY_TARGET"
    )]
    pub target: Option<crate::config::TargetKind>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a commented mldeploy.toml for this directory
    Init(InitArgs),
    /// Build the image from the project's context through the Docker engine
    Build,
    /// Build when needed, then push the image to the project's ECR repository
    Push(PushArgs),
    /// Build, push, converge the infrastructure, deploy, and wait until the service is healthy
    Up(UpArgs),
    /// Show what `up` would create, update or keep, changing nothing (same as `up --dry-run`)
    Plan(PlanArgs),
    /// Serve another model version or an earlier release, with the same checks as `up`
    Rollback(RollbackArgs),
    /// Deploy to one environment the image (by digest) and model version serving healthy in another
    Promote(PromoteArgs),
    /// What serves and whether it is healthy: exit 0 healthy, 1 not (yet), 3 nothing deployed
    Status(StatusArgs),
    /// The releases (task-definition revisions), newest first, and which one serves
    History(HistoryArgs),
    /// Delete everything mldeploy created for the project, and nothing else
    Destroy(DestroyArgs),
    /// The service's logs from CloudWatch, each line with the task it came from
    Logs(LogsArgs),
    /// Run a command once as a task of a service's current release, streaming its output; exits
    /// with the command's own exit code
    Run(RunArgs),
    /// Print the least-privilege IAM policy for the role that runs mldeploy for this project
    IamPolicy(IamPolicyArgs),
    /// Print the shell completion script for SHELL (bash, zsh, fish, powershell, elvish)
    Completions(CompletionsArgs),
    /// Print mldeploy's man page (roff), for `man -l -` or a man directory
    Man,
    /// Print the JSON Schema of mldeploy.toml, for editors that complete and check its keys
    Schema,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete in
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct IamPolicyArgs {
    /// The AWS account id to name in the policy's ARNs (default: every account, `*`)
    #[arg(long, value_name = "ID", value_parser = parse_account)]
    pub account: Option<String>,
}

fn parse_account(text: &str) -> Result<String, String> {
    if text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit()) {
        Ok(text.to_string())
    } else {
        Err("an AWS account id is 12 digits".into())
    }
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Keep printing new lines until interrupted (no -f: that is the global --config)
    #[arg(long)]
    pub follow: bool,

    /// How far back to start, like 90s, 10m or 2h
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub since: std::time::Duration,

    /// Only this service's lines: the model API's (the project's name) or a worker's (its name
    /// in [workers]); default: every service's, each line with its service
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The service whose release runs it: the model API's (the project's name, the default) or
    /// a worker's (its name in [workers])
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,

    /// Stop the task and fail (exit 1) when the command has not ended by then
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = parse_duration)]
    pub timeout: std::time::Duration,

    /// The command and its arguments, in exec form (no shell): `mldeploy run -- python migrate.py`
    #[arg(required = true, last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DestroyArgs {
    /// Delete without asking (needed when there is no terminal to ask on)
    #[arg(short, long)]
    pub yes: bool,

    /// Print what would be deleted and delete nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Keep the log group /ecs/<name>
    #[arg(long)]
    pub keep_logs: bool,

    /// Keep the ECR repository and its images
    #[arg(long)]
    pub keep_images: bool,

    /// How long to wait for what AWS deletes slowly (a draining service, a load balancer)
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = parse_duration)]
    pub timeout: std::time::Duration,

    /// Break the deploy lock with this id (the exit-4 message prints it), left by a run that is gone
    #[arg(long, value_name = "LOCK_ID")]
    pub force_unlock: Option<String>,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// Serve this model version with the serving image (checked in S3 first)
    #[arg(long, value_name = "N", conflicts_with = "to_revision", value_parser = parse_version)]
    pub model_version: Option<String>,

    /// Go back to this task-definition revision as it was: its image and its model
    #[arg(long, value_name = "R")]
    pub to_revision: Option<i32>,

    #[command(flatten)]
    pub deploy: DeployArgs,
}

#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// The environment whose healthy release is deployed ([env.NAME] of mldeploy.toml)
    #[arg(long, value_name = "ENV")]
    pub from: String,

    /// The environment it is deployed to
    #[arg(long, value_name = "ENV")]
    pub to: String,

    #[command(flatten)]
    pub deploy: DeployArgs,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Wait until the service is healthy and stable (exit 0), has failed, or --timeout passes (exit 1)
    #[arg(long)]
    pub wait: bool,

    /// How long --wait waits, like 90s, 15m or 1h
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = parse_duration, requires = "wait")]
    pub timeout: std::time::Duration,

    /// Every environment of mldeploy.toml, one line each; the exit code is the worst of them
    #[arg(long, conflicts_with_all = ["wait", "env"])]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// How many releases to show, newest first
    #[arg(long, value_name = "N", default_value_t = 20, conflicts_with = "all")]
    pub limit: usize,

    /// Show every release
    #[arg(long)]
    pub all: bool,
}

/// Which model to serve: a version, a registry alias, or a path.
#[derive(Debug, Args, Default, Clone)]
pub struct ModelFlags {
    /// The model version to serve (default: model.version in mldeploy.toml); with
    /// model.registry, the registered version N
    #[arg(long, value_name = "N", conflicts_with_all = ["model_path", "model_alias"], value_parser = parse_version)]
    pub model_version: Option<String>,

    /// With model.registry: serve the version this registry alias points at, like champion
    #[arg(long, value_name = "ALIAS", conflicts_with = "model_path", value_parser = parse_alias)]
    pub model_alias: Option<String>,

    /// The model's key prefix in the model bucket, instead of a version
    #[arg(long, value_name = "PATH")]
    pub model_path: Option<String>,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub model: ModelFlags,

    /// Open a new deployment even when nothing changed (the old --force-new-deployment)
    #[arg(long)]
    pub force: bool,

    #[command(flatten)]
    pub deploy: DeployArgs,
}

/// `plan`: what `up` would do with the same model flags; it waits for nothing and takes no lock,
/// so `up`'s --timeout, --no-rollback and --force-unlock are not offered.
#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub model: ModelFlags,

    /// Plan a new deployment even when nothing changed, as `up --force` would
    #[arg(long)]
    pub force: bool,
}

impl PlanArgs {
    /// The `up --dry-run` these flags stand for.
    pub fn as_up(&self) -> UpArgs {
        UpArgs {
            model: self.model.clone(),
            force: self.force,
            deploy: DeployArgs {
                timeout: std::time::Duration::from_secs(15 * 60),
                dry_run: true,
                no_rollback: false,
                force_unlock: None,
            },
        }
    }
}

/// The flags of every command that deploys (`up`, `rollback`).
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// How long to wait for the deployment and its smoke test, like 90s, 15m or 1h
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = parse_duration)]
    pub timeout: std::time::Duration,

    /// Print what would change, and change nothing
    #[arg(long)]
    pub dry_run: bool,

    /// When the smoke test fails, keep the new revision serving instead of redeploying the one before
    #[arg(long)]
    pub no_rollback: bool,

    /// Break the deploy lock with this id (the exit-4 message prints it), left by a run that is gone
    #[arg(long, value_name = "LOCK_ID")]
    pub force_unlock: Option<String>,
}

impl DeployArgs {
    /// The flags as the targets take them.
    pub fn rollout(&self) -> crate::targets::Rollout {
        crate::targets::Rollout {
            timeout: self.timeout,
            no_rollback: self.no_rollback,
            dry_run: self.dry_run,
        }
    }
}

impl RollbackArgs {
    /// What to go back to, as the targets take it.
    pub fn to(&self) -> crate::targets::RollbackTo {
        crate::targets::RollbackTo {
            model_version: self.model_version.clone(),
            to_revision: self.to_revision,
            dry_run: self.deploy.dry_run,
        }
    }
}

/// A registry alias, checked before anything is called with it.
fn parse_alias(text: &str) -> Result<String, String> {
    crate::model::check_alias(text).map(|()| text.to_string())
}

/// A model version, checked before anything is called with it.
pub fn parse_version(text: &str) -> Result<String, String> {
    crate::model::check_version(text).map(|()| text.to_string())
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Project name (default: the directory's name, made valid for AWS)
    #[arg(long)]
    pub name: Option<String>,

    /// S3 bucket that holds the model versions
    #[arg(long)]
    pub bucket: Option<String>,

    /// Overwrite an existing mldeploy.toml
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// Build again even when the image for this context exists locally
    #[arg(long)]
    pub rebuild: bool,
}
