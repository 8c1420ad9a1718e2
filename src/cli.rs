//! Command-line definitions (clap derive) and nothing else.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "mldeploy",
    version,
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
    #[arg(short = 'C', long = "dir", global = true, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Result format on stdout; with json, stdout carries exactly one JSON object
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,

    /// AWS region (default: project.region in mldeploy.toml, then the AWS environment)
    #[arg(long, global = true, value_name = "REGION")]
    pub region: Option<String>,

    /// AWS profile from ~/.aws/config
    #[arg(long, global = true, value_name = "PROFILE")]
    pub profile: Option<String>,

    /// More detail on stderr (repeat for more)
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Only errors on stderr
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// Plain progress lines instead of bars (implied when stderr is not a terminal or CI is set)
    #[arg(long, global = true)]
    pub no_progress: bool,
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
