//! The validators of [deploy] (how ECS replaces a revision: rolling, blue/green, canary or linear)
//! and [gate] (the model gate that a blue/green, canary or linear deployment passes before
//! production traffic moves), each destructuring its raw table without `..`.

use std::path::{Path, PathBuf};

use super::diagnostics::Report;
use super::raw::{RawDeploy, RawGate, RawGateRequest};

/// How ECS replaces the serving revision (`deploymentConfiguration.strategy`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Tasks replaced a few at a time; users reach each new task once it is healthy.
    Rolling,
    /// All new tasks beside the old ones, tested, then all production traffic at once.
    BlueGreen,
    /// Tested, then `percent` of production traffic for `bake`, then the rest.
    Canary { percent: f64, bake_minutes: u32 },
    /// Tested, then `percent` more of production traffic every `bake`.
    Linear { percent: f64, bake_minutes: u32 },
}

impl Strategy {
    /// What the key says, for plans and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Strategy::Rolling => "rolling",
            Strategy::BlueGreen => "blue_green",
            Strategy::Canary { .. } => "canary",
            Strategy::Linear { .. } => "linear",
        }
    }

    /// Whether ECS shifts traffic between two target groups (everything but rolling).
    pub fn shifts_traffic(&self) -> bool {
        !matches!(self, Strategy::Rolling)
    }
}

/// `[deploy]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Deploy {
    pub strategy: Strategy,
    /// How long both revisions run after all production traffic moved, before the old one stops
    /// (`bakeTimeInMinutes`): the window in which `mldeploy rollback` only moves traffic back.
    pub bake_minutes: u32,
    /// How often the model gate is checked again while traffic moves and bakes.
    pub check_interval: std::time::Duration,
    /// `release_command`: run once, as a task of the new release, before any service rolls out.
    pub release_command: Option<Vec<String>>,
}

impl Default for Deploy {
    fn default() -> Deploy {
        Deploy {
            strategy: Strategy::Rolling,
            bake_minutes: 5,
            check_interval: std::time::Duration::from_secs(30),
            release_command: None,
        }
    }
}

/// One request the gate sends to both revisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateRequest {
    pub method: String,
    pub path: String,
    pub body: Option<String>,
}

/// `[gate]`: what the new revision must do, on sample requests, beside the serving one.
#[derive(Debug, Clone, PartialEq)]
pub struct Gate {
    /// The inline requests, then the file's.
    pub requests: Vec<GateRequest>,
    /// The JSON-lines file requests were read from, when one was named.
    pub requests_file: Option<PathBuf>,
    /// A JSON pointer to the number (or array of numbers) compared in each answer.
    pub value: String,
    /// The largest relative change a new model version may make to a value; an image-only change
    /// must give the same values.
    pub tolerance: f64,
    /// The largest share of the new revision's answers that may fail or hold no number.
    pub max_failure_share: f64,
    /// The new revision's p95 latency must stay under this, when set.
    pub max_p95: Option<std::time::Duration>,
    /// ... and under this many times the serving revision's p95.
    pub max_p95_ratio: f64,
}

/// ECS's range for bake times: 0 to 1440 minutes (API_DeploymentConfiguration,
/// API_CanaryConfiguration, API_LinearConfiguration).
const MAX_BAKE_MINUTES: u32 = 1440;

