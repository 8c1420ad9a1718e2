//! One AWS `SdkConfig` for the whole run (region, profile, `AWS_ENDPOINT_URL` honoured by the
//! SDK itself) and the typed clients made from it; AWS errors mapped to exit codes in one place.

use std::fmt;

use aws_config::{BehaviorVersion, Region};
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
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
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
        })
    }

    pub fn ecr(&self) -> aws_sdk_ecr::Client {
        aws_sdk_ecr::Client::new(&self.sdk)
    }

    pub fn ecs(&self) -> aws_sdk_ecs::Client {
        aws_sdk_ecs::Client::new(&self.sdk)
    }

    pub fn elbv2(&self) -> aws_sdk_elasticloadbalancingv2::Client {
        aws_sdk_elasticloadbalancingv2::Client::new(&self.sdk)
    }

    pub fn iam(&self) -> aws_sdk_iam::Client {
        aws_sdk_iam::Client::new(&self.sdk)
    }

    pub fn logs(&self) -> aws_sdk_cloudwatchlogs::Client {
        aws_sdk_cloudwatchlogs::Client::new(&self.sdk)
    }

    pub fn ec2(&self) -> aws_sdk_ec2::Client {
        aws_sdk_ec2::Client::new(&self.sdk)
    }

    pub fn s3(&self) -> aws_sdk_s3::Client {
        aws_sdk_s3::Client::new(&self.sdk)
    }
}

/// Error codes that mean "the credentials or permissions are wrong", not "the request was".
const ACCESS_CODES: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
];

/// Turns an SDK error into an error that names the call and carries the right exit status:
/// unreachable endpoint, timeout, missing credentials or access denied -> 3; anything else -> 1.
pub fn call_error<E, R>(call: &str, err: SdkError<E, R>) -> anyhow::Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: fmt::Debug + Send + Sync + 'static,
{
    let (status, message) = match &err {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => (
            ExitStatus::Environment,
            format!("{call}: AWS did not answer; check the network, the region and AWS_ENDPOINT_URL"),
        ),
        SdkError::ConstructionFailure(_) => (
            ExitStatus::Environment,
            format!("{call}: the request could not be made; are AWS credentials configured (AWS_PROFILE, AWS_ACCESS_KEY_ID)?"),
        ),
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("unknown");
            let detail = service.err().message().unwrap_or("");
            if ACCESS_CODES.contains(&code) {
                (
                    ExitStatus::Environment,
                    format!("{call} was refused ({code}): the credentials in use need permission for {call}. {detail}"),
                )
            } else {
                (ExitStatus::Failed, format!("{call} failed ({code}): {detail}"))
            }
        }
        _ => (ExitStatus::Failed, format!("{call} failed")),
    };
    anyhow::anyhow!(cause_chain(&err)).context(exit::Classified { status, message })
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
