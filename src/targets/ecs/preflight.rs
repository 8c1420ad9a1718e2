//! Inputs AWS takes without a word and refuses later, checked before anything changes (exit 2):
//! a certificate the load balancer cannot use (not issued, not for `service.domain`, in another
//! region), `service.secrets` that ECS cannot read when a task starts (missing, or not
//! describable with these credentials), and a model bucket in another region than the tasks'
//! S3 gateway endpoint reaches. Each of these otherwise costs a stack made half-way or a full
//! rollout before the reason shows.

use aws_sdk_acm::types::CertificateStatus;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::aws::Aws;
use crate::config::{secret_resource, Config, Egress, SecretResource, TasksNetwork};
use crate::exit::{self, ExitStatus};
use crate::output::Printer;

/// Everything below, in order; the customer managed KMS keys the secrets are encrypted with,
/// which the task execution role must be allowed to decrypt with.
pub async fn check(aws: &Aws, config: &Config, printer: &Printer) -> anyhow::Result<Vec<String>> {
    if let Some(arn) = &config.service.certificate_arn {
        certificate(aws, arn, config.service.domain.as_deref()).await?;
    }
    let keys = secrets(aws, config, printer).await?;
    model_bucket_region(aws, config, printer).await?;
    Ok(keys)
}

/// The key a secret or parameter names (DescribeSecret's KmsKeyId, DescribeParameters' KeyId)
/// as the ARN a policy grants on; None for AWS's own keys (`aws/secretsmanager`, `aws/ssm`),
/// which need no grant. An alias cannot be a policy's resource (a grant names the key), so it
/// is Err with the alias.
fn key_arn(key: &str, secret_arn: &str) -> Option<Result<String, String>> {
    if key.is_empty() || key.starts_with("alias/aws/") || key.contains(":alias/aws/") {
        return None;
    }
    if key.starts_with("alias/") || key.contains(":alias/") {
        return Some(Err(key.to_string()));
    }
    if key.starts_with("arn:") {
        return Some(Ok(key.to_string()));
    }
    let parts: Vec<&str> = secret_arn.split(':').collect();
    let (region, account) = (parts.get(3)?, parts.get(4)?);
    Some(Ok(crate::aws::partition::arn(
        region,
        "kms",
        region,
        account,
        &format!("key/{key}"),
    )))
}

/// The region an ARN names (its fourth field).
fn region_of(arn: &str) -> Option<&str> {
    arn.split(':').nth(3).filter(|r| !r.is_empty())
}