pub(super) fn validate_deploy(raw: RawDeploy, report: &mut Report<'_>) -> Deploy {
    let RawDeploy {
        strategy,
        bake_time,
        canary_percent,
        canary_bake_time,
        linear_step_percent,
        linear_step_bake_time,
        check_interval,
        release_command,
    } = raw;
    let d = Deploy::default();
    let mut minutes = |key: &str, value: Option<String>, default: u32| -> u32 {
        let Some(text) = value else { return default };
        match super::health::parse_seconds(&text) {
            Some(s) if s % 60 == 0 && s / 60 <= MAX_BAKE_MINUTES => s / 60,
            Some(_) => {
                report.add(
                    &format!("deploy.{key}"),
                    format!("`deploy.{key}` = {text:?} must be whole minutes from \"0m\" to \"24h\" (ECS counts bake times in minutes)"),
                );
                default
            }
            None => {
                report.add(
                    &format!("deploy.{key}"),
                    format!("`deploy.{key}` = {text:?} is not a duration like \"5m\" or \"1h\""),
                );
                default
            }
        }
    };
    let bake_minutes = minutes("bake_time", bake_time, d.bake_minutes);
    let canary_bake = minutes("canary_bake_time", canary_bake_time, 10);
    let linear_bake = minutes("linear_step_bake_time", linear_step_bake_time, 6);
    // "Valid values are multiples of 0.1 from 0.1 to 100.0" (API_CanaryConfiguration) and "from
    // 3.0 to 100.0" (API_LinearConfiguration).
    let mut percent = |key: &str, value: Option<f64>, default: f64, low: f64| -> f64 {
        let Some(p) = value else { return default };
        let tenths = (p * 10.0).round();
        if !(low..=100.0).contains(&p) || (p * 10.0 - tenths).abs() > 1e-6 {
            report.add(
                &format!("deploy.{key}"),
                format!("`deploy.{key}` = {p} must be a multiple of 0.1 from {low} to 100 (ECS's range)"),
            );
            return default;
        }
        tenths / 10.0
    };
    let canary_percent = percent("canary_percent", canary_percent, 5.0, 0.1);
    let linear_percent = percent("linear_step_percent", linear_step_percent, 10.0, 3.0);
    let strategy = match strategy.as_deref() {
        None | Some("rolling") => Strategy::Rolling,
        Some("blue_green") => Strategy::BlueGreen,
        Some("canary") => Strategy::Canary {
            percent: canary_percent,
            bake_minutes: canary_bake,
        },
        Some("linear") => Strategy::Linear {
            percent: linear_percent,
            bake_minutes: linear_bake,
        },
        Some(other) => {
            report.add(
                "deploy.strategy",
                format!("`deploy.strategy` = {other:?} is not one of \"rolling\", \"blue_green\", \"canary\", \"linear\""),
            );
            Strategy::Rolling
        }
    };
    let check_interval = match check_interval {
        None => d.check_interval,
        Some(text) => match super::health::parse_seconds(&text) {
            Some(s) if (1..=3600).contains(&s) => std::time::Duration::from_secs(u64::from(s)),
            _ => {
                report.add(
                    "deploy.check_interval",
                    format!("`deploy.check_interval` = {text:?} must be a duration from \"1s\" to \"1h\""),
                );
                d.check_interval
            }
        },
    };
    if release_command
        .as_ref()
        .is_some_and(|c| c.first().is_none_or(|program| program.trim().is_empty()))
    {
        report.add(
            "deploy.release_command",
            "`deploy.release_command` must start with the program to run (exec form: [\"python\", \"migrate.py\"]); leave it out to run nothing".into(),
        );
    }
    Deploy {
        strategy,
        bake_minutes,
        check_interval,
        release_command,
    }
}

