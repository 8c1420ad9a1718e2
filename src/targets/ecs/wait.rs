//! The waiting that deletes share, until a deadline: a call retried while AWS answers that
//! something still depends on the resource (a service draining, a load balancer going, network
//! interfaces releasing a security group), and a wait until a resource is gone. Each resource
//! module deletes through these; `teardown` says which module deletes what.

use std::future::Future;
use std::time::Instant;

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// Error codes that mean "not yet: something still depends on it".
const BUSY: &[&str] = &[
    "DependencyViolation",
    // An Elastic IP address a NAT gateway being deleted still holds.
    "InvalidIPAddress.InUse",
    "ResourceInUse",
    "ResourceInUseException",
    "ClusterContainsServicesException",
    "ClusterContainsTasksException",
];

/// How long a delete may wait, and whom to tell, once, what it waits for.
pub struct Wait<'a> {
    pub until: Instant,
    /// Called with AWS's error code and message the first time a delete has to wait.
    pub waiting: &'a (dyn Fn(&str, &str) + Send + Sync),
}

/// Retries a call while AWS answers that something still depends on the resource (a stopped
/// task's network interface keeps its security group and subnet for minutes), saying so once.
pub async fn while_busy<T, E, R, Fut>(
    wait: &Wait<'_>,
    mut call: impl FnMut() -> Fut,
) -> Result<T, SdkError<E, R>>
where
    Fut: Future<Output = Result<T, SdkError<E, R>>>,
    E: ProvideErrorMetadata,
{
    let mut said = false;
    loop {
        match call().await {
            Err(e)
                if Instant::now() < wait.until
                    && e.as_service_error()
                        .and_then(|s| s.code())
                        .is_some_and(|c| BUSY.contains(&c)) =>
            {
                if !said {
                    let service = e.as_service_error();
                    let code = service.and_then(|s| s.code()).unwrap_or_default();
                    (wait.waiting)(code, service.and_then(|s| s.message()).unwrap_or(code));
                    said = true;
                }
                tokio::time::sleep(crate::aws::poll::interval()).await
            }
            other => return other,
        }
    }
}

/// Waits until `gone` says so, or the deadline passes (then says what it waited for).
pub async fn until_gone<Fut>(
    what: &str,
    wait: &Wait<'_>,
    mut gone: impl FnMut() -> Fut,
) -> anyhow::Result<()>
where
    Fut: Future<Output = anyhow::Result<bool>>,
{
    while !gone().await? {
        if Instant::now() >= wait.until {
            anyhow::bail!("{what} was still there at the deadline");
        }
        tokio::time::sleep(crate::aws::poll::interval()).await;
    }
    Ok(())
}
