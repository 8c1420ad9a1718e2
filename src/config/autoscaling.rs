//! `[service.autoscaling]`: the service's task count between `min_count` and `max_count`, kept
//! by Application Auto Scaling with one target-tracking policy on CPU, memory or the load
//! balancer's requests per target. Validated like every table: each problem with its key.

use super::diagnostics::Report;
use super::raw::RawAutoscaling;

/// ECS's quota of tasks per service
/// (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-quotas.html).
pub const MAX_TASKS: u32 = 5000;
/// Application Auto Scaling's default cooldowns for ECS services, both ways: 300 s
/// (https://docs.aws.amazon.com/autoscaling/application/userguide/target-tracking-scaling-policy-overview.html).
const DEFAULT_COOLDOWN: u32 = 300;
/// The longest cooldown mldeploy accepts.
const MAX_COOLDOWN: u32 = 3600;

#[derive(Debug, Clone, PartialEq)]
pub struct Autoscaling {
    pub min_count: u32,
    pub max_count: u32,
    pub metric: Metric,
    /// The value the policy keeps the metric at: a percentage for CPU and memory, requests per
    /// target per minute for requests.
    pub target: f64,
    /// Seconds.
    pub scale_in_cooldown: u32,
    pub scale_out_cooldown: u32,
}

/// What the policy tracks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Cpu,
    Memory,
    Requests,
}

impl Metric {
    /// Application Auto Scaling's predefined metric type.
    pub fn predefined(self) -> &'static str {
        match self {
            Metric::Cpu => "ECSServiceAverageCPUUtilization",
            Metric::Memory => "ECSServiceAverageMemoryUtilization",
            Metric::Requests => "ALBRequestCountPerTarget",
        }
    }

    /// The metric a predefined type names.
    pub fn of_predefined(name: &str) -> Option<Metric> {
        [Metric::Cpu, Metric::Memory, Metric::Requests]
            .into_iter()
            .find(|m| m.predefined() == name)
    }

    /// "average CPU at 70 %", "1000 requests per target".
    pub fn describe(self, target: f64) -> String {
        match self {
            Metric::Cpu => format!("average CPU at {target} %"),
            Metric::Memory => format!("average memory at {target} %"),
            Metric::Requests => format!("{target} requests per target per minute"),
        }
    }
}

/// `<table>.autoscaling` (`service`, or `workers.<name>`, which has no load balancer and so no
/// requests metric), with `<table>.desired_count` within its range.
pub(super) fn validate(
    raw: RawAutoscaling,
    table: &str,
    desired_count: u32,
    report: &mut Report<'_>,
) -> Option<Autoscaling> {
    let RawAutoscaling {
        min_count,
        max_count,
        metric,
        target,
        scale_in_cooldown,
        scale_out_cooldown,
    } = raw;
    let key = |k: &str| format!("{table}.autoscaling.{k}");
    let (Some(min_count), Some(max_count)) = (min_count, max_count) else {
        for (k, v) in [("min_count", min_count), ("max_count", max_count)] {
            if v.is_none() {
                report.add(&key(k), format!("`{}` is required in [{table}.autoscaling]: the fewest and the most tasks the autoscaler may run", key(k)));
            }
        }
        return None;
    };
    if max_count == 0 || max_count > MAX_TASKS {
        report.add(
            &key("max_count"),
            format!("`{table}.autoscaling.max_count` = {max_count} must be from 1 to {MAX_TASKS} (ECS's tasks per service)"),
        );
    }
    if min_count > max_count {
        report.add(
            &key("min_count"),
            format!("`{table}.autoscaling.min_count` = {min_count} is more than max_count = {max_count}"),
        );
    }
    if desired_count < min_count || desired_count > max_count {
        report.add(
            &format!("{table}.desired_count"),
            format!("`{table}.desired_count` = {desired_count} is outside [{table}.autoscaling]'s {min_count} to {max_count}: a new service starts with it, and the autoscaler would move it at once"),
        );
    }
    let metric = match metric.as_deref().unwrap_or("cpu") {
        "cpu" => Metric::Cpu,
        "memory" => Metric::Memory,
        "requests" if table != "service" => {
            report.add(
                &key("metric"),
                format!("`{table}.autoscaling.metric` = \"requests\" counts a load balancer's requests, and a worker has none; use \"cpu\" or \"memory\""),
            );
            Metric::Cpu
        }
        "requests" => Metric::Requests,
        other => {
            report.add(
                &key("metric"),
                format!("`{table}.autoscaling.metric` = {other:?} is not one of \"cpu\", \"memory\", \"requests\" (requests per target)"),
            );
            Metric::Cpu
        }
    };
    let target = match (target, metric) {
        (Some(t), Metric::Cpu | Metric::Memory) if !(t > 0.0 && t <= 100.0) => {
            report.add(
                &key("target"),
                format!("`{table}.autoscaling.target` = {t} must be a percentage above 0 and at most 100 for metric {:?}", metric_name(metric)),
            );
            70.0
        }
        (Some(t), Metric::Requests) if !(t > 0.0 && t.is_finite()) => {
            report.add(
                &key("target"),
                format!("`{table}.autoscaling.target` = {t} must be more than 0 requests per target per minute"),
            );
            1000.0
        }
        (Some(t), _) => t,
        (None, Metric::Requests) => {
            report.add(
                &key("target"),
                format!("`{table}.autoscaling.target` is required with metric = \"requests\": the requests per target per minute one task should serve"),
            );
            1000.0
        }
        (None, _) => 70.0,
    };
    let mut cooldown = |k: &str, value: Option<String>| -> u32 {
        let Some(text) = value else {
            return DEFAULT_COOLDOWN;
        };
        match super::health::parse_seconds(&text) {
            Some(s) if s <= MAX_COOLDOWN => s,
            _ => {
                report.add(
                    &key(k),
                    format!("`{table}.autoscaling.{k}` = {text:?} is not a duration from \"0s\" to \"1h\""),
                );
                DEFAULT_COOLDOWN
            }
        }
    };
    let scale_in_cooldown = cooldown("scale_in_cooldown", scale_in_cooldown);
    let scale_out_cooldown = cooldown("scale_out_cooldown", scale_out_cooldown);
    Some(Autoscaling {
        min_count,
        max_count,
        metric,
        target,
        scale_in_cooldown,
        scale_out_cooldown,
    })
}

fn metric_name(metric: Metric) -> &'static str {
    match metric {
        Metric::Cpu => "cpu",
        Metric::Memory => "memory",
        Metric::Requests => "requests",
    }
}
