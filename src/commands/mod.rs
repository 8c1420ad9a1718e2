//! One module per subcommand; each composes config, AWS, the engine and the printer, and returns
//! the exit status of what it did.

pub mod build;
pub mod init;
pub mod push;
pub mod up;

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
        config::load(&self.dir())
    }

    /// The AWS side, with the region said out loud.
    pub async fn aws(&self, config: &Config) -> anyhow::Result<Aws> {
        let aws = Aws::load(
            self.global.region.as_deref(),
            config.project.region.as_deref(),
            self.global.profile.as_deref(),
        )
        .await?;
        self.printer
            .info(format!("Region {}, {}", aws.region, aws.region_source));
        Ok(aws)
    }
}
