//! One AWS `SdkConfig` for the whole run (region, profile, `AWS_ENDPOINT_URL` honoured by the
//! SDK itself) and the typed clients made from it; AWS errors mapped to exit codes in one place.

pub mod clock;
pub mod eventually;
pub mod partition;
pub mod poll;
pub mod retry;
pub mod tags;

use std::fmt;

use aws_config::{BehaviorVersion, Region};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::exit::{self, ExitStatus};

/// Where the region came from, so mldeploy can say it instead of guessing silently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegionSource {
    Flag,
    ProjectConfig,
    Environment,
}

impl fmt::Display for RegionSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RegionSource::Flag => "from --region",
            RegionSource::ProjectConfig => "from project.region in mldeploy.toml",
            RegionSource::Environment => "from the AWS environment (AWS_REGION or the profile)",
        })
    }
}

/// The AWS side of a run: one SdkConfig, and what it was resolved from.
#[derive(Debug, Clone)]
pub struct Aws {
    pub sdk: aws_config::SdkConfig,
    pub region: String,
    pub region_source: RegionSource,
    /// Whether each retried call is said on stderr (`-v`).
    pub log_retries: bool,
}

/// A typed client from the shared config, with the retry log attached.
macro_rules! client {
    ($name:ident, $krate:ident) => {
        pub fn $name(&self) -> $krate::Client {
            let config = $krate::config::Builder::from(&self.sdk)
                .interceptor(retry::RetryLog {
                    enabled: self.log_retries,
                })
                .build();
            $krate::Client::from_conf(config)
        }
    };
}

/// A typed client as `client!` makes it, in another region than the run's.
macro_rules! client_in {
    ($name:ident, $krate:ident) => {
        pub fn $name(&self, region: &str) -> $krate::Client {
            let config = $krate::config::Builder::from(&self.sdk)
                .region(Region::new(region.to_string()))
                .interceptor(retry::RetryLog {
                    enabled: self.log_retries,
                })
                .build();
            $krate::Client::from_conf(config)
        }
    };
}

impl Aws {
    /// Region: `--region`, else `project.region`, else the AWS environment.
    pub async fn load(
        flag_region: Option<&str>,
        config_region: Option<&str>,
        profile: Option<&str>,
    ) -> anyhow::Result<Aws> {
        let (explicit, source) = match (flag_region, config_region) {
            (Some(r), _) => (Some(r.to_string()), RegionSource::Flag),
            (None, Some(r)) => (Some(r.to_string()), RegionSource::ProjectConfig),
            (None, None) => (None, RegionSource::Environment),
        };
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(retry::config(profile).await);
        if let Some(profile) = profile {
            loader = loader.profile_name(profile);
        }
        if let Some(region) = &explicit {
            loader = loader.region(Region::new(region.clone()));
        }
        let sdk = loader.load().await;
        let region = sdk.region().map(|r| r.to_string()).ok_or_else(|| {
            exit::error(
                ExitStatus::Usage,
                "no AWS region: pass --region, set project.region in mldeploy.toml, or set AWS_REGION",
            )
        })?;
        Ok(Aws {
            sdk,
            region,
            region_source: source,
            log_retries: false,
        })
    }

    /// The same, saying each retried call on stderr when `on`.
    pub fn logging_retries(mut self, on: bool) -> Aws {
        self.log_retries = on;
        self
    }

    client!(acm, aws_sdk_acm);
    client!(autoscaling, aws_sdk_applicationautoscaling);
    client!(ecr, aws_sdk_ecr);
    client!(ecs, aws_sdk_ecs);
    client!(elbv2, aws_sdk_elasticloadbalancingv2);
    client!(iam, aws_sdk_iam);
    client!(logs, aws_sdk_cloudwatchlogs);
    client!(route53, aws_sdk_route53);
    client!(ec2, aws_sdk_ec2);
    client!(s3, aws_sdk_s3);

    // Secrets Manager in a region: a secret's ARN names its region, which may not be the stack's.
    client_in!(secretsmanager_in, aws_sdk_secretsmanager);
    // SSM Parameter Store in a region, as for Secrets Manager.
    client_in!(ssm_in, aws_sdk_ssm);
}

/// Whether an AWS error code means the credentials or permissions are wrong.
pub fn is_access_code(code: &str) -> bool {
    ACCESS_CODES.contains(&code)
}

