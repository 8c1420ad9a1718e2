//! mldeploy's own fixed waits on AWS's clock (how long it lets IAM settle): real seconds on AWS.
//! The sandbox, whose AWS clock runs faster, sets `MLDEPLOY_TIME_SCALE` (wall seconds per AWS
//! second) so that those waits keep their place among its scaled events; it is not a setting for
//! users.

use std::time::Duration;

/// How long `aws` (a span of AWS time) lasts here.
pub fn scaled(aws: Duration) -> Duration {
    aws.mul_f64(scale())
}

fn scale() -> f64 {
    std::env::var("MLDEPLOY_TIME_SCALE")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0 && *s <= 1.0)
        .unwrap_or(1.0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_unset_or_unusable_scale_leaves_aws_time_as_it_is() {
        // One test owns the variable: parallel tests must not see it change.
        let ten = std::time::Duration::from_secs(10);
        for (value, expect) in [
            (None, 10.0),
            (Some("0.02"), 0.2),
            (Some("0"), 10.0),
            (Some("2"), 10.0),
            (Some("x"), 10.0),
        ] {
            match value {
                Some(v) => std::env::set_var("MLDEPLOY_TIME_SCALE", v),
                None => std::env::remove_var("MLDEPLOY_TIME_SCALE"),
            }
            let got = super::scaled(ten).as_secs_f64();
            assert!((got - expect).abs() < 1e-9, "{value:?}: {got}");
        }
        std::env::remove_var("MLDEPLOY_TIME_SCALE");
    }
}
