//! The AWS partition a region belongs to (`aws`, `aws-cn`, `aws-us-gov`, ...), for the ARNs
//! mldeploy writes into IAM policies: an ARN in the wrong partition names nothing, so a policy
//! written with `arn:aws:` grants nothing in Beijing or GovCloud.
//!
//! The regions' patterns are the partitions' `regionRegex` in the AWS SDKs' endpoint rules
//! (partitions.json, https://docs.aws.amazon.com/whitepapers/latest/aws-fault-isolation-boundaries/partitions.html):
//! the same table the SDK resolves this run's endpoints with, so the ARNs and the endpoints agree.

/// The partition of `region`.
pub fn of(region: &str) -> &'static str {
    let starts = |prefix: &str| region.starts_with(prefix);
    if starts("cn-") {
        "aws-cn"
    } else if starts("us-gov-") {
        "aws-us-gov"
    } else if starts("us-isob-") {
        "aws-iso-b"
    } else if starts("us-iso-") {
        "aws-iso"
    } else if starts("eu-isoe-") {
        "aws-iso-e"
    } else if starts("us-isof-") {
        "aws-iso-f"
    } else {
        "aws"
    }
}

/// `arn:<partition>:<service>:<region>:<account>:<rest>`, the partition `region`'s.
pub fn arn(region: &str, service: &str, arn_region: &str, account: &str, rest: &str) -> String {
    format!("arn:{}:{service}:{arn_region}:{account}:{rest}", of(region))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_arn_is_built_in_the_partition_of_its_region() {
        assert_eq!(of("us-east-1"), "aws");
        assert_eq!(of("eu-central-2"), "aws");
        assert_eq!(of("cn-northwest-1"), "aws-cn");
        assert_eq!(of("us-gov-west-1"), "aws-us-gov");
        assert_eq!(of("us-iso-east-1"), "aws-iso");
        assert_eq!(of("us-isob-east-1"), "aws-iso-b");
        assert_eq!(
            arn("cn-north-1", "s3", "", "", "my-models"),
            "arn:aws-cn:s3:::my-models"
        );
        assert_eq!(
            arn(
                "us-gov-east-1",
                "ecr",
                "us-gov-east-1",
                "*",
                "repository/housing"
            ),
            "arn:aws-us-gov:ecr:us-gov-east-1:*:repository/housing"
        );
    }
}
