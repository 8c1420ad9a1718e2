//! Copies an image by digest from one ECR repository to another through the registry's HTTP API
//! (the OCI distribution API, which ECR serves): the manifest's bytes are put unchanged, so the
//! copy has the same digest; each blob the target lacks is mounted from the source when both
//! are in one registry, else streamed from one to the other without touching the disk.
//!
//! `oci-client` (the ORAS project's client) speaks the API: the manifest exactly as stored,
//! blob existence, cross-repository mounts, and streamed blob uploads, with ECR's redirects to
//! S3 followed; hand-writing those requests would repeat it.

use anyhow::Context;
use futures_util::TryStreamExt;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use super::ecr::RegistryLogin;
use crate::exit::{self, ExitStatus};

/// The manifest media types a copy accepts: single images and indexes, Docker's and OCI's.
const MANIFEST_TYPES: [&str; 4] = [
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
];

/// One side of a copy: a repository of a registry, and the login for it.
pub struct Side<'a> {
    /// The registry's host, like `123456789012.dkr.ecr.us-east-1.amazonaws.com`.
    pub registry: &'a str,
    pub repository: &'a str,
    pub login: &'a RegistryLogin,
}

/// What a copy did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Copied {
    /// Blobs mounted from the source repository (same registry).
    pub mounted: usize,
    /// Blobs streamed from the source to the target.
    pub streamed: usize,
    pub bytes_streamed: u64,
    /// Blobs the target had already.
    pub present: usize,
}

/// A manifest's blobs (config and layers) and, for an index, the manifests it lists.
#[derive(Debug, Default, PartialEq, Eq)]
struct Parts {
    blobs: Vec<(String, u64)>,
    children: Vec<String>,
    media_type: String,
}

/// Reads what a manifest refers to. A manifest without `mediaType` (OCI allows it) is an index
/// when it lists manifests, else an image manifest.
fn parts(manifest: &[u8]) -> anyhow::Result<Parts> {
    let value: serde_json::Value =
        serde_json::from_slice(manifest).context("the image's manifest is not JSON")?;
    let descriptor = |d: &serde_json::Value| {
        let digest = d["digest"].as_str().map(str::to_string);
        digest.map(|digest| (digest, d["size"].as_u64().unwrap_or(0)))
    };
    let children: Vec<String> = value["manifests"]
        .as_array()
        .map(|list| list.iter().filter_map(descriptor).map(|(d, _)| d).collect())
        .unwrap_or_default();
    let is_index = value["manifests"].is_array();
    let blobs = std::iter::once(&value["config"])
        .chain(value["layers"].as_array().into_iter().flatten())
        .filter_map(descriptor)
        .collect();
    let media_type = value["mediaType"].as_str().map(str::to_string).unwrap_or(
        if is_index {
            "application/vnd.oci.image.index.v1+json"
        } else {
            "application/vnd.oci.image.manifest.v1+json"
        }
        .to_string(),
    );
    Ok(Parts {
        blobs,
        children,
        media_type,
    })
}

fn client() -> Client {
    Client::new(ClientConfig {
        protocol: ClientProtocol::Https,
        ..ClientConfig::default()
    })
}

fn auth(login: &RegistryLogin) -> RegistryAuth {
    RegistryAuth::Basic(login.username.clone(), login.password.clone())
}

/// Copies `digest` from `from` to `to`, tagged `tag` there. Returns what it moved.
pub async fn copy(
    from: &Side<'_>,
    to: &Side<'_>,
    digest: &str,
    tag: &str,
) -> anyhow::Result<Copied> {
    let client = client();
    client
        .store_auth_if_needed(from.registry, &auth(from.login))
        .await;
    client
        .store_auth_if_needed(to.registry, &auth(to.login))
        .await;
    let mut copied = Copied::default();
    let target = Reference::with_tag(to.registry.into(), to.repository.into(), tag.into());
    let (manifest, media_type) =
        manifest_with_blobs(&client, from, to, digest, &mut copied).await?;
    // An index's images go first, by digest, so the index never names a manifest not there.
    for child in &parts(&manifest)?.children {
        let (bytes, child_type) =
            manifest_with_blobs(&client, from, to, child, &mut copied).await?;
        put_manifest(
            &client,
            &target.clone_with_digest(child.clone()),
            bytes,
            &child_type,
            child,
        )
        .await?;
    }
    put_manifest(&client, &target, manifest, &media_type, digest).await?;
    Ok(copied)
}

