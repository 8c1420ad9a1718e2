//! What every command and target works with: the global flags and the Printer ([`Session`]),
//! then, once `mldeploy.toml` is read, the project's [`Ctx`]: its config, and the AWS side
//! loaded on first use (a command that never calls AWS never resolves a region).

use std::path::PathBuf;

use tokio::sync::OnceCell;

use crate::aws::Aws;
use crate::cli::GlobalArgs;
use crate::config::{self, Config};
use crate::output::Printer;

/// What every command gets: the global flags, resolved once.
pub struct Session<'a> {
    pub global: &'a GlobalArgs,
    pub printer: &'a Printer,
}

impl<'a> Session<'a> {
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

    /// The project's context: its config, and AWS when something asks for it.
    pub fn project(&self) -> anyhow::Result<Ctx<'a>> {
        Ok(Ctx {
            global: self.global,
            printer: self.printer,
            config: self.config()?,
            aws: OnceCell::new(),
        })
    }
}

/// One project, for one command.
pub struct Ctx<'a> {
    pub global: &'a GlobalArgs,
    pub printer: &'a Printer,
    pub config: Config,
    aws: OnceCell<Aws>,
}

impl Ctx<'_> {
    pub fn project(&self) -> &str {
        &self.config.project.name
    }

    /// The AWS side, loaded on first use with the region said out loud.
    pub async fn aws(&self) -> anyhow::Result<&Aws> {
        self.aws
            .get_or_try_init(|| async {
                let aws = Aws::load(
                    self.global.region.as_deref(),
                    self.config.project.region.as_deref(),
                    self.global.profile.as_deref(),
                )
                .await?
                .logging_retries(self.global.verbose > 0);
                self.printer
                    .info(format!("Region {}, {}", aws.region, aws.region_source));
                Ok(aws)
            })
            .await
    }

    /// Takes the project's deploy lock for `operation`, breaking a stale one when asked, and
    /// says whose lock it broke.
    pub async fn take_lock(
        &self,
        operation: &str,
        force_unlock: bool,
    ) -> anyhow::Result<crate::lock::DeployLock> {
        let s3 = self.aws().await?.s3();
        let (held, broken) = crate::lock::acquire(
            &s3,
            &self.config.model.bucket,
            &self.config.project.name,
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
}
