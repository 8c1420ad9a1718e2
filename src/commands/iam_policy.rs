//! `mldeploy iam-policy`: print the least-privilege IAM policy that the person or CI role running
//! mldeploy for this project needs, scoped to its resources. Calls nothing in AWS.

use super::Session;
use crate::cli::IamPolicyArgs;
use crate::exit::ExitStatus;
use crate::iam_policy::{self, Scope};
use crate::model;

/// The stacks of the file's other environments, when this is one (`promote --to` it reads them).
fn promote_from(session: &Session<'_>, env: Option<&str>) -> anyhow::Result<Vec<String>> {
    let Some(env) = env else {
        return Ok(Vec::new());
    };
    let base = session.config_in(None)?.project.name;
    Ok(
        crate::config::environments::names_in(&session.config_file())?
            .iter()
            .filter(|other| *other != env)
            .map(|other| crate::config::environments::stack_name(&base, other))
            .collect(),
    )
}

pub async fn run(session: &Session<'_>, args: &IamPolicyArgs) -> anyhow::Result<ExitStatus> {
    let ctx = session.project()?;
    let config = &ctx.config;
    let region = ctx.aws().await?.region.clone();
    let scope = Scope {
        region,
        account: args.account.clone().unwrap_or_else(|| "*".into()),
        project: config.project.name.clone(),
        model: config
            .model
            .as_ref()
            .map(|m| (m.bucket.clone(), model::prefix_of(&m.path).to_string())),
        lock_bucket: config.lock.bucket.clone(),
        domain: config.service.domain.clone(),
        hosted_zone: config.service.hosted_zone_id.clone(),
        promote_from: promote_from(session, config.env.as_deref())?,
        secrets: config.all_secrets().cloned().collect(),
    };
    if args.account.is_none() {
        session.printer.info(
            "The policy names every account (*): pass --account with the account's id to name only yours",
        );
    }
    session.printer.result(&iam_policy::document(&scope))?;
    Ok(ExitStatus::Success)
}
