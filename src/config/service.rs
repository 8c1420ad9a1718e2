//! The validators of [service] and [network], like those in `validate`: each destructures its
//! raw table without `..` and reports every problem with its key.

use std::path::Path;

use super::diagnostics::Report;
use super::limits::{
    fargate_memory_options, format_memory_options, secret_resource, FARGATE_CPU,
    LOG_RETENTION_DAYS, MAX_EXTRA_SECURITY_GROUPS, RESERVED_ENV,
};
use super::raw::{RawNetwork, RawService};
use super::{Egress, ReadyCheckSetting, Service, TasksNetwork};

/// `has_model`: whether the project has a `[model]` (the names mldeploy sets for it are then
/// reserved).
pub(super) fn validate_service(
    raw: RawService,
    base: &Path,
    has_model: bool,
    report: &mut Report<'_>,
) -> Service {
    let RawService {
        port,
        cpu,
        memory,
        desired_count,
        health_check_path,
        ready_path,
        environment,
        secrets,
        certificate_arn,
        domain,
        hosted_zone_id,
        health_check_interval,
        healthy_threshold,
        unhealthy_threshold,
        deregistration_delay,
        model_load_time,
        ready_check_interval,
        ready_check_retries,
        ready_check,
        ready_check_command,
        log_retention_days,
        task_definition_template,
        autoscaling,
    } = raw;
    let health = super::health::validate(
        super::health::RawHealth {
            check_interval: health_check_interval,
            healthy_threshold,
            unhealthy_threshold,
            deregistration_delay,
            model_load_time,
            ready_check_interval,
            ready_check_retries,
        },
        report,
    );
    let cpu = cpu.unwrap_or(256);
    let memory = memory.unwrap_or(512);
    check_size("service", cpu, memory, report);
    let port = port.unwrap_or(80);
    if port == 0 {
        report.add(
            "service.port",
            "`service.port` must be between 1 and 65535".to_string(),
        );
    }
    let health_check_path = health_check_path.unwrap_or_else(|| "/health".into());
    let ready_path = ready_path.unwrap_or_else(|| "/ready".into());
    for (key, value) in [
        ("service.health_check_path", &health_check_path),
        ("service.ready_path", &ready_path),
    ] {
        if !value.starts_with('/') {
            report.add(key, format!("`{key}` = {value:?} must start with \"/\""));
        }
    }

    let reserved: &[&str] = if has_model { &RESERVED_ENV } else { &[] };
    check_environment("service", &environment, &secrets, reserved, report);
    if let Some(arn) = &certificate_arn {
        if !arn.starts_with("arn:") || !arn.contains(":acm:") {
            report.add(
                "service.certificate_arn",
                format!("`service.certificate_arn` = {arn:?} is not an ACM certificate ARN (arn:aws:acm:<region>:<account>:certificate/<id>)"),
            );
        }
    }
    let domain = domain.map(|d| d.trim_end_matches('.').to_ascii_lowercase());
    if let Some(name) = &domain {
        if !is_dns_name(name) {
            report.add(
                "service.domain",
                format!("`service.domain` = {name:?} is not a DNS name (labels of letters, digits and hyphens, separated by dots, like \"models.example.com\")"),
            );
        }
    }
    // Route 53 answers ids as "/hostedzone/Z..."; the console shows "Z...". Either is taken.
    let hosted_zone_id = hosted_zone_id.map(|z| z.trim_start_matches("/hostedzone/").to_string());
    if let Some(zone) = &hosted_zone_id {
        if zone.is_empty()
            || zone.len() > 32
            || !zone
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        {
            report.add(
                "service.hosted_zone_id",
                format!("`service.hosted_zone_id` = {zone:?} is not a Route 53 hosted zone id (capital letters and digits, like \"Z0123456789ABCDEFGHIJ\"; `aws route53 list-hosted-zones` lists them)"),
            );
        }
    }
    match (&certificate_arn, &domain, &hosted_zone_id) {
        (Some(_), None, _) => report.add(
            "service.certificate_arn",
            "`service.certificate_arn` needs `service.domain`, the name the certificate is for: no certificate can name the load balancer's own DNS name, so HTTPS is checked through the domain".to_string(),
        ),
        (_, None, Some(_)) => report.add(
            "service.hosted_zone_id",
            "`service.hosted_zone_id` needs `service.domain`, the name to keep in that zone".to_string(),
        ),
        _ => {}
    }
    let log_retention_days = log_retention_days.unwrap_or(7);
    if !LOG_RETENTION_DAYS.contains(&log_retention_days) {
        report.add(
            "service.log_retention_days",
            format!(
                "`service.log_retention_days` = {log_retention_days} is not a CloudWatch retention; valid: {}",
                LOG_RETENTION_DAYS.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")
            ),
        );
    }
    let task_definition_template = task_definition_template.as_deref().map(|t| base.join(t));
    if let Some(template) = &task_definition_template {
        if !template.is_file() {
            report.add(
                "service.task_definition_template",
                format!(
                    "`service.task_definition_template`: {} does not exist (start from mldeploy's templates/task-definition.json)",
                    template.display()
                ),
            );
        }
    }
    let ready_check = validate_ready_check(ready_check, ready_check_command, report);
    let desired_count = desired_count.unwrap_or(1);
    let autoscaling =
        autoscaling.and_then(|a| super::autoscaling::validate(a, "service", desired_count, report));
    Service {
        port,
        cpu,
        memory,
        desired_count,
        autoscaling,
        health_check_path,
        ready_path,
        environment,
        secrets,
        certificate_arn,
        domain,
        hosted_zone_id,
        log_retention_days,
        health,
        ready_check,
        task_definition_template,
    }
}

