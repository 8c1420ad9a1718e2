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

    /// The project's mldeploy.toml: `-f/--config`, else the one in `-C/--dir` (or the current
    /// directory) or its nearest parent.
    pub fn config_file(&self) -> PathBuf {
        match &self.global.config {
            Some(file) => file.clone(),
            None => config::find(&self.dir()),
        }
    }

    /// The validated mldeploy.toml; nothing else is called before it loads.
    pub fn config(&self) -> anyhow::Result<Config> {
        self.config_in(self.global.env.as_deref())
    }

    /// mldeploy.toml with environment `env` merged over it.
    pub fn config_in(&self, env: Option<&str>) -> anyhow::Result<Config> {
        let mut config = config::load(&self.config_file(), env)?;
        if let Some(kind) = self.global.target {
            config.target.kind = kind;
            if let Some(problem) = config.ecs_domain_problem() {
                return Err(crate::exit::error(
                    crate::exit::ExitStatus::Usage,
                    format!("--target ecs: {problem}"),
                ));
            }
        }
        Ok(config)
    }

    /// The project's context: its config, and AWS when something asks for it.
    pub fn project(&self) -> anyhow::Result<Ctx<'a>> {
        self.project_in(self.global.env.as_deref())
    }

    /// The context of environment `env` of the project (the base file with None).
    pub fn project_in(&self, env: Option<&str>) -> anyhow::Result<Ctx<'a>> {
        Ok(Ctx {
            global: self.global,
            printer: self.printer,
            config: self.config_in(env)?,
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
                    self.global
                        .profile
                        .as_deref()
                        .or(self.config.project.profile.as_deref()),
                )
                .await?
                .logging_retries(self.global.verbose > 0);
                self.printer
                    .info(format!("Region {}, {}", aws.region, aws.region_source));
                Ok(aws)
            })
            .await
    }

    /// Takes the project's deploy lock for `operation`, breaking the stale one whose id
    /// `force_unlock` names, and says whose lock it broke.
    pub async fn take_lock(
        &self,
        operation: &str,
        force_unlock: Option<&str>,
    ) -> anyhow::Result<crate::lock::DeployLock> {
        let s3 = self.aws().await?.s3();
        let (held, broken) = crate::lock::acquire(
            &s3,
            &self.config.lock.bucket,
            &self.config.project.name,
            operation,
            self.config.lock.lease,
            force_unlock,
        )
        .await?;
        if let Some(old) = broken {
            self.printer
                .warn(format!("broke the deploy lock held by {}", old.describe()));
        }
        Ok(held)
    }

    /// Like [`Ctx::take_lock`], for `destroy`: when the lock's bucket no longer exists (the
    /// model bucket was deleted first), says so and goes on without a lock.
    pub async fn take_lock_unless_bucket_gone(
        &self,
        operation: &str,
        force_unlock: Option<&str>,
    ) -> anyhow::Result<Option<crate::lock::DeployLock>> {
        let s3 = self.aws().await?.s3();
        let bucket = &self.config.lock.bucket;
        if !crate::lock::bucket_exists(&s3, bucket).await? {
            self.printer.warn(format!(
                "the lock bucket {bucket} no longer exists, so {operation} goes on without the deploy lock: make sure no other mldeploy run works on {} meanwhile",
                self.config.project.name
            ));
            return Ok(None);
        }
        self.take_lock(operation, force_unlock).await.map(Some)
    }

    /// Releases the lock, warning when another run broke it meanwhile.
    pub async fn release(&self, held: crate::lock::DeployLock) -> anyhow::Result<()> {
        if let Some(warning) = held.release().await? {
            self.printer.warn(warning);
        }
        Ok(())
    }
}
