//! The model gate: `[gate]`'s sample requests, sent to the serving revision (through the
//! production route) and to the new one (through the test route) while no production request
//! reaches the new one; the numbers at `gate.value` in each pair of answers are compared, with a
//! tolerance that depends on whether the model changed, and so are the failures and the p95
//! latencies. The verdict comes with a report of everything compared.

use std::time::{Duration, Instant};

use hyper::Method;
use serde::Serialize;

use crate::config::{Gate, GateRequest};
use crate::smoke::{Answer, Prober, SmokeRequest};

mod judge;

pub use judge::{judge, numbers_at, p95, Outcome, Sample};

/// How far an image-only change may move a value: it must give the same predictions, up to
/// floating-point noise in how they are printed.
pub const IMAGE_ONLY_TOLERANCE: f64 = 1e-9;

/// Below this, a slower p95 is never a failure: a sample of a few requests measures network
/// jitter as much as the model.
pub const LATENCY_NOISE: Duration = Duration::from_millis(50);

/// One request's row in the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub method: String,
    pub path: String,
    /// The serving revision's values; None when it did not answer with numbers (or none serves).
    pub serving: Option<Vec<f64>>,
    pub new: Option<Vec<f64>>,
    /// The largest relative change between the two, when both answered.
    pub change: Option<f64>,
    /// Why the new revision's answer does not count, when it does not.
    pub new_failure: Option<String>,
    pub serving_millis: Option<u64>,
    pub new_millis: u64,
}

/// What the gate compared and what it decided.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateReport {
    pub rows: Vec<Row>,
    /// The tolerance applied: `gate.tolerance` for a new model version, none for an image-only
    /// change.
    pub tolerance: f64,
    pub model_changed: bool,
    pub largest_change: Option<f64>,
    pub failure_share: f64,
    pub serving_p95_millis: Option<u64>,
    pub new_p95_millis: u64,
    /// Why the new revision does not pass; empty when it does.
    pub failures: Vec<String>,
}

impl GateReport {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    /// The report, one line each, for the terminal.
    pub fn lines(&self) -> Vec<String> {
        let fmt = |v: &Option<Vec<f64>>| match v {
            None => "-".to_string(),
            Some(v) if v.len() == 1 => format!("{}", v[0]),
            Some(v) => format!("{v:?}"),
        };
        let mut lines: Vec<String> = self
            .rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let change = match (r.change, &r.new_failure) {
                    (_, Some(why)) => format!("FAILED: {why}"),
                    (Some(c), None) => format!("change {:.4} %", c * 100.0),
                    (None, None) => "nothing to compare with".to_string(),
                };
                format!(
                    "  #{} {} {}: serving {} -> new {} ({change}; {} ms)",
                    i + 1,
                    r.method,
                    r.path,
                    fmt(&r.serving),
                    fmt(&r.new),
                    r.new_millis
                )
            })
            .collect();
        let largest = self
            .largest_change
            .map(|c| format!("{:.4} %", c * 100.0))
            .unwrap_or_else(|| "-".to_string());
        let allowed = if self.model_changed {
            format!(
                "{:.4} % (gate.tolerance, new model version)",
                self.tolerance * 100.0
            )
        } else {
            "none (same model version: an image change must give the same predictions)".to_string()
        };
        lines.push(format!(
            "  largest change {largest}, allowed {allowed}; failed answers {:.1} %; p95 serving {} ms, new {} ms",
            self.failure_share * 100.0,
            self.serving_p95_millis
                .map(|m| m.to_string())
                .unwrap_or_else(|| "-".to_string()),
            self.new_p95_millis
        ));
        lines
    }
}

/// Where the two revisions answer: the same URL, the new one through the test route's header.
pub struct Routes<'a> {
    pub base_url: &'a str,
    /// None when nothing served before (a first deployment): nothing to compare with.
    pub serving: Option<&'a Prober>,
    pub new: &'a Prober,
}

/// Sends every sample request to both revisions, the serving one first.
pub async fn sample(gate: &Gate, routes: &Routes<'_>) -> Vec<Sample> {
    let mut samples = Vec::new();
    for request in &gate.requests {
        let serving = match routes.serving {
            Some(prober) => Some(ask(prober, routes.base_url, request, &gate.value).await),
            None => None,
        };
        let new = ask(routes.new, routes.base_url, request, &gate.value).await;
        samples.push(Sample {
            request: request.clone(),
            serving,
            new,
        });
    }
    samples
}

async fn ask(prober: &Prober, base_url: &str, request: &GateRequest, pointer: &str) -> Outcome {
    let smoke = SmokeRequest {
        method: Method::from_bytes(request.method.as_bytes()).unwrap_or(Method::POST),
        path: request.path.clone(),
        body: request.body.clone(),
        expect_status: 200,
    };
    let url = format!("{}{}", base_url.trim_end_matches('/'), request.path);
    let sent = Instant::now();
    let answer = prober.send(&url, &smoke).await;
    let millis = u64::try_from(sent.elapsed().as_millis()).unwrap_or(u64::MAX);
    let result = match answer {
        Answer::Http { status, body, .. } if (200..300).contains(&status) => {
            match serde_json::from_str::<serde_json::Value>(&body) {
                Ok(json) => numbers_at(&json, pointer)
                    .ok_or_else(|| format!("the answer holds no number at {pointer}")),
                Err(_) => Err(format!("answered {status} with a body that is not JSON")),
            }
        }
        Answer::Http { status, .. } => Err(format!("answered {status}")),
        Answer::Unreachable(why) | Answer::Untrusted(why) => Err(why),
    };
    Outcome { result, millis }
}
