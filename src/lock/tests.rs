//! Unit tests of lock.

use super::holder::pid_namespace;
use super::*;

#[test]
fn a_holder_says_who_and_since_when() {
    let mut h = Holder::new("up", Duration::from_secs(60));
    h.user = "alice".into();
    h.host = "build-7".into();
    h.ci_run = Some("GitHub Actions o/r run 42".into());
    h.acquired_at = 0;
    let text = h.describe();
    assert!(text.starts_with("alice@build-7 (pid "), "{text}");
    assert!(
        text.contains("`mldeploy up`, GitHub Actions o/r run 42) since 1970-01-01T00:00:00Z"),
        "{text}"
    );
    assert!(!h.is_expired());
    h.expires_at = 1;
    assert!(h.is_expired());
}

#[test]
fn a_holder_on_this_host_whose_process_is_gone_is_stale() {
    let mut h = Holder::new("up", Duration::from_secs(60));
    assert!(!h.is_gone_from_this_host(), "this process holds it");
    h.pid = u32::MAX - 1; // no such process
    assert!(h.is_gone_from_this_host());
    h.pid_namespace = Some("pid:[1]".into());
    assert!(
        !h.is_gone_from_this_host(),
        "another pid namespace's process (a container) cannot be checked"
    );
    h.pid_namespace = pid_namespace();
    h.host = "another-host".into();
    assert!(
        !h.is_gone_from_this_host(),
        "another host's process cannot be checked"
    );
}

#[test]
fn a_lock_left_behind_says_when_it_expires_and_how_to_go_on() {
    let kept = Leftover::Kept {
        location: "s3://models/.mldeploy/housing/lock".into(),
        id: "abc-1".into(),
        expires_at: 0,
        reason: "AWS did not answer within 8 s".into(),
    };
    let text = kept.to_string();
    assert!(
        text.contains("s3://models/.mldeploy/housing/lock"),
        "{text}"
    );
    assert!(text.contains("1970-01-01T00:00:00Z"), "{text}");
    assert!(text.contains("--force-unlock abc-1"), "{text}");
}

#[test]
fn an_object_that_is_not_a_lock_is_named_by_its_etag() {
    assert_eq!(
        object_id(Some("\"9b2cf535f27731c974343645a3985328\"")),
        "9b2cf535f27731c974343645a3985328"
    );
}

#[test]
fn the_lock_lives_under_the_project() {
    assert_eq!(lock_key("housing"), ".mldeploy/housing/lock");
}
