//! The build context: which files go to the engine (after `.dockerignore`), their content hash
//! (the image tag), and the tar stream itself, built on the fly so the context is never held in
//! memory whatever its size.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use bytes::Bytes;
use futures_util::Stream;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::dockerignore::DockerIgnore;
use crate::exit::{self, ExitStatus};

/// Where a Dockerfile that lives outside the context is put inside the tar.
const OUTSIDE_DOCKERFILE_NAME: &str = ".mldeploy.Dockerfile";
/// Bytes per chunk sent to the engine, and chunks in flight: together the memory bound.
const CHUNK: usize = 256 * 1024;
const CHUNKS_IN_FLIGHT: usize = 4;

#[derive(Debug, Clone)]
enum Kind {
    Dir,
    File { size: u64, executable: bool },
    Symlink(PathBuf),
}

#[derive(Debug, Clone)]
struct Entry {
    /// Path inside the tar, `/`-separated.
    name: String,
    path: PathBuf,
    kind: Kind,
}

/// What will be sent as the build context.
#[derive(Debug, Clone)]
pub struct BuildContext {
    entries: Vec<Entry>,
    /// The Dockerfile's path inside the tar (the engine's `dockerfile` parameter).
    pub dockerfile: String,
    pub files: usize,
    pub bytes: u64,
}

/// What else, besides the files, decides the image: it goes into the hash.
#[derive(Debug)]
pub struct BuildInputs<'a> {
    pub build_args: &'a BTreeMap<String, String>,
    pub platform: Option<&'a str>,
    pub target: Option<&'a str>,
}