/// Reads a manifest from the source, checking it has the digest asked for, and makes sure the
/// target has each blob it names.
async fn manifest_with_blobs(
    client: &Client,
    from: &Side<'_>,
    to: &Side<'_>,
    digest: &str,
    copied: &mut Copied,
) -> anyhow::Result<(bytes::Bytes, String)> {
    let source =
        Reference::with_digest(from.registry.into(), from.repository.into(), digest.into());
    let (manifest, got) = client
        .pull_manifest_raw(&source, &auth(from.login), &MANIFEST_TYPES)
        .await
        .map_err(|e| registry_error(e, &format!("reading {source}'s manifest")))?;
    // oci-client checked the bytes against the digest; the registry must have answered the one
    // asked for, so the bytes put are the image's.
    if got != digest {
        return Err(exit::error(
            ExitStatus::Failed,
            format!("{source}: the registry answered a manifest with digest {got}"),
        ));
    }
    let parts = parts(&manifest)?;
    let target = Reference::with_digest(to.registry.into(), to.repository.into(), digest.into());
    for (blob, size) in &parts.blobs {
        copy_blob(
            client,
            &source,
            &target,
            from.registry == to.registry,
            blob,
            *size,
            copied,
        )
        .await?;
    }
    Ok((manifest, parts.media_type))
}

/// Makes sure the target repository has `blob`: there already, mounted from the source's
/// repository (one registry; ECR mounts only with blob mounting enabled, else it opens an
/// upload), or streamed from the source.
async fn copy_blob(
    client: &Client,
    source: &Reference,
    target: &Reference,
    same_registry: bool,
    blob: &str,
    size: u64,
    copied: &mut Copied,
) -> anyhow::Result<()> {
    let doing = |what: &str| format!("{what} layer {blob} of {source} for {target}");
    if client
        .blob_exists(target, blob)
        .await
        .map_err(|e| registry_error(e, &doing("checking")))?
    {
        copied.present += 1;
        return Ok(());
    }
    if same_registry && client.mount_blob(target, source, blob).await.is_ok() {
        copied.mounted += 1;
        return Ok(());
    }
    let stream = client
        .pull_blob_stream(source, blob)
        .await
        .map_err(|e| registry_error(e, &doing("reading")))?;
    let stream = stream
        .stream
        .map_err(oci_client::errors::OciDistributionError::from);
    client
        .push_blob_stream(target, stream, blob, Some(size))
        .await
        .map_err(|e| registry_error(e, &doing("uploading")))?;
    copied.streamed += 1;
    copied.bytes_streamed += size;
    Ok(())
}

async fn put_manifest(
    client: &Client,
    target: &Reference,
    manifest: bytes::Bytes,
    media_type: &str,
    digest: &str,
) -> anyhow::Result<()> {
    let content_type = media_type
        .parse()
        .with_context(|| format!("manifest media type {media_type:?}"))?;
    client
        .push_manifest_raw(target, manifest, content_type)
        .await
        .map_err(|e| registry_error(e, &format!("putting manifest {digest} as {target}")))?;
    Ok(())
}

/// A registry error, with what was being done and what to check.
fn registry_error(e: oci_client::errors::OciDistributionError, doing: &str) -> anyhow::Error {
    exit::error(
        ExitStatus::Environment,
        format!(
            "{doing}: {e}. Check that the role running mldeploy may pull from the source repository and push to the target (mldeploy iam-policy)"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_manifest_names_its_config_and_layers() {
        let manifest = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
            "config":{"digest":"sha256:c","size":10},
            "layers":[{"digest":"sha256:a","size":100},{"digest":"sha256:b","size":200}]}"#;
        let p = parts(manifest).unwrap();
        assert_eq!(
            p.blobs,
            vec![
                ("sha256:c".to_string(), 10),
                ("sha256:a".to_string(), 100),
                ("sha256:b".to_string(), 200)
            ]
        );
        assert!(p.children.is_empty());
        assert_eq!(p.media_type, MANIFEST_TYPES[0]);
    }

    #[test]
    fn an_index_without_a_media_type_lists_its_manifests() {
        let index = br#"{"schemaVersion":2,"manifests":[{"digest":"sha256:x","size":5},{"digest":"sha256:y","size":6}]}"#;
        let p = parts(index).unwrap();
        assert_eq!(p.children, vec!["sha256:x", "sha256:y"]);
        assert!(p.blobs.is_empty());
        assert_eq!(p.media_type, "application/vnd.oci.image.index.v1+json");
    }

    #[test]
    fn a_manifest_that_is_not_json_is_refused() {
        assert!(parts(b"<html>").is_err());
    }
}
