//! The project tag, `mldeploy:project=<name>`, that marks everything mldeploy creates: one
//! builder for each AWS SDK's `Tag` type, and the one test of whether a resource is ours.
//! `destroy` deletes nothing that fails [`is_ours`].

use std::collections::HashMap;

use anyhow::Context;

/// The tag key on everything mldeploy creates for a project.
pub const PROJECT_TAG: &str = "mldeploy:project";

/// A tag as each SDK shapes it: a key and a value, either of which an SDK may leave unset.
pub trait KeyValue {
    fn key_value(&self) -> (Option<&str>, Option<&str>);
}

macro_rules! optional_key_value {
    ($($tag:ty),*) => {$(
        impl KeyValue for $tag {
            fn key_value(&self) -> (Option<&str>, Option<&str>) {
                (self.key(), self.value())
            }
        }
    )*};
}
optional_key_value!(
    aws_sdk_ec2::types::Tag,
    aws_sdk_ecs::types::Tag,
    aws_sdk_elasticloadbalancingv2::types::Tag
);

macro_rules! required_key_value {
    ($($tag:ty),*) => {$(
        impl KeyValue for $tag {
            fn key_value(&self) -> (Option<&str>, Option<&str>) {
                (Some(self.key()), Some(self.value()))
            }
        }
    )*};
}
required_key_value!(aws_sdk_iam::types::Tag, aws_sdk_ecr::types::Tag);

/// Whether these tags mark a resource as the project's.
pub fn is_ours<T: KeyValue>(tags: &[T], project: &str) -> bool {
    tags.iter()
        .any(|t| t.key_value() == (Some(PROJECT_TAG), Some(project)))
}

/// The same test for CloudWatch Logs, whose tags are a map.
pub fn is_ours_map(tags: Option<&HashMap<String, String>>, project: &str) -> bool {
    tags.and_then(|t| t.get(PROJECT_TAG))
        .is_some_and(|v| v == project)
}

/// The tag's value among these tags (`Name`, say), when it is there.
pub fn value_of<'a, T: KeyValue>(tags: &'a [T], key: &str) -> Option<&'a str> {
    tags.iter().find_map(|t| match t.key_value() {
        (Some(k), v) if k == key => v,
        _ => None,
    })
}

/// What a refusal to take over a look-alike says: `<what> exists but lacks the tag`.
pub fn not_ours(what: &str, project: &str) -> String {
    format!("{what} exists but lacks the {PROJECT_TAG}={project} tag")
}

pub fn ec2(key: &str, value: &str) -> aws_sdk_ec2::types::Tag {
    aws_sdk_ec2::types::Tag::builder()
        .key(key)
        .value(value)
        .build()
}

pub fn ecs(project: &str) -> aws_sdk_ecs::types::Tag {
    aws_sdk_ecs::types::Tag::builder()
        .key(PROJECT_TAG)
        .value(project)
        .build()
}

pub fn elbv2(project: &str) -> aws_sdk_elasticloadbalancingv2::types::Tag {
    aws_sdk_elasticloadbalancingv2::types::Tag::builder()
        .key(PROJECT_TAG)
        .value(project)
        .build()
}

pub fn iam(project: &str) -> anyhow::Result<aws_sdk_iam::types::Tag> {
    aws_sdk_iam::types::Tag::builder()
        .key(PROJECT_TAG)
        .value(project)
        .build()
        .context("building the IAM project tag")
}

pub fn ecr(project: &str) -> anyhow::Result<aws_sdk_ecr::types::Tag> {
    aws_sdk_ecr::types::Tag::builder()
        .key(PROJECT_TAG)
        .value(project)
        .build()
        .context("building the ECR project tag")
}

/// The EC2 filter that finds only the project's resources.
pub fn ec2_filter(project: &str) -> aws_sdk_ec2::types::Filter {
    aws_sdk_ec2::types::Filter::builder()
        .name(format!("tag:{PROJECT_TAG}"))
        .values(project)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_project_tag_with_the_projects_name_is_ours() {
        let tags = [ec2("Name", "app"), ec2(PROJECT_TAG, "app")];
        assert!(is_ours(&tags, "app"));
        assert!(!is_ours(&tags, "other"));
        assert!(!is_ours(&[ec2("Name", "app")], "app"));
        assert_eq!(value_of(&tags, "Name"), Some("app"));
        let iam_tags = [iam("app").unwrap()];
        assert!(is_ours(&iam_tags, "app"));
        let map = HashMap::from([(PROJECT_TAG.to_string(), "app".to_string())]);
        assert!(is_ours_map(Some(&map), "app") && !is_ours_map(Some(&map), "b"));
        assert!(!is_ours_map(None, "app"));
    }
}