pub(super) fn validate_gate(raw: RawGate, base: &Path, report: &mut Report<'_>) -> Gate {
    let RawGate {
        requests,
        requests_file,
        value,
        tolerance,
        max_failure_share,
        max_p95,
        max_p95_ratio,
    } = raw;
    let mut checked = Vec::new();
    let mut from_file = None;
    if let (None, None) = (&requests, &requests_file) {
        report.add(
            "gate.requests",
            "[gate] needs sample requests: `requests = [{ path = \"/predict\", body = '...' }]` or `requests_file = \"gate/requests.jsonl\"`".to_string(),
        );
    }
    for (i, r) in requests.unwrap_or_default().into_iter().enumerate() {
        if let Some(request) = gate_request(r, &format!("`gate.requests` #{}", i + 1), report) {
            checked.push(request);
        }
    }
    if let Some(rel) = requests_file {
        let path = base.join(&rel);
        match std::fs::read_to_string(&path) {
            Err(e) => report.add(
                "gate.requests_file",
                format!("`gate.requests_file`: cannot read {}: {e}", path.display()),
            ),
            Ok(text) => {
                for (n, line) in text.lines().enumerate() {
                    if line.trim().is_empty() {
                        continue;
                    }
                    let at = format!("{}:{}", path.display(), n + 1);
                    match serde_json::from_str::<RawGateRequest>(line) {
                        Ok(r) => {
                            if let Some(request) = gate_request(r, &at, report) {
                                checked.push(request);
                            }
                        }
                        Err(e) => report.add(
                            "gate.requests_file",
                            format!("{at}: not a request like {{\"path\": \"/predict\", \"body\": {{...}}}}: {e}"),
                        ),
                    }
                }
                if checked.is_empty() {
                    report.add(
                        "gate.requests_file",
                        format!("{} holds no request", path.display()),
                    );
                }
                from_file = Some(path);
            }
        }
    }
    let value = value.unwrap_or_default();
    if !value.starts_with('/') {
        report.add(
            "gate.value",
            format!("`gate.value` = {value:?} must be a JSON pointer to the prediction in each answer, like \"/prediction\" or \"/predictions\""),
        );
    }
    let share = |key: &str, v: Option<f64>, default: f64, report: &mut Report<'_>| match v {
        None => default,
        Some(x) if (0.0..=1.0).contains(&x) => x,
        Some(x) => {
            report.add(
                &format!("gate.{key}"),
                format!("`gate.{key}` = {x} must be between 0 and 1"),
            );
            default
        }
    };
    let tolerance = share("tolerance", tolerance, 0.05, report);
    let max_failure_share = share("max_failure_share", max_failure_share, 0.0, report);
    let max_p95 = max_p95.and_then(|text| match parse_millis(&text) {
        Some(ms) if ms > 0 => Some(std::time::Duration::from_millis(ms)),
        _ => {
            report.add(
                "gate.max_p95",
                format!("`gate.max_p95` = {text:?} is not a duration like \"250ms\" or \"2s\""),
            );
            None
        }
    });
    let max_p95_ratio = match max_p95_ratio {
        None => 2.0,
        Some(r) if r >= 1.0 => r,
        Some(r) => {
            report.add(
                "gate.max_p95_ratio",
                format!("`gate.max_p95_ratio` = {r} must be 1 or more"),
            );
            2.0
        }
    };
    Gate {
        requests: checked,
        requests_file: from_file,
        value,
        tolerance,
        max_failure_share,
        max_p95,
        max_p95_ratio,
    }
}

fn gate_request(raw: RawGateRequest, at: &str, report: &mut Report<'_>) -> Option<GateRequest> {
    let RawGateRequest { method, path, body } = raw;
    let body = body.map(|b| match b {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    });
    let method = method
        .unwrap_or_else(|| if body.is_some() { "POST" } else { "GET" }.to_string())
        .to_ascii_uppercase();
    if !["GET", "POST", "PUT"].contains(&method.as_str()) {
        report.add(
            "gate.requests",
            format!("{at}: method {method:?} is not GET, POST or PUT"),
        );
        return None;
    }
    let Some(path) = path.filter(|p| p.starts_with('/')) else {
        report.add(
            "gate.requests",
            format!("{at}: `path` must be given and start with /"),
        );
        return None;
    };
    Some(GateRequest { method, path, body })
}

/// Milliseconds in "250ms", "2s" or "250" (milliseconds).
fn parse_millis(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    match unit {
        "" | "ms" => Some(n),
        "s" => n.checked_mul(1000),
        _ => None,
    }
}
