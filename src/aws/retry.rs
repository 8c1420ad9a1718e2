//! How AWS calls are retried: the SDK's standard strategy (exponential backoff with full jitter),
//! tuned for a deploy tool, and an interceptor that says each retry out loud with `-v`.

use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::retries::RequestAttempts;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};

/// Attempts per call (the first one included), unless `AWS_MAX_ATTEMPTS` says otherwise.
pub const MAX_ATTEMPTS: u32 = 6;
/// The first backoff's upper bound; each retry doubles it, with full jitter.
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(500);
/// No single wait is longer than this.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// The retry configuration for every client: standard mode, [`MAX_ATTEMPTS`] attempts from
/// [`INITIAL_BACKOFF`] up to [`MAX_BACKOFF`]. `AWS_MAX_ATTEMPTS` and `AWS_RETRY_MODE=adaptive`
/// override it, as they do for every AWS SDK.
pub fn config() -> RetryConfig {
    let base = match std::env::var("AWS_RETRY_MODE").ok().as_deref() {
        Some("adaptive") => RetryConfig::adaptive(),
        _ => RetryConfig::standard(),
    };
    base.with_max_attempts(max_attempts())
        .with_initial_backoff(INITIAL_BACKOFF)
        .with_max_backoff(MAX_BACKOFF)
}

/// Attempts per call: `AWS_MAX_ATTEMPTS` when it is a positive number, else [`MAX_ATTEMPTS`].
pub fn max_attempts() -> u32 {
    std::env::var("AWS_MAX_ATTEMPTS")
        .ok()
        .and_then(|v| v.trim().parse::<u32>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(MAX_ATTEMPTS)
}

/// Prints `retrying ecs:DescribeServices (attempt 2 of 6) after 0.41 s: HTTP 400
/// ThrottlingException` to stderr before each retry, when enabled.
#[derive(Debug, Clone, Copy)]
pub struct RetryLog {
    pub enabled: bool,
}

/// What the previous attempt of this operation ended with, and when.
#[derive(Debug, Clone)]
struct LastAttempt {
    outcome: String,
    at: Instant,
}

impl Storable for LastAttempt {
    type Storer = StoreReplace<Self>;
}

impl Intercept for RetryLog {
    fn name(&self) -> &'static str {
        "mldeploy::RetryLog"
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let attempt = cfg.load::<RequestAttempts>().map(|a| a.attempts());
        if let (true, Some(attempt), Some(last)) =
            (self.enabled, attempt, cfg.load::<LastAttempt>())
        {
            if attempt > 1 {
                let max = cfg
                    .load::<RetryConfig>()
                    .map(|c| c.max_attempts())
                    .unwrap_or_else(max_attempts);
                eprintln!(
                    "retrying {} (attempt {attempt} of {max}) after {:.2} s: {}",
                    operation(cfg),
                    last.at.elapsed().as_secs_f64(),
                    last.outcome
                );
            }
        }
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if !self.enabled {
            return Ok(());
        }
        let outcome = match (context.response(), context.output_or_error()) {
            (Some(response), _) => {
                let status = response.status().as_u16();
                let code = response
                    .headers()
                    .get("x-amzn-ErrorType")
                    .map(|t| t.split(':').next().unwrap_or(t).to_string())
                    .or_else(|| response.body().bytes().and_then(error_code));
                match code {
                    Some(code) => format!("HTTP {status} {code}"),
                    None => format!("HTTP {status}"),
                }
            }
            (None, Some(Err(err))) => crate::aws::cause_chain(err),
            (None, _) => "no answer".to_string(),
        };
        cfg.interceptor_state().store_put(LastAttempt {
            outcome,
            at: Instant::now(),
        });
        Ok(())
    }
}

/// `ecs:DescribeServices`: the call as an IAM action, the way mldeploy names calls everywhere.
fn operation(cfg: &ConfigBag) -> String {
    cfg.load::<Metadata>()
        .map(|m| format!("{}:{}", action_prefix(m.service()), m.name()))
        .unwrap_or_else(|| "an AWS call".to_string())
}

/// The IAM action prefix of an SDK service name ("Elastic Load Balancing v2" ->
/// "elasticloadbalancing").
fn action_prefix(service: &str) -> String {
    match service {
        "Elastic Load Balancing v2" => "elasticloadbalancing".into(),
        "CloudWatch Logs" => "logs".into(),
        other => other.to_lowercase().replace(' ', ""),
    }
}

/// The error code of an AWS error body: JSON `__type` (`ns#Code` or `Code`) or XML `<Code>`.
fn error_code(body: &[u8]) -> Option<String> {
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) {
        let code = json.get("__type").or_else(|| json.get("code"))?.as_str()?;
        return Some(code.rsplit('#').next().unwrap_or(code).to_string());
    }
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("<Code>")? + "<Code>".len();
    let end = text[start..].find("</Code>")? + start;
    Some(text[start..end].trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_read_from_json_and_xml_bodies() {
        assert_eq!(
            error_code(br#"{"__type":"com.amazonaws.ecs#ThrottlingException","message":"slow"}"#),
            Some("ThrottlingException".into())
        );
        assert_eq!(
            error_code(b"<ErrorResponse><Error><Code>Throttling</Code></Error></ErrorResponse>"),
            Some("Throttling".into())
        );
        assert_eq!(error_code(b"<html>bad gateway</html>"), None);
    }

    #[test]
    fn calls_are_named_as_iam_actions() {
        assert_eq!(action_prefix("ECS"), "ecs");
        assert_eq!(
            action_prefix("Elastic Load Balancing v2"),
            "elasticloadbalancing"
        );
        assert_eq!(action_prefix("CloudWatch Logs"), "logs");
    }

    #[test]
    fn the_standard_strategy_is_tuned_unless_the_environment_says_otherwise() {
        let config = config();
        assert_eq!(config.initial_backoff(), INITIAL_BACKOFF);
        assert_eq!(config.max_backoff(), MAX_BACKOFF);
        assert_eq!(config.max_attempts(), max_attempts());
    }
}