/// `<table>.cpu` and `<table>.memory`: a pair Fargate offers.
pub(super) fn check_size(table: &str, cpu: u32, memory: u32, report: &mut Report<'_>) {
    match fargate_memory_options(cpu) {
        None => report.add(
            &format!("{table}.cpu"),
            format!(
                "`{table}.cpu` = {cpu} is not a Fargate size; valid: {}",
                FARGATE_CPU.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(", ")
            ),
        ),
        Some(options) if !options.contains(&memory) => report.add(
            &format!("{table}.memory"),
            format!(
                "`{table}.memory` = {memory} is not offered by Fargate with {table}.cpu = {cpu}; valid: {}",
                format_memory_options(&options)
            ),
        ),
        Some(_) => {}
    }
}

/// `<table>.environment` and `<table>.secrets`: no name mldeploy sets itself (`reserved`), no
/// name in both, and every secret an ARN.
pub(super) fn check_environment(
    table: &str,
    environment: &std::collections::BTreeMap<String, String>,
    secrets: &std::collections::BTreeMap<String, String>,
    reserved: &[&str],
    report: &mut Report<'_>,
) {
    for name in environment.keys() {
        if reserved.contains(&name.as_str()) {
            report.add(
                &format!("{table}.environment"),
                format!("`{table}.environment.{name}` is set by mldeploy from [model]; remove it"),
            );
        }
    }
    for (name, arn) in secrets {
        // A value here should be an ARN; it could be a pasted secret, so no message quotes it.
        if reserved.contains(&name.as_str()) || environment.contains_key(name) {
            report.add(
                &format!("{table}.secrets"),
                format!("`{table}.secrets.{name}` names a variable that is already set ({}); a name is either plain environment or a secret", if reserved.contains(&name.as_str()) { "by mldeploy from [model]".to_string() } else { format!("in [{table}.environment]") }),
            );
        } else if secret_resource(arn).is_none() {
            report.add(
                &format!("{table}.secrets"),
                format!("`{table}.secrets.{name}` is not a Secrets Manager secret or SSM parameter ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name> or arn:aws:ssm:<region>:<account>:parameter/<name>); its value is not shown, in case it is the secret itself"),
            );
        }
    }
}

/// `service.ready_check` and `service.ready_check_command`: the container health check mldeploy
/// picks for the image, one the user names (exec form: ECS runs it without a shell), or none.
fn validate_ready_check(
    enabled: Option<bool>,
    command: Option<Vec<String>>,
    report: &mut Report<'_>,
) -> ReadyCheckSetting {
    match (enabled, command) {
        (Some(false), Some(_)) => {
            report.add(
                "service.ready_check_command",
                "`service.ready_check_command` names a container health check, but `service.ready_check` = false turns it off: remove one of them".to_string(),
            );
            ReadyCheckSetting::Off
        }
        (Some(false), None) => ReadyCheckSetting::Off,
        (_, None) => ReadyCheckSetting::Auto,
        (_, Some(command)) => {
            let program = command.first().map(String::as_str).unwrap_or_default();
            if program.is_empty() || program.contains(char::is_whitespace) {
                report.add(
                    "service.ready_check_command",
                    format!("`service.ready_check_command` = {command:?} must start with the program to run, as a path in the image with no spaces (exec form, run without a shell: [\"/app/healthcheck\", \"--port\", \"8080\"]); for a shell command write [\"/bin/sh\", \"-c\", \"...\"]"),
                );
            } else if command.iter().any(|a| a.contains('\0')) {
                report.add(
                    "service.ready_check_command",
                    "`service.ready_check_command` has an argument with a NUL character"
                        .to_string(),
                );
            }
            ReadyCheckSetting::Command(command)
        }
    }
}

