//! The gate's verdict on a sample: values compared with the tolerance, failures counted, p95
//! latencies bounded. Pure, so every rule is tested without a service.

use super::{GateReport, Row, IMAGE_ONLY_TOLERANCE, LATENCY_NOISE};
use crate::config::{Gate, GateRequest};

/// What one revision answered to one request: its numbers, or why there are none.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub result: Result<Vec<f64>, String>,
    pub millis: u64,
}

/// One request, as both revisions answered it (`serving` is None when none serves).
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub request: GateRequest,
    pub serving: Option<Outcome>,
    pub new: Outcome,
}

/// Every number at the JSON pointer: the number, or the numbers of an array (nested arrays
/// flattened, as a batch of predictions is). None when there is no number there.
pub fn numbers_at(answer: &serde_json::Value, pointer: &str) -> Option<Vec<f64>> {
    fn collect(v: &serde_json::Value, out: &mut Vec<f64>) -> bool {
        match v {
            serde_json::Value::Number(n) => n.as_f64().map(|x| out.push(x)).is_some(),
            serde_json::Value::Array(items) => items.iter().all(|i| collect(i, out)),
            _ => false,
        }
    }
    let mut out = Vec::new();
    (collect(answer.pointer(pointer)?, &mut out) && !out.is_empty()).then_some(out)
}

/// The 95th percentile by nearest rank; 0 for no sample.
pub fn p95(millis: &[u64]) -> u64 {
    let mut sorted = millis.to_vec();
    sorted.sort_unstable();
    match sorted.len() {
        0 => 0,
        n => sorted[(n * 95).div_ceil(100).max(1) - 1],
    }
}

/// The largest relative change between two answers of the same shape, each value against the
/// larger of the two in magnitude (so a value that moves away from 0 counts, and two zeros are
/// no change). None when the shapes differ.
fn largest_change(serving: &[f64], new: &[f64]) -> Option<f64> {
    (serving.len() == new.len()).then(|| {
        serving
            .iter()
            .zip(new)
            .map(|(a, b)| {
                let scale = a.abs().max(b.abs());
                if scale == 0.0 {
                    0.0
                } else {
                    (a - b).abs() / scale
                }
            })
            .fold(0.0, f64::max)
    })
}

