//! CreateService and UpdateService through IAM's eventual consistency. ECS assumes the roles a
//! service names (the load balancer infrastructure role of a blue/green, canary or linear
//! service) when the call is made, and refuses one IAM has not propagated yet with an
//! InvalidParameterException ("Unable to assume role and validate the specified targetGroupArn.
//! Please verify that the ECS service role being passed has the proper permissions."). IAM's
//! changes are "eventually consistent" and can take a while to be visible
//! (https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html#troubleshoot_general_eventual-consistency).
//! The Terraform AWS provider retries exactly these refusals, CreateService for its
//! propagationTimeout (2 minutes) and UpdateService for 2 minutes more
//! (internal/service/ecs/service.go); mldeploy does the same, on AWS's clock.

use std::future::Future;
use std::time::Duration;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// How long CreateService is retried (AWS time).
pub const CREATE: Duration = Duration::from_secs(120);
/// How long UpdateService is retried (AWS time).
pub const UPDATE: Duration = Duration::from_secs(240);

/// The refusals that mean "not yet", as the Terraform provider matches them.
const NOT_YET: [&str; 3] = [
    "verify that the ECS service role being passed has the proper permissions",
    "does not have an associated load balancer",
    "Unable to assume the service linked role",
];

/// Whether ECS refused the call for a role or load balancer that has not propagated yet.
pub fn not_yet(code: Option<&str>, message: Option<&str>) -> bool {
    code == Some("InvalidParameterException")
        && message.is_some_and(|m| NOT_YET.iter().any(|p| m.contains(p)))
}

/// Calls `call` until it succeeds, fails otherwise, or `budget` (AWS time) has passed; with how
/// long it waited when it had to.
pub async fn through<T, E, F, Fut>(
    budget: Duration,
    call: F,
) -> (Result<T, SdkError<E, HttpResponse>>, Option<Duration>)
where
    E: ProvideErrorMetadata,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
{
    crate::aws::eventually::retried(budget, not_yet, call).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_refusals_of_a_role_or_load_balancer_not_propagated_yet_are_retried() {
        let invalid = Some("InvalidParameterException");
        assert!(not_yet(
            invalid,
            Some("Unable to assume role and validate the specified targetGroupArn. Please verify that the ECS service role being passed has the proper permissions.")
        ));
        assert!(not_yet(
            invalid,
            Some("The target group with targetGroupArn arn:x does not have an associated load balancer.")
        ));
        assert!(!not_yet(invalid, Some("Desired count must be positive.")));
        assert!(!not_yet(
            Some("AccessDeniedException"),
            Some("verify that the ECS service role being passed has the proper permissions")
        ));
        assert!(!not_yet(invalid, None));
    }
}