/// ACM certificates are regional: a load balancer uses only one of its own region
/// (https://docs.aws.amazon.com/acm/latest/userguide/acm-regions.html), one whose status is
/// ISSUED (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/https-listener-certificates.html),
/// and the smoke test connects with `service.domain`, which the certificate must name.
async fn certificate(aws: &Aws, arn: &str, domain: Option<&str>) -> anyhow::Result<()> {
    let key = "service.certificate_arn";
    if let Some(region) = region_of(arn).filter(|r| *r != aws.region) {
        return Err(exit::error(
            ExitStatus::Usage,
            format!(
                "`{key}` is a certificate in {region}, but the load balancer is in {}: ACM certificates are regional, so request or import one in {} (`aws acm request-certificate --region {}`)",
                aws.region, aws.region, aws.region
            ),
        ));
    }
    let described = aws
        .acm()
        .describe_certificate()
        .certificate_arn(arn)
        .send()
        .await;
    let certificate = match described {
        Ok(out) => out.certificate,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            return Err(exit::error(
                ExitStatus::Usage,
                format!("`{key}` = {arn:?}: ACM has no such certificate in {} (`aws acm list-certificates` lists them)", aws.region),
            ));
        }
        Err(e) => return Err(crate::aws::call_error("acm:DescribeCertificate", e)),
    };
    let Some(certificate) = certificate else {
        return Ok(());
    };
    let status = certificate.status().cloned();
    if status != Some(CertificateStatus::Issued) {
        let status = status.map(|s| s.as_str().to_string()).unwrap_or_default();
        let hint = if status == "PENDING_VALIDATION" {
            "finish its DNS or email validation (or set service.hosted_zone_id and leave certificate_arn out, and mldeploy validates one through the zone)"
        } else {
            "request a new one"
        };
        return Err(exit::error(
            ExitStatus::Usage,
            format!("`{key}` is {status}, not ISSUED: a load balancer listener refuses it. {hint}, then run up again"),
        ));
    }
    if let Some(domain) = domain {
        let mut names: Vec<&str> = certificate
            .domain_name()
            .into_iter()
            .chain(
                certificate
                    .subject_alternative_names()
                    .iter()
                    .map(String::as_str),
            )
            .collect();
        // The domain name is among the alternative names too.
        let mut seen = std::collections::HashSet::new();
        names.retain(|n| seen.insert(*n));
        if !names.iter().any(|n| covers(n, domain)) {
            return Err(exit::error(
                ExitStatus::Usage,
                format!(
                    "`{key}` is for {}, which does not cover service.domain = {domain:?}: clients would refuse the load balancer's certificate. Use a certificate for {domain}",
                    names.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// Whether a certificate name covers `domain`: equal, or a wildcard standing for exactly one
/// leftmost label (https://docs.aws.amazon.com/acm/latest/userguide/acm-certificate.html).
pub fn covers(name: &str, domain: &str) -> bool {
    let (name, domain) = (name.to_ascii_lowercase(), domain.to_ascii_lowercase());
    match name.strip_prefix("*.") {
        Some(parent) => domain
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == parent),
        None => name == domain,
    }
}

/// ECS reads each secret with the execution role when a task starts, and a secret it cannot
/// read stops the task with ResourceInitializationError
/// (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/specifying-sensitive-data.html):
/// each must exist, in the region its ARN names, and be describable here. The values are never
/// read.
async fn secrets(aws: &Aws, config: &Config, printer: &Printer) -> anyhow::Result<Vec<String>> {
    let mut keys = Vec::new();
    for (key, arn) in config.secret_keys() {
        let region = region_of(arn).unwrap_or(&aws.region).to_string();
        let missing = |what: &str, why: String| {
            exit::error(
                ExitStatus::Usage,
                format!("`{key}` names {what} that {why}: ECS could not read it when a task starts (ResourceInitializationError). Create it, or correct the ARN"),
            )
        };
        match secret_resource(arn) {
            Some(SecretResource::Secret(id)) => {
                let client = aws.secretsmanager_in(&region);
                let described = client.describe_secret().secret_id(&id).send().await;
                if let Ok(out) = &described {
                    keys.push((key.clone(), arn, out.kms_key_id().map(str::to_string)));
                }
                if let Err(e) = described {
                    let code = e.code().unwrap_or_default().to_string();
                    return Err(match code.as_str() {
                        "ResourceNotFoundException" => missing(
                            "a Secrets Manager secret",
                            format!("does not exist in {region}"),
                        ),
                        c if crate::aws::is_access_code(c) => missing(
                            "a Secrets Manager secret",
                            format!(
                                "these credentials cannot describe ({code}: {})",
                                e.message().unwrap_or_default()
                            ),
                        ),
                        _ => crate::aws::call_error("secretsmanager:DescribeSecret", e),
                    });
                }
            }
            Some(SecretResource::Parameter(parameter)) => {
                let name = parameter_name(&parameter);
                let client = aws.ssm_in(&region);
                let filter = aws_sdk_ssm::types::ParameterStringFilter::builder()
                    .key("Name")
                    .option("Equals")
                    .values(&name)
                    .build()
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                let found = client
                    .describe_parameters()
                    .parameter_filters(filter)
                    .send()
                    .await;
                match found {
                    Ok(out) if !out.parameters().is_empty() => keys.push((
                        key.clone(),
                        arn,
                        out.parameters()[0].key_id().map(str::to_string),
                    )),
                    Ok(_) => {
                        return Err(missing(
                            "an SSM parameter",
                            format!("does not exist in {region} ({name})"),
                        ))
                    }
                    Err(e) if e.code().is_some_and(crate::aws::is_access_code) => {
                        return Err(missing(
                            "an SSM parameter",
                            format!(
                                "these credentials cannot describe ({}: {})",
                                e.code().unwrap_or_default(),
                                e.message().unwrap_or_default()
                            ),
                        ))
                    }
                    Err(e) => return Err(crate::aws::call_error("ssm:DescribeParameters", e)),
                }
            }
            None => {}
        }
    }
    let mut arns = Vec::new();
    for (key, arn, kms) in keys {
        match kms.as_deref().and_then(|k| key_arn(k, arn)) {
            Some(Ok(key_arn)) => arns.push(key_arn),
            Some(Err(alias)) => printer.warn(format!(
                "`{key}` is encrypted with the KMS alias {alias}: a policy cannot name a key by its alias, so the task execution role gets no kms:Decrypt for it; allow it on the key in the key's policy, or tasks stop with \"Access to KMS is not allowed\""
            )),
            None => {}
        }
    }
    Ok(arns)
}

/// A parameter's name from its ARN: `parameter/a/b` is `/a/b` (a path), `parameter/name` is
/// `name` (https://docs.aws.amazon.com/systems-manager/latest/userguide/sysman-paramstore-su-create.html).
fn parameter_name(arn: &str) -> String {
    let path = arn.split_once(":parameter/").map(|(_, p)| p).unwrap_or(arn);
    if path.contains('/') {
        format!("/{path}")
    } else {
        path.to_string()
    }
}

/// A gateway endpoint reaches S3 only in its own region
/// (https://docs.aws.amazon.com/vpc/latest/privatelink/vpc-endpoints-s3.html: "Gateway endpoints
/// do not allow access from other AWS Regions"), so private tasks behind endpoints cannot load
/// a model from a bucket elsewhere: refused. Otherwise a bucket in another region works and
/// costs inter-region transfer for every model load: said.
async fn model_bucket_region(aws: &Aws, config: &Config, printer: &Printer) -> anyhow::Result<()> {
    let Some(bucket) = config.model.as_ref().map(|m| &m.bucket) else {
        return Ok(());
    };
    let located = aws.s3().get_bucket_location().bucket(bucket).send().await;
    let region = match located {
        // An empty LocationConstraint is us-east-1, and "EU" is eu-west-1
        // (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetBucketLocation.html).
        Ok(out) => match out.location_constraint().map(|c| c.as_str()) {
            None | Some("") => "us-east-1".to_string(),
            Some("EU") => "eu-west-1".to_string(),
            Some(r) => r.to_string(),
        },
        // Whether the bucket and the version exist is the model check's to say.
        Err(e) if e.code() == Some("NoSuchBucket") => return Ok(()),
        Err(e) => {
            printer.warn(format!(
                "model.bucket's region is not known, so it was not compared with the stack's: {:#}",
                crate::aws::call_error("s3:GetBucketLocation", e)
            ));
            return Ok(());
        }
    };
    if region == aws.region {
        return Ok(());
    }
    let behind_endpoints = config.subnets.is_empty()
        && config.tasks_network == TasksNetwork::Private(Egress::Endpoints);
    if behind_endpoints {
        return Err(exit::error(
            ExitStatus::Usage,
            format!(
                "`model.bucket` {bucket} is in {region}, but the tasks (network.tasks = \"private\", network.egress = \"endpoints\") reach S3 through a gateway endpoint, which reaches only {}: the model could not load. Copy the model to a bucket in {}, or set network.egress = \"nat\"",
                aws.region, aws.region
            ),
        ));
    }
    printer.warn(format!(
        "model.bucket {bucket} is in {region} and the tasks in {}: every model load crosses regions (slower, and billed as inter-region data transfer)",
        aws.region
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_covers_one_label_only() {
        assert!(covers("models.example.com", "Models.Example.com"));
        assert!(covers("*.example.com", "models.example.com"));
        assert!(!covers("*.example.com", "example.com"));
        assert!(!covers("*.example.com", "a.models.example.com"));
        assert!(!covers("other.example.com", "models.example.com"));
    }

    #[test]
    fn parameter_names_come_from_their_arns() {
        assert_eq!(
            parameter_name("arn:aws:ssm:us-east-1:123456789012:parameter/prod/db/password"),
            "/prod/db/password"
        );
        assert_eq!(
            parameter_name("arn:aws:ssm:us-east-1:123456789012:parameter/token"),
            "token"
        );
    }
}

#[cfg(test)]
mod key_tests {
    use super::key_arn;

    #[test]
    fn a_customer_key_is_granted_by_its_arn_and_aws_own_keys_need_nothing() {
        let secret = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf";
        assert_eq!(key_arn("alias/aws/secretsmanager", secret), None);
        assert_eq!(key_arn("alias/aws/ssm", secret), None);
        assert_eq!(
            key_arn("1234abcd-12ab-34cd-56ef-1234567890ab", secret),
            Some(Ok(
                "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
                    .into()
            ))
        );
        assert_eq!(
            key_arn("arn:aws:kms:eu-west-1:1:key/k", secret),
            Some(Ok("arn:aws:kms:eu-west-1:1:key/k".into()))
        );
        assert_eq!(key_arn("alias/db", secret), Some(Err("alias/db".into())));
    }
}