/// Error codes that mean "the credentials or permissions are wrong", not "the request was".
const ACCESS_CODES: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnauthorizedAccess",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidAccessKeyId",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "AuthFailure",
    "OptInRequired",
];

/// Error codes that mean the credentials (or their session) have expired.
const EXPIRED_CODES: &[&str] = &[
    "ExpiredToken",
    "ExpiredTokenException",
    "TokenRefreshRequired",
    "RequestExpired",
];

/// Error codes AWS uses for throttling; the SDK retries them, so seeing one means it kept on.
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "SlowDown",
    "EC2ThrottledException",
    "PriorRequestNotComplete",
    "TransactionInProgressException",
    "BandwidthLimitExceeded",
];

/// Every page of a paginated SDK call, the error named for its IAM action:
/// `all_pages!(ec2.describe_vpcs().filters(f), "ec2:DescribeVpcs")?` is a `Vec` of pages.
#[macro_export]
macro_rules! all_pages {
    ($call:expr, $action:expr) => {
        $call
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(|e| $crate::aws::call_error($action, e))
    };
}

/// An id or ARN AWS must send in `call`'s answer. A missing one is an error naming the call,
/// not an empty string that the next call would be refused for, far from the cause.
pub fn returned<T>(value: Option<T>, call: &str, what: &str) -> anyhow::Result<T> {
    value.ok_or_else(|| {
        anyhow::anyhow!("{call} answered without the {what}; AWS always sends it, so please report this (run with -v for the answer)")
    })
}

/// Turns an SDK error into an error that names the call and carries the right exit status:
/// unreachable endpoint, timeout, throttling or a server error past the retries, missing or
/// expired credentials, access denied -> 3; anything else -> 1.
pub fn call_error<E>(call: &str, err: SdkError<E, HttpResponse>) -> anyhow::Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let attempts = retry::max_attempts();
    let (status, message) = match &err {
        _ if is_missing_credentials(&err) => (
            ExitStatus::Environment,
            format!("{call}: no AWS credentials were found; set AWS_PROFILE (or --profile), AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run where a role provides them"),
        ),
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => (
            ExitStatus::Environment,
            format!("{call}: AWS did not answer (tried {attempts} times with backoff); check the network, the region and AWS_ENDPOINT_URL, then run the command again"),
        ),
        SdkError::ConstructionFailure(_) => (
            ExitStatus::Environment,
            format!("{call}: the request could not be made; are AWS credentials configured (AWS_PROFILE, AWS_ACCESS_KEY_ID)?"),
        ),
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("unknown");
            let detail = service.err().message().unwrap_or("");
            let http = service.raw().status().as_u16();
            if EXPIRED_CODES.contains(&code) {
                let skew = if code == "RequestExpired" {
                    " (or this machine's clock is off: check it)"
                } else {
                    ""
                };
                (
                    ExitStatus::Environment,
                    format!("{call} was refused ({code}): the AWS credentials have expired{skew}; refresh them (aws sso login, or a new AWS_SESSION_TOKEN) and run the command again. {detail}"),
                )
            } else if ACCESS_CODES.contains(&code) || http == 403 {
                (
                    ExitStatus::Environment,
                    format!("{call} was refused ({code}): the credentials in use need permission for {call}. {detail}"),
                )
            } else if THROTTLING_CODES.contains(&code) || http >= 500 {
                (
                    ExitStatus::Environment,
                    format!("{call}: AWS kept answering HTTP {http} {code} through {attempts} attempts with backoff; try again later, or raise AWS_MAX_ATTEMPTS. {detail}"),
                )
            } else {
                (ExitStatus::Failed, format!("{call} failed ({code}): {detail}"))
            }
        }
        _ => (ExitStatus::Failed, format!("{call} failed")),
    };
    anyhow::anyhow!(cause_chain(&err)).context(exit::Classified { status, message })
}

/// Whether the call failed because no credentials could be found at all.
fn is_missing_credentials(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(cause) = source {
        if let Some(creds) =
            cause.downcast_ref::<aws_credential_types::provider::error::CredentialsError>()
        {
            return matches!(
                creds,
                aws_credential_types::provider::error::CredentialsError::CredentialsNotLoaded(_)
            );
        }
        source = cause.source();
    }
    false
}

/// "a: b: c" from an error and its sources, each said once, without Debug dumps.
pub fn cause_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let next = cause.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = cause.source();
    }
    text
}
