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

/// Where the number of attempts and the mode come from, as every AWS SDK reads them:
/// `AWS_MAX_ATTEMPTS` / `AWS_RETRY_MODE`, else the profile's `max_attempts` / `retry_mode`, else
/// mldeploy's own [`MAX_ATTEMPTS`] in standard mode.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    pub env_max: Option<String>,
    pub env_mode: Option<String>,
    pub profile_max: Option<String>,
    pub profile_mode: Option<String>,
}

impl Settings {
    /// Attempts (a positive number; anything else falls through to the next source) and
    /// whether the mode is adaptive.
    pub fn resolve(&self) -> (u32, bool) {
        let positive = |v: &Option<String>| {
            v.as_deref()
                .and_then(|v| v.trim().parse::<u32>().ok())
                .filter(|n| *n > 0)
        };
        let max = positive(&self.env_max)
            .or_else(|| positive(&self.profile_max))
            .unwrap_or(MAX_ATTEMPTS);
        let mode = self
            .env_mode
            .as_deref()
            .or(self.profile_mode.as_deref())
            .map(str::trim);
        (max, mode == Some("adaptive"))
    }
}

/// The attempts the configuration resolved to, for messages that say how many were made.
static RESOLVED_ATTEMPTS: std::sync::OnceLock<u32> = std::sync::OnceLock::new();

/// The environment's and the selected profile's retry settings.
pub async fn settings(profile: Option<&str>) -> Settings {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let profiles = aws_config::profile::load(
        &aws_types::os_shim_internal::Fs::real(),
        &aws_types::os_shim_internal::Env::real(),
        &aws_runtime::env_config::file::EnvConfigFiles::default(),
        profile.map(|p| std::borrow::Cow::Owned(p.to_string())),
    )
    .await
    .ok();
    let from_profile = |k: &str| profiles.as_ref().and_then(|p| p.get(k)).map(str::to_string);
    Settings {
        env_max: var("AWS_MAX_ATTEMPTS"),
        env_mode: var("AWS_RETRY_MODE"),
        profile_max: from_profile("max_attempts"),
        profile_mode: from_profile("retry_mode"),
    }
}

/// The retry configuration for every client: standard mode (adaptive when asked), the attempts
/// [`Settings`] resolve to, from [`INITIAL_BACKOFF`] up to [`MAX_BACKOFF`].
pub async fn config(profile: Option<&str>) -> RetryConfig {
    let (max, adaptive) = settings(profile).await.resolve();
    let _ = RESOLVED_ATTEMPTS.set(max);
    let base = if adaptive {
        RetryConfig::adaptive()
    } else {
        RetryConfig::standard()
    };
    base.with_max_attempts(max)
        .with_initial_backoff(INITIAL_BACKOFF)
        .with_max_backoff(MAX_BACKOFF)
}

/// Attempts per call, as [`config`] resolved them (before it runs: `AWS_MAX_ATTEMPTS`, else
/// [`MAX_ATTEMPTS`]).
pub fn max_attempts() -> u32 {
    RESOLVED_ATTEMPTS.get().copied().unwrap_or_else(|| {
        Settings {
            env_max: std::env::var("AWS_MAX_ATTEMPTS").ok(),
            ..Settings::default()
        }
        .resolve()
        .0
    })
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

    #[tokio::test]
    async fn the_standard_strategy_is_tuned_unless_the_environment_says_otherwise() {
        let config = config(None).await;
        assert_eq!(config.initial_backoff(), INITIAL_BACKOFF);
        assert_eq!(config.max_backoff(), MAX_BACKOFF);
        assert_eq!(config.max_attempts(), max_attempts());
    }
}

#[cfg(test)]
mod settings_tests {
    use super::*;

    fn of(
        env_max: Option<&str>,
        env_mode: Option<&str>,
        profile_max: Option<&str>,
        profile_mode: Option<&str>,
    ) -> (u32, bool) {
        Settings {
            env_max: env_max.map(str::to_string),
            env_mode: env_mode.map(str::to_string),
            profile_max: profile_max.map(str::to_string),
            profile_mode: profile_mode.map(str::to_string),
        }
        .resolve()
    }

    #[test]
    fn the_environment_wins_then_the_profile_then_mldeploys_default() {
        assert_eq!(of(None, None, None, None), (MAX_ATTEMPTS, false));
        assert_eq!(of(None, None, Some("2"), Some("adaptive")), (2, true));
        assert_eq!(
            of(Some("4"), Some("standard"), Some("2"), Some("adaptive")),
            (4, false)
        );
        // Nonsense falls through to the next source.
        assert_eq!(of(Some("0"), None, Some("x"), None), (MAX_ATTEMPTS, false));
    }
}