impl BuildContext {
    /// Walks the context directory in a stable order, leaving out what `.dockerignore` excludes.
    /// The Dockerfile and `.dockerignore` are always sent, as Docker does.
    pub fn scan(root: &Path, dockerfile: &Path) -> anyhow::Result<BuildContext> {
        let ignore_file = root.join(".dockerignore");
        let ignore = match std::fs::read_to_string(&ignore_file) {
            Ok(text) => DockerIgnore::parse(&text).map_err(|e| {
                exit::error(
                    ExitStatus::Usage,
                    format!("{}: {e:#}", ignore_file.display()),
                )
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => DockerIgnore::default(),
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read {}", ignore_file.display()))
            }
        };

        let inside = dockerfile.strip_prefix(root).ok().map(slash_path);
        let always: Vec<String> = [Some(".dockerignore".to_string()), inside.clone()]
            .into_iter()
            .flatten()
            .collect();
        let prune = !ignore.has_exceptions();

        let mut entries = Vec::new();
        let walker = walkdir::WalkDir::new(root)
            .follow_links(false)
            .sort_by_file_name()
            .min_depth(1)
            .into_iter()
            .filter_entry(|e| {
                // Skip whole directories only when no `!` line could bring something back.
                let name = e
                    .path()
                    .strip_prefix(root)
                    .map(slash_path)
                    .unwrap_or_default();
                !(prune
                    && e.file_type().is_dir()
                    && ignore.is_excluded(&name)
                    && !always.iter().any(|a| a.starts_with(&format!("{name}/"))))
            });
        for item in walker {
            let item =
                item.with_context(|| format!("cannot read the build context {}", root.display()))?;
            let name = slash_path(item.path().strip_prefix(root)?);
            if ignore.is_excluded(&name) && !always.contains(&name) {
                continue;
            }
            let ft = item.file_type();
            let kind = if ft.is_dir() {
                Kind::Dir
            } else if ft.is_symlink() {
                Kind::Symlink(std::fs::read_link(item.path())?)
            } else if ft.is_file() {
                let meta = item.metadata()?;
                Kind::File {
                    size: meta.len(),
                    executable: is_executable(&meta),
                }
            } else {
                continue; // sockets, fifos and devices cannot be part of an image context
            };
            entries.push(Entry {
                name,
                path: item.path().to_path_buf(),
                kind,
            });
        }

        let dockerfile_name = match inside {
            Some(name) => name,
            None => {
                let meta = std::fs::metadata(dockerfile).with_context(|| {
                    format!("cannot read the Dockerfile {}", dockerfile.display())
                })?;
                entries.push(Entry {
                    name: OUTSIDE_DOCKERFILE_NAME.to_string(),
                    path: dockerfile.to_path_buf(),
                    kind: Kind::File {
                        size: meta.len(),
                        executable: false,
                    },
                });
                OUTSIDE_DOCKERFILE_NAME.to_string()
            }
        };
        let (files, bytes) = entries.iter().fold((0, 0), |(n, b), e| match e.kind {
            Kind::File { size, .. } => (n + 1, b + size),
            _ => (n, b),
        });
        Ok(BuildContext {
            entries,
            dockerfile: dockerfile_name,
            files,
            bytes,
        })
    }

    /// A SHA-256 over every entry's name, type, executable bit and content, and the build inputs:
    /// the same context and inputs always give the same hash. Reads each file once, in chunks.
    pub fn content_hash(&self, inputs: &BuildInputs<'_>) -> anyhow::Result<String> {
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        for e in &self.entries {
            hasher.update(e.name.as_bytes());
            hasher.update([0]);
            match &e.kind {
                Kind::Dir => hasher.update(b"d"),
                Kind::Symlink(target) => {
                    hasher.update(b"l");
                    hasher.update(target.as_os_str().as_encoded_bytes());
                }
                Kind::File { size, executable } => {
                    hasher.update(if *executable { b"x" } else { b"f" });
                    hasher.update(size.to_le_bytes());
                    let mut file = File::open(&e.path)
                        .with_context(|| format!("cannot read {}", e.path.display()))?;
                    loop {
                        let n = file
                            .read(&mut buf)
                            .with_context(|| format!("cannot read {}", e.path.display()))?;
                        if n == 0 {
                            break;
                        }
                        hasher.update(&buf[..n]);
                    }
                }
            }
            hasher.update([0]);
        }
        hasher.update(format!("dockerfile={}\0", self.dockerfile));
        for (k, v) in inputs.build_args {
            hasher.update(format!("arg:{k}={v}\0"));
        }
        hasher.update(format!(
            "platform={}\0target={}\0",
            inputs.platform.unwrap_or(""),
            inputs.target.unwrap_or("")
        ));
        Ok(format!("{:x}", hasher.finalize()))
    }

    /// The context as a tar stream for the engine. A blocking thread writes the tar in chunks into
    /// a small bounded channel, so memory stays flat however large the context is. The handle
    /// reports a read error, or that the engine stopped reading.
    pub fn into_tar_stream(
        self,
    ) -> (
        impl Stream<Item = Bytes> + Send + 'static,
        JoinHandle<anyhow::Result<()>>,
    ) {
        let (tx, rx) = mpsc::channel::<Bytes>(CHUNKS_IN_FLIGHT);
        let writer = tokio::task::spawn_blocking(move || self.write_tar(ChunkWriter::new(tx)));
        let stream =
            futures_util::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|b| (b, rx)) },
            );
        (stream, writer)
    }

    fn write_tar(self, out: ChunkWriter) -> anyhow::Result<()> {
        let mut tar = tar::Builder::new(out);
        // Fixed owners and times: the same files give the same tar, which keeps the engine's
        // build cache warm across machines and checkouts.
        tar.mode(tar::HeaderMode::Deterministic);
        tar.follow_symlinks(false);
        for e in &self.entries {
            tar.append_path_with_name(&e.path, &e.name)
                .with_context(|| format!("cannot add {} to the build context", e.path.display()))?;
        }
        tar.into_inner()?.flush()?;
        Ok(())
    }
}

/// Collects tar output into chunks and hands each to the async side; blocks while the channel is
/// full, which is what bounds memory.
struct ChunkWriter {
    tx: mpsc::Sender<Bytes>,
    buf: Vec<u8>,
}

