//! The limits AWS and Fargate set, as mldeploy checks them: names (project, bucket, region),
//! Fargate's cpu/memory pairs, CloudWatch's retention periods, the security groups a task takes,
//! and what a secret's ARN lets a role read.

/// Environment names mldeploy sets itself.
pub const RESERVED_ENV: [&str; 2] = ["MODEL_BUCKET_NAME", "MODEL_PATH"];

/// The retention periods CloudWatch Logs accepts.
pub const LOG_RETENTION_DAYS: [i32; 22] = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

/// The most security groups a Fargate task takes: five, one of them mldeploy's own.
pub const MAX_EXTRA_SECURITY_GROUPS: usize = 4;

/// The project name becomes the ECR repository, the ALB and the target group: it must satisfy
/// all three (ALB and target-group names: at most 32 characters, letters, digits and hyphens, not
/// starting or ending with a hyphen; ECR: lowercase, no doubled separators).
pub fn check_project_name(name: &str) -> Result<(), String> {
    if name.len() < 2 || name.len() > 32 {
        return Err(format!(
            "must be 2 to 32 characters long (it names the load balancer and target group); it has {}",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(format!(
            "may hold only lowercase letters, digits and hyphens, not {c:?}"
        ));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err("must not start or end with a hyphen".to_string());
    }
    if name.contains("--") {
        return Err("must not contain two hyphens in a row (ECR refuses it)".to_string());
    }
    if name.starts_with("internal-") {
        return Err(
            "must not start with \"internal-\" (AWS reserves it for load balancers)".to_string(),
        );
    }
    Ok(())
}

/// S3's bucket naming rules (general purpose buckets).
pub(super) fn check_bucket_name(bucket: &str) -> Result<(), String> {
    if bucket.len() < 3 || bucket.len() > 63 {
        return Err("must be 3 to 63 characters long".to_string());
    }
    if let Some(c) = bucket
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '.'))
    {
        return Err(format!(
            "may hold only lowercase letters, digits, dots and hyphens, not {c:?}"
        ));
    }
    let first_last_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !first_last_ok(bucket.chars().next()) || !first_last_ok(bucket.chars().last()) {
        return Err("must start and end with a letter or digit".to_string());
    }
    if bucket.contains("..") {
        return Err("must not contain two dots in a row".to_string());
    }
    Ok(())
}

pub(super) fn is_region_like(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
        && parts
            .last()
            .is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()))
}

/// Fargate's task sizes: CPU units.
pub(super) const FARGATE_CPU: [u32; 7] = [256, 512, 1024, 2048, 4096, 8192, 16384];

/// The memory sizes (MiB) Fargate offers for a CPU size, or None if the CPU size is not offered.
pub fn fargate_memory_options(cpu: u32) -> Option<Vec<u32>> {
    let range =
        |from: u32, to: u32, step: u32| (from..=to).step_by(step as usize).collect::<Vec<_>>();
    Some(match cpu {
        256 => vec![512, 1024, 2048],
        512 => range(1024, 4096, 1024),
        1024 => range(2048, 8192, 1024),
        2048 => range(4096, 16384, 1024),
        4096 => range(8192, 30720, 1024),
        8192 => range(16384, 61440, 4096),
        16384 => range(32768, 122880, 8192),
        _ => return None,
    })
}

pub(super) fn format_memory_options(options: &[u32]) -> String {
    if options.len() <= 4 {
        options
            .iter()
            .map(|m| m.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    } else {
        let step = options[1] - options[0];
        format!(
            "{} to {} in steps of {step}",
            options[0],
            options[options.len() - 1]
        )
    }
}

/// What a secret's `valueFrom` ARN lets the execution role read: the Secrets Manager secret
/// (without the `:json-key:version-stage:version-id` suffix ECS accepts) or the SSM parameter.
/// None when the text is neither.
pub fn secret_resource(arn: &str) -> Option<SecretResource> {
    let parts: Vec<&str> = arn.split(':').collect();
    if parts.len() < 6 || parts[0] != "arn" || parts[3].is_empty() || parts[4].is_empty() {
        return None;
    }
    match parts[2] {
        "secretsmanager" if parts.len() >= 7 && parts[5] == "secret" && !parts[6].is_empty() => {
            Some(SecretResource::Secret(parts[..7].join(":")))
        }
        "ssm"
            if parts.len() == 6
                && parts[5].len() > "parameter/".len()
                && parts[5].starts_with("parameter/") =>
        {
            Some(SecretResource::Parameter(arn.to_string()))
        }
        _ => None,
    }
}

/// The resource a secret is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretResource {
    Secret(String),
    Parameter(String),
}
