//! Integration tests: the real binary against the shared local sandbox (scripts/sandbox). One
//! test binary, so the suite links once.

mod architecture;
mod autoscaling;
mod bad_input;
mod blue_green;
mod build_push;
mod cli_conventions;
mod config_errors;
mod cutover;
mod destroy;
mod docker_target;
mod domain;
mod environments;
mod example;
mod faults;
mod https;
mod load_balancer;
mod lock;
mod logs;
mod model_lock;
mod model_truth;
mod network;
mod private_network;
mod proxies;
mod registry;
mod remote_engines;
mod resources;
mod rollback;
mod rollout_clock;
mod sandbox_strategies;
mod security;
mod snapshots;
mod support;
mod up;
mod watcher_scripted;
