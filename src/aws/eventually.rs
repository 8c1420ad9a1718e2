//! Calls AWS refuses for a while after a change it has not propagated yet (a role IAM has not
//! spread, a certificate ELB does not see yet), retried while the refusal says so, within a
//! budget of AWS time, as the Terraform AWS provider retries the same refusals.

use std::future::Future;
use std::time::{Duration, Instant};

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// Calls `call` until it succeeds, fails with an error `transient` (code, message) does not
/// accept, or `budget` (AWS time) has passed; with how long it waited when it had to.
pub async fn retried<T, E, F, Fut>(
    budget: Duration,
    transient: fn(Option<&str>, Option<&str>) -> bool,
    mut call: F,
) -> (Result<T, SdkError<E, HttpResponse>>, Option<Duration>)
where
    E: ProvideErrorMetadata,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
{
    let start = Instant::now();
    let budget = super::clock::scaled(budget);
    let poll = super::poll::interval().min(super::clock::scaled(Duration::from_secs(5)));
    let mut waited = None;
    loop {
        let result = call().await;
        let refused = match &result {
            Err(e) => e
                .as_service_error()
                .is_some_and(|s| transient(s.code(), s.message())),
            Ok(_) => false,
        };
        if !refused || start.elapsed() >= budget {
            return (result, waited);
        }
        waited = Some(start.elapsed());
        tokio::time::sleep(poll).await;
    }
}
