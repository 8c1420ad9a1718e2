//! How the load balancer and ECS judge a task, from `[service]`: the load balancer's health
//! check and draining, the container's health check, and how long the model may take to load
//! (the service's grace period). Defaults suit an inference service: a new task takes traffic
//! after two checks 10 s apart, and an old one drains for 30 s (a prediction takes milliseconds
//! to seconds), where AWS's defaults (30 s x 5, 300 s) take minutes per deployment.

use super::diagnostics::Report;

/// The timings, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    /// The target group's health-check interval (ALB: 5-300 s).
    pub check_interval: u32,
    /// Consecutive successes before a target is healthy (ALB: 2-10).
    pub healthy_threshold: u32,
    /// Consecutive failures before a target is unhealthy (ALB: 2-10).
    pub unhealthy_threshold: u32,
    /// How long a deregistered target drains (ALB: 0-3600 s).
    pub deregistration_delay: u32,
    /// The longest the app may take to load its model before it answers: the service's
    /// health-check grace period, and the container health check's start period.
    pub model_load_time: u32,
    /// The container health check's interval (ECS: 5-300 s).
    pub ready_check_interval: u32,
    /// Its retries (ECS: 1-10).
    pub ready_check_retries: u32,
}

/// ECS's longest container health-check start period.
pub const MAX_START_PERIOD: u32 = 300;

impl Default for Health {
    fn default() -> Health {
        Health {
            check_interval: 10,
            healthy_threshold: 2,
            unhealthy_threshold: 3,
            deregistration_delay: 30,
            model_load_time: 60,
            ready_check_interval: 10,
            ready_check_retries: 3,
        }
    }
}

impl Health {
    /// The target group's health-check timeout: 5 s, less than the interval as ALB requires.
    pub fn check_timeout(&self) -> u32 {
        5.min(self.check_interval.saturating_sub(1)).max(2)
    }

    /// The container health check's timeout (ECS: 2-60 s), shorter than its interval.
    pub fn ready_check_timeout(&self) -> u32 {
        5.min(self.ready_check_interval.saturating_sub(1)).max(2)
    }

    /// The container health check's start period: the model's load time, as far as ECS allows.
    pub fn start_period(&self) -> u32 {
        self.model_load_time.min(MAX_START_PERIOD)
    }

    /// What, when anything, would let ECS stop a task still loading its model: a container
    /// health check (`interval`, `retries`, `start_period` as the task definition has them) that
    /// gives up before `model_load_time`. ECS ignores the load balancer's checks for the grace
    /// period, which is the load time itself.
    pub fn loading_trap(&self, interval: u32, retries: u32, start_period: u32) -> Option<String> {
        let survives = start_period + interval * retries;
        (survives < self.model_load_time).then(|| {
            format!(
                "the container health check gives up after about {survives} s (startPeriod {start_period} s + {retries} retries x {interval} s), before service.model_load_time ({} s): ECS would stop a task still loading its model",
                self.model_load_time
            )
        })
    }
}

/// The raw values, as mldeploy.toml has them.
#[derive(Debug, Default)]
pub(super) struct RawHealth {
    pub check_interval: Option<String>,
    pub healthy_threshold: Option<u32>,
    pub unhealthy_threshold: Option<u32>,
    pub deregistration_delay: Option<String>,
    pub model_load_time: Option<String>,
    pub ready_check_interval: Option<String>,
    pub ready_check_retries: Option<u32>,
}

pub(super) fn validate(raw: RawHealth, report: &mut Report<'_>) -> Health {
    let d = Health::default();
    let RawHealth {
        check_interval,
        healthy_threshold,
        unhealthy_threshold,
        deregistration_delay,
        model_load_time,
        ready_check_interval,
        ready_check_retries,
    } = raw;
    let mut seconds = |key: &str, value: Option<String>, default: u32, range: (u32, u32)| {
        let Some(text) = value else { return default };
        match parse_seconds(&text) {
            Some(s) if s >= range.0 && s <= range.1 => s,
            Some(_) => {
                report.add(
                    &format!("service.{key}"),
                    format!(
                        "`service.{key}` = {text:?} must be between {} s and {} s",
                        range.0, range.1
                    ),
                );
                default
            }
            None => {
                report.add(
                    &format!("service.{key}"),
                    format!("`service.{key}` = {text:?} is not a duration like \"10s\" or \"2m\""),
                );
                default
            }
        }
    };
    let check_interval = seconds(
        "health_check_interval",
        check_interval,
        d.check_interval,
        (5, 300),
    );
    let deregistration_delay = seconds(
        "deregistration_delay",
        deregistration_delay,
        d.deregistration_delay,
        (0, 3600),
    );
    let model_load_time = seconds(
        "model_load_time",
        model_load_time,
        d.model_load_time,
        (0, 3600),
    );
    let ready_check_interval = seconds(
        "ready_check_interval",
        ready_check_interval,
        d.ready_check_interval,
        (5, 300),
    );
    let mut count = |key: &str, value: Option<u32>, default: u32, range: (u32, u32)| match value {
        None => default,
        Some(n) if n >= range.0 && n <= range.1 => n,
        Some(n) => {
            report.add(
                &format!("service.{key}"),
                format!(
                    "`service.{key}` = {n} must be between {} and {}",
                    range.0, range.1
                ),
            );
            default
        }
    };
    Health {
        check_interval,
        healthy_threshold: count(
            "healthy_threshold",
            healthy_threshold,
            d.healthy_threshold,
            (2, 10),
        ),
        unhealthy_threshold: count(
            "unhealthy_threshold",
            unhealthy_threshold,
            d.unhealthy_threshold,
            (2, 10),
        ),
        deregistration_delay,
        model_load_time,
        ready_check_interval,
        ready_check_retries: count(
            "ready_check_retries",
            ready_check_retries,
            d.ready_check_retries,
            (1, 10),
        ),
    }
}

/// Whole seconds in "90s", "2m", "1h", "1m30s" (humantime's forms, which mldeploy prints) or
/// "45" (seconds); "0s" is allowed, a fraction of a second is not.
pub(super) fn parse_seconds(text: &str) -> Option<u32> {
    super::duration::whole_seconds(text).and_then(|s| u32::try_from(s).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_in_seconds_minutes_or_hours() {
        assert_eq!(parse_seconds("0s"), Some(0));
        assert_eq!(parse_seconds("90"), Some(90));
        assert_eq!(parse_seconds("2m"), Some(120));
        assert_eq!(parse_seconds("1h"), Some(3600));
        assert_eq!(parse_seconds("1m30s"), Some(90));
        assert_eq!(parse_seconds("1h 30m"), Some(5400));
        assert_eq!(parse_seconds("1.5m"), Some(90));
        assert_eq!(parse_seconds("1.5s"), None);
        assert_eq!(parse_seconds("500ms"), None);
        assert_eq!(parse_seconds("ten"), None);
    }

    #[test]
    fn a_container_check_that_gives_up_before_the_model_loads_is_a_trap() {
        let h = Health {
            model_load_time: 600,
            ..Health::default()
        };
        // The built-in template's check: start period 300 (ECS's most) + 3 x 10 s.
        let trap = h.loading_trap(10, 3, h.start_period()).unwrap();
        assert!(trap.contains("about 330 s"), "{trap}");
        assert_eq!(Health::default().loading_trap(10, 3, 60), None);
        assert_eq!(h.check_timeout(), 5);
        let fast = Health {
            check_interval: 5,
            ..Health::default()
        };
        assert_eq!(fast.check_timeout(), 4);
    }
}