/// A host name: 1-253 characters, at least two labels of 1-63 letters, digits and hyphens, not
/// starting or ending with a hyphen.
fn is_dns_name(name: &str) -> bool {
    name.len() <= 253
        && name.contains('.')
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// The subnets and the extra task security groups [network] names.
/// `[network]`, validated: what `Config` keeps of it, by name (three lists of strings side by
/// side would be easy to swap).
pub(super) struct NetworkKeys {
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub allow_from: Vec<String>,
    pub tasks_network: TasksNetwork,
    pub internal_load_balancer: bool,
}

pub(super) fn validate_network(
    raw: RawNetwork,
    project: &str,
    report: &mut Report<'_>,
) -> NetworkKeys {
    let RawNetwork {
        subnets,
        security_groups,
        allow_from,
        tasks,
        egress,
        load_balancer,
    } = raw;
    let internal = match load_balancer.as_deref() {
        None | Some("internet-facing") => false,
        Some("internal") => true,
        Some(other) => {
            report.add(
                "network.load_balancer",
                format!("`network.load_balancer` = {other:?} is not \"internet-facing\" (the default) or \"internal\" (private addresses only, for services other services call)"),
            );
            false
        }
    };
    let egress_given = egress.is_some();
    let egress = match egress.as_deref() {
        None | Some("nat") => Egress::Nat,
        Some("endpoints") => Egress::Endpoints,
        Some(other) => {
            report.add(
                "network.egress",
                format!("`network.egress` = {other:?} is not \"nat\" (one NAT gateway) or \"endpoints\" (VPC endpoints for ECR, S3, CloudWatch Logs and the secret stores)"),
            );
            Egress::Nat
        }
    };
    let tasks_network = match tasks.as_deref() {
        None | Some("public") => {
            if egress_given {
                report.add(
                    "network.egress",
                    "`network.egress` is how private tasks reach ECR and S3; it needs `network.tasks = \"private\"` (public tasks go out through the internet gateway)".to_string(),
                );
            }
            TasksNetwork::Public
        }
        Some("private") if !subnets.is_empty() => {
            report.add(
                "network.tasks",
                "`network.tasks = \"private\"` makes private subnets in the VPC mldeploy creates; with `network.subnets`, name your private subnets there instead (mldeploy checks they reach ECR, S3 and CloudWatch Logs)".to_string(),
            );
            TasksNetwork::Public
        }
        Some("private") => TasksNetwork::Private(egress),
        Some(other) => {
            report.add(
                "network.tasks",
                format!("`network.tasks` = {other:?} is not \"public\" (tasks in public subnets with public IPs) or \"private\" (tasks in private subnets, reaching out through network.egress)"),
            );
            TasksNetwork::Public
        }
    };
    let allow_from = allow_from.unwrap_or_else(|| vec!["0.0.0.0/0".to_string()]);
    if allow_from.is_empty() {
        report.add(
            "network.allow_from",
            "`network.allow_from` is empty, so nobody could reach the load balancer; name the CIDR ranges that may (the default is everyone, [\"0.0.0.0/0\"])".to_string(),
        );
    }
    for cidr in &allow_from {
        if !is_cidr(cidr) {
            report.add(
                "network.allow_from",
                format!("`network.allow_from` holds {cidr:?}, which is not a CIDR range like \"10.0.0.0/8\" or \"2001:db8::/32\""),
            );
        }
    }
    if !subnets.is_empty() {
        if let Some(bad) = subnets.iter().find(|s| !s.starts_with("subnet-")) {
            report.add(
                "network.subnets",
                format!("`network.subnets` holds {bad:?}, which is not a subnet id (subnet-...)"),
            );
        } else if subnets.len() < 2 {
            report.add(
                "network.subnets",
                "`network.subnets` needs at least two subnets, in two availability zones: a load balancer spans two".to_string(),
            );
        }
    }
    if let Some(bad) = security_groups.iter().find(|g| !g.starts_with("sg-")) {
        report.add(
            "network.security_groups",
            format!("`network.security_groups` holds {bad:?}, which is not a security group id (sg-...)"),
        );
    } else if !security_groups.is_empty() && subnets.is_empty() {
        report.add(
            "network.security_groups",
            "`network.security_groups` needs `network.subnets`: the groups belong to your VPC, and the VPC mldeploy creates has none of them".to_string(),
        );
    } else if security_groups.len() > MAX_EXTRA_SECURITY_GROUPS {
        report.add(
            "network.security_groups",
            format!(
                "`network.security_groups` names {} groups; a Fargate task takes five, one of them mldeploy's {project}-tasks, so at most {MAX_EXTRA_SECURITY_GROUPS}",
                security_groups.len(),
            ),
        );
    }
    NetworkKeys {
        subnets,
        security_groups,
        allow_from,
        tasks_network,
        internal_load_balancer: internal,
    }
}

/// `10.0.0.0/8`, `203.0.113.7/32`, `2001:db8::/32`: an address and a prefix length it can have.
fn is_cidr(text: &str) -> bool {
    let Some((address, bits)) = text.split_once('/') else {
        return false;
    };
    let Ok(bits) = bits.parse::<u8>() else {
        return false;
    };
    match address.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => bits <= 32,
        Ok(std::net::IpAddr::V6(_)) => bits <= 128,
        Err(_) => false,
    }
}
