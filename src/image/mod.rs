//! Images: the build context and its content tag, the build through the Docker engine, and the
//! push to ECR.

pub mod build;
pub mod contents;
pub mod context;
pub mod copy;
pub mod dockerignore;
pub mod ecr;
pub mod endpoint;
pub mod engine;
pub mod health_check;
pub mod platform;
pub mod pull;
pub mod push;
pub mod push_stream;
pub mod ssh_dial;
