//! One module per subcommand; each composes config, AWS, the engine and the printer, and returns
//! the exit status of what it did.

pub mod build;
pub mod destroy;
pub mod history;
pub mod init;
pub mod logs;
pub mod push;
pub mod rollback;
pub mod rollback_docker;
pub mod status;
pub mod up;
pub mod up_docker;
pub mod verify;

use std::path::PathBuf;

use crate::aws::Aws;
use crate::cli::GlobalArgs;
use crate::config::{self, Config};
use crate::output::Printer;

/// What every command gets: the global flags, resolved once.
pub struct Session<'a> {
    pub global: &'a GlobalArgs,
    pub printer: &'a Printer,
}

impl Session<'_> {
    /// The project directory: `-C/--dir`, else the current directory.
    pub fn dir(&self) -> PathBuf {
        self.global
            .dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("."))
    }

    /// The validated mldeploy.toml; nothing else is called before it loads.
    pub fn config(&self) -> anyhow::Result<Config> {
        let mut config = config::load(&self.dir())?;
        if let Some(kind) = self.global.target {
            config.target.kind = kind;
        }
        Ok(config)
    }

    /// Takes the project's deploy lock for `operation`, breaking a stale one when asked, and
    /// says whose lock it broke.
    pub async fn take_lock(
        &self,
        s3: &aws_sdk_s3::Client,
        config: &Config,
        operation: &str,
        force_unlock: bool,
    ) -> anyhow::Result<crate::lock::DeployLock> {
        let (held, broken) = crate::lock::acquire(
            s3,
            &config.model.bucket,
            &config.project.name,
            operation,
            crate::lock::DEFAULT_TTL,
            force_unlock,
        )
        .await?;
        if let Some(old) = broken {
            self.printer
                .warn(format!("broke the deploy lock held by {}", old.describe()));
        }
        Ok(held)
    }

    /// The AWS side, with the region said out loud.
    pub async fn aws(&self, config: &Config) -> anyhow::Result<Aws> {
        let aws = Aws::load(
            self.global.region.as_deref(),
            config.project.region.as_deref(),
            self.global.profile.as_deref(),
        )
        .await?
        .logging_retries(self.global.verbose > 0);
        self.printer
            .info(format!("Region {}, {}", aws.region, aws.region_source));
        Ok(aws)
    }
}