impl ChunkWriter {
    fn new(tx: mpsc::Sender<Bytes>) -> Self {
        ChunkWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx.blocking_send(chunk).map_err(|_| {
            io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the Docker engine stopped reading the build context",
            )
        })
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = CHUNK - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

fn slash_path(p: &Path) -> String {
    p.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(unix)]
fn is_executable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_meta: &std::fs::Metadata) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    fn fixture() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::write(p.join("Dockerfile"), "FROM scratch\nCOPY . /\n").unwrap();
        std::fs::write(p.join("app.py"), "print('hi')\n").unwrap();
        std::fs::create_dir_all(p.join("data/raw")).unwrap();
        std::fs::write(p.join("data/raw/big.csv"), "a,b\n1,2\n").unwrap();
        std::fs::write(p.join(".dockerignore"), "data\nDockerfile\n").unwrap();
        dir
    }

    fn names(ctx: &BuildContext) -> Vec<&str> {
        ctx.entries.iter().map(|e| e.name.as_str()).collect()
    }

    #[test]
    fn ignored_paths_are_left_out_but_the_dockerfile_is_always_sent() {
        let dir = fixture();
        let ctx = BuildContext::scan(dir.path(), &dir.path().join("Dockerfile")).unwrap();
        assert_eq!(names(&ctx), [".dockerignore", "Dockerfile", "app.py"]);
        assert_eq!(ctx.dockerfile, "Dockerfile");
        assert_eq!(ctx.files, 3);
    }

    #[test]
    fn the_hash_changes_with_content_and_inputs_only() {
        let dir = fixture();
        let df = dir.path().join("Dockerfile");
        let args = BTreeMap::new();
        let inputs = BuildInputs {
            build_args: &args,
            platform: None,
            target: None,
        };
        let h1 = BuildContext::scan(dir.path(), &df)
            .unwrap()
            .content_hash(&inputs)
            .unwrap();
        let h2 = BuildContext::scan(dir.path(), &df)
            .unwrap()
            .content_hash(&inputs)
            .unwrap();
        assert_eq!(h1, h2);

        // An ignored file changing does not change the image.
        std::fs::write(dir.path().join("data/raw/big.csv"), "changed").unwrap();
        assert_eq!(
            BuildContext::scan(dir.path(), &df)
                .unwrap()
                .content_hash(&inputs)
                .unwrap(),
            h1
        );

        std::fs::write(dir.path().join("app.py"), "print('bye')\n").unwrap();
        let h3 = BuildContext::scan(dir.path(), &df)
            .unwrap()
            .content_hash(&inputs)
            .unwrap();
        assert_ne!(h3, h1);

        let args = BTreeMap::from([("PYTHON".to_string(), "3.12".to_string())]);
        let with_arg = BuildInputs {
            build_args: &args,
            platform: None,
            target: None,
        };
        assert_ne!(
            BuildContext::scan(dir.path(), &df)
                .unwrap()
                .content_hash(&with_arg)
                .unwrap(),
            h3
        );
    }

    #[test]
    fn a_dockerfile_outside_the_context_is_added_under_its_own_name() {
        let dir = fixture();
        let outside = tempfile::tempdir().unwrap();
        let df = outside.path().join("Dockerfile.prod");
        std::fs::write(&df, "FROM scratch\n").unwrap();
        let ctx = BuildContext::scan(dir.path(), &df).unwrap();
        assert_eq!(ctx.dockerfile, OUTSIDE_DOCKERFILE_NAME);
        assert!(names(&ctx).contains(&OUTSIDE_DOCKERFILE_NAME));
    }

    #[tokio::test]
    async fn the_tar_stream_holds_every_entry_with_its_content() {
        let dir = fixture();
        let ctx = BuildContext::scan(dir.path(), &dir.path().join("Dockerfile")).unwrap();
        let (stream, writer) = ctx.into_tar_stream();
        let chunks: Vec<Bytes> = stream.collect().await;
        writer.await.unwrap().unwrap();
        let data: Vec<u8> = chunks.concat();
        let mut archive = tar::Archive::new(&data[..]);
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().to_string_lossy().to_string();
            let mut body = String::new();
            entry.read_to_string(&mut body).unwrap();
            seen.push((name, body));
        }
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[2], ("app.py".to_string(), "print('hi')\n".to_string()));
    }
}