/// Judges the sample: `model_changed` says whether the new revision serves another model
/// version (then `gate.tolerance` applies; otherwise the values must be the same).
pub fn judge(gate: &Gate, samples: &[Sample], model_changed: bool) -> GateReport {
    let tolerance = if model_changed {
        gate.tolerance
    } else {
        IMAGE_ONLY_TOLERANCE
    };
    let mut failures = Vec::new();
    let mut rows = Vec::new();
    let mut failed = 0usize;
    let mut largest: Option<f64> = None;
    for s in samples {
        let serving = s.serving.as_ref().and_then(|o| o.result.clone().ok());
        let new_failure = s.new.result.clone().err();
        if new_failure.is_some() {
            failed += 1;
        }
        let change = match (&serving, &s.new.result) {
            (Some(a), Ok(b)) => match largest_change(a, b) {
                Some(c) => Some(c),
                None => {
                    failures.push(format!(
                        "{} {}: the new revision answers {} value(s) where the serving one answers {}",
                        s.request.method,
                        s.request.path,
                        b.len(),
                        a.len()
                    ));
                    None
                }
            },
            _ => None,
        };
        if let Some(c) = change {
            largest = Some(largest.map_or(c, |l: f64| l.max(c)));
        }
        rows.push(Row {
            method: s.request.method.clone(),
            path: s.request.path.clone(),
            serving,
            new: s.new.result.clone().ok(),
            change,
            new_failure,
            serving_millis: s.serving.as_ref().map(|o| o.millis),
            new_millis: s.new.millis,
        });
    }
    if let Some(c) = largest.filter(|c| *c > tolerance) {
        failures.push(if model_changed {
            format!(
                "predictions moved by up to {:.4} %, more than gate.tolerance ({:.4} %)",
                c * 100.0,
                tolerance * 100.0
            )
        } else {
            format!(
                "predictions moved by up to {:.4} % with the same model version: an image-only change must give the same predictions",
                c * 100.0
            )
        });
    }
    let failure_share = if samples.is_empty() {
        0.0
    } else {
        failed as f64 / samples.len() as f64
    };
    if failure_share > gate.max_failure_share {
        failures.push(format!(
            "{failed} of {} answers failed or held no number at {} (gate.max_failure_share {:.1} %)",
            samples.len(),
            gate.value,
            gate.max_failure_share * 100.0
        ));
    }
    let new_p95 = p95(&samples.iter().map(|s| s.new.millis).collect::<Vec<_>>());
    let serving_millis: Vec<u64> = samples
        .iter()
        .filter_map(|s| s.serving.as_ref().map(|o| o.millis))
        .collect();
    let serving_p95 = (!serving_millis.is_empty()).then(|| p95(&serving_millis));
    if let Some(max) = gate.max_p95 {
        if u128::from(new_p95) > max.as_millis() {
            failures.push(format!(
                "p95 latency {new_p95} ms is over gate.max_p95 ({} ms)",
                max.as_millis()
            ));
        }
    }
    if let Some(old) = serving_p95 {
        let slower = new_p95.saturating_sub(old);
        if new_p95 as f64 > gate.max_p95_ratio * old as f64
            && u128::from(slower) > LATENCY_NOISE.as_millis()
        {
            failures.push(format!(
                "p95 latency {new_p95} ms is more than {} x the serving revision's ({old} ms)",
                gate.max_p95_ratio
            ));
        }
    }
    GateReport {
        rows,
        tolerance,
        model_changed,
        largest_change: largest,
        failure_share,
        serving_p95_millis: serving_p95,
        new_p95_millis: new_p95,
        failures,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn gate() -> Gate {
        Gate {
            requests: vec![],
            requests_file: None,
            value: "/prediction".into(),
            tolerance: 0.05,
            max_failure_share: 0.0,
            max_p95: None,
            max_p95_ratio: 2.0,
        }
    }

    fn sample(serving: Option<f64>, new: Result<f64, &str>, millis: (u64, u64)) -> Sample {
        Sample {
            request: GateRequest {
                method: "POST".into(),
                path: "/predict".into(),
                body: None,
            },
            serving: serving.map(|v| Outcome {
                result: Ok(vec![v]),
                millis: millis.0,
            }),
            new: Outcome {
                result: new.map(|v| vec![v]).map_err(str::to_string),
                millis: millis.1,
            },
        }
    }

    #[test]
    fn numbers_are_found_at_the_pointer_in_numbers_and_arrays() {
        let answer =
            json!({"prediction": 4.5, "batch": [[1, 2.5], [3]], "name": "x", "mixed": [1, "a"]});
        assert_eq!(numbers_at(&answer, "/prediction"), Some(vec![4.5]));
        assert_eq!(numbers_at(&answer, "/batch"), Some(vec![1.0, 2.5, 3.0]));
        assert_eq!(numbers_at(&answer, "/name"), None);
        assert_eq!(numbers_at(&answer, "/mixed"), None);
        assert_eq!(numbers_at(&answer, "/missing"), None);
        assert_eq!(numbers_at(&json!({"batch": []}), "/batch"), None);
    }

    #[test]
    fn a_new_model_may_move_predictions_within_the_tolerance_only() {
        let within = judge(&gate(), &[sample(Some(100.0), Ok(104.0), (10, 10))], true);
        assert!(within.passed(), "{:?}", within.failures);
        assert!((within.largest_change.unwrap() - 0.04 / 1.04).abs() < 1e-9);
        let beyond = judge(&gate(), &[sample(Some(100.0), Ok(120.0), (10, 10))], true);
        assert!(!beyond.passed());
        assert!(
            beyond.failures[0].contains("more than gate.tolerance"),
            "{:?}",
            beyond.failures
        );
    }

    #[test]
    fn an_image_only_change_must_give_the_same_predictions() {
        let same = judge(&gate(), &[sample(Some(0.25), Ok(0.25), (10, 10))], false);
        assert!(same.passed());
        let moved = judge(&gate(), &[sample(Some(0.25), Ok(0.2501), (10, 10))], false);
        assert!(
            moved.failures[0].contains("same model version"),
            "{:?}",
            moved.failures
        );
        // Both zero is no change; a value leaving zero is a full change.
        assert!(judge(&gate(), &[sample(Some(0.0), Ok(0.0), (1, 1))], false).passed());
        assert!(!judge(&gate(), &[sample(Some(0.0), Ok(0.1), (1, 1))], true).passed());
    }

    #[test]
    fn failed_answers_count_against_the_allowed_share() {
        let samples = [
            sample(Some(1.0), Ok(1.0), (10, 10)),
            sample(Some(1.0), Err("answered 500"), (10, 10)),
        ];
        let strict = judge(&gate(), &samples, true);
        assert_eq!(strict.failure_share, 0.5);
        assert!(
            strict.failures[0].contains("1 of 2 answers failed"),
            "{:?}",
            strict.failures
        );
        let lenient = Gate {
            max_failure_share: 0.5,
            ..gate()
        };
        assert!(judge(&lenient, &samples, true).passed());
        assert_eq!(
            judge(&lenient, &samples, true).rows[1]
                .new_failure
                .as_deref(),
            Some("answered 500")
        );
    }

    #[test]
    fn latency_is_bounded_absolutely_and_against_the_serving_revision_above_the_noise() {
        let slow: Vec<_> = (0..20)
            .map(|_| sample(Some(1.0), Ok(1.0), (100, 400)))
            .collect();
        let report = judge(&gate(), &slow, true);
        assert_eq!(
            (report.serving_p95_millis, report.new_p95_millis),
            (Some(100), 400)
        );
        assert!(
            report.failures[0].contains("more than 2 x"),
            "{:?}",
            report.failures
        );
        // Three times as slow, but by 20 ms: noise.
        let jitter: Vec<_> = (0..20)
            .map(|_| sample(Some(1.0), Ok(1.0), (10, 30)))
            .collect();
        assert!(judge(&gate(), &jitter, true).passed());
        let bounded = Gate {
            max_p95: Some(std::time::Duration::from_millis(25)),
            ..gate()
        };
        assert!(judge(&bounded, &jitter, true).failures[0].contains("over gate.max_p95"));
    }

    #[test]
    fn with_nothing_serving_only_the_new_revision_is_judged() {
        let report = judge(&gate(), &[sample(None, Ok(3.0), (0, 10))], true);
        assert!(report.passed());
        assert_eq!(report.largest_change, None);
        assert_eq!(report.serving_p95_millis, None);
    }

    #[test]
    fn p95_is_the_nearest_rank() {
        assert_eq!(p95(&[]), 0);
        assert_eq!(p95(&[7]), 7);
        let hundred: Vec<u64> = (1..=100).collect();
        assert_eq!(p95(&hundred), 95);
        assert_eq!(p95(&[5, 1, 3]), 5);
    }
}
