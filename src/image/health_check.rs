//! Whether the container health check can run in an image, decided before anything is deployed.
//! ECS runs the built-in check (`CMD-SHELL`: wget, else curl, else python3, asking `ready_path`)
//! through the image's `/bin/sh`; an image without them (distroless, `FROM scratch` with a
//! static server) fails every check, and ECS stops each task until the circuit breaker gives
//! up. The image's files are read through a created, never started, container (the engine's
//! path stat, no process runs): the shell, and the tools on the PATH the container will have.
//! Then the check is the built-in one, one written for a tool the image has (exec form), the
//! user's `service.ready_check_command`, none (`service.ready_check = false`), or a refusal.

use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    ContainerArchiveInfoOptionsBuilder, CreateContainerOptions, RemoveContainerOptionsBuilder,
};

use super::build::inspect_local;
use super::engine::{engine_error, Engine};
use crate::config::ReadyCheckSetting;
use crate::exit::{self, ExitStatus};

/// The PATH a container has when its image sets none (Docker's default).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// The shell CMD-SHELL runs on Linux.
const SHELL: &str = "/bin/sh";
/// Executable bits of a file mode.
const ANY_EXECUTE: u32 = 0o111;
/// Go's os.ModeDir, as the engine reports a directory's mode.
const MODE_DIR: u32 = 1 << 31;

/// The programs of an image the health check can use: their paths in the image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tools {
    pub shell: Option<String>,
    pub wget: Option<String>,
    pub curl: Option<String>,
    pub python3: Option<String>,
    pub busybox: Option<String>,
}

/// The container health check a task gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadyCommand {
    /// The template's own check (the built-in CMD-SHELL, or what a project's template says).
    Template,
    /// An exec-form check: the program and its arguments, run without a shell.
    Exec(Vec<String>),
    /// No container health check.
    Off,
}

impl ReadyCommand {
    /// For a plan or a promoted image, where the image is not read: what the configuration says.
    pub fn from_setting(setting: &ReadyCheckSetting) -> ReadyCommand {
        match setting {
            ReadyCheckSetting::Auto => ReadyCommand::Template,
            ReadyCheckSetting::Command(c) => ReadyCommand::Exec(c.clone()),
            ReadyCheckSetting::Off => ReadyCommand::Off,
        }
    }
}

/// The check for `image` (a local reference): read from its files when the configuration leaves
/// it to mldeploy, the user's command checked to exist there. Exit 2 when no check can run in
/// the image; None when the engine does not have the image (the caller says it was not checked).
pub async fn decide_for_image(
    engine: &Engine,
    image: &str,
    setting: &ReadyCheckSetting,
    port: u16,
    ready_path: &str,
) -> anyhow::Result<Option<ReadyCommand>> {
    if *setting == ReadyCheckSetting::Off {
        return Ok(Some(ReadyCommand::Off));
    }
    let Some(inspected) = inspect_local(engine, image).await? else {
        return Ok(None);
    };
    let path = inspected
        .config
        .as_ref()
        .and_then(|c| c.env.as_ref())
        .and_then(|env| env.iter().find_map(|v| v.strip_prefix("PATH=")))
        .unwrap_or(DEFAULT_PATH)
        .to_string();
    let files = ImageFiles::open(engine, image).await?;
    let outcome = match setting {
        ReadyCheckSetting::Command(command) => files
            .resolve(&command[0], &path)
            .await
            .map(|_| ReadyCommand::Exec(command.clone()))
            .ok_or_else(|| {
                exit::error(
                    ExitStatus::Usage,
                    format!(
                        "`service.ready_check_command` runs {:?}, which {image} does not have (looked on its PATH, {path}): name a program the image has, or set service.ready_check = false",
                        command[0]
                    ),
                )
            }),
        _ => {
            let tools = files.tools(&path).await;
            decide(&tools, port, ready_path).map_err(|lacks| {
                exit::error(
                    ExitStatus::Usage,
                    format!(
                        "{image} cannot run the container health check: it has {lacks}, so ECS would stop every task with \"Task failed container health checks\". Either set service.ready_check_command to a program in the image that exits 0 when GET {ready_path} on port {port} answers (exec form, like [\"/app/healthcheck\"]), or set service.ready_check = false: the load balancer's check on service.health_check_path then judges the tasks alone, and ECS no longer replaces a task whose app hangs but keeps its port open"
                    ),
                )
            })
        }
    };
    files.close().await;
    outcome.map(Some)
}

/// The check that works with `tools`; Err says what the image lacks.
pub fn decide(tools: &Tools, port: u16, ready_path: &str) -> Result<ReadyCommand, String> {
    let url = format!("http://127.0.0.1:{port}{ready_path}");
    if tools.shell.is_some()
        && (tools.wget.is_some() || tools.curl.is_some() || tools.python3.is_some())
    {
        return Ok(ReadyCommand::Template);
    }
    let exec = |program: &String, args: &[&str]| {
        let mut command = vec![program.clone()];
        command.extend(args.iter().map(|a| a.to_string()));
        command.push(url.clone());
        ReadyCommand::Exec(command)
    };
    if let Some(wget) = &tools.wget {
        return Ok(exec(wget, &["-q", "-O", "/dev/null"]));
    }
    if let Some(curl) = &tools.curl {
        return Ok(exec(curl, &["-fs", "-o", "/dev/null"]));
    }
    if let Some(busybox) = &tools.busybox {
        return Ok(exec(busybox, &["wget", "-q", "-O", "/dev/null"]));
    }
    if let Some(python3) = &tools.python3 {
        return Ok(ReadyCommand::Exec(vec![
            python3.clone(),
            "-c".to_string(),
            format!("import urllib.request; urllib.request.urlopen('{url}')"),
        ]));
    }
    Err(format!(
        "{} and no wget, curl, python3 or busybox on its PATH",
        if tools.shell.is_some() {
            "/bin/sh"
        } else {
            "no /bin/sh"
        }
    ))
}

/// An image's files, read through a created container that never starts.
struct ImageFiles<'a> {
    engine: &'a Engine,
    id: String,
}

impl<'a> ImageFiles<'a> {
    async fn open(engine: &'a Engine, image: &str) -> anyhow::Result<ImageFiles<'a>> {
        let body = ContainerCreateBody {
            image: Some(image.to_string()),
            // Never started; an entrypoint keeps create from refusing an image with no command.
            entrypoint: Some(vec![SHELL.to_string()]),
            network_disabled: Some(true),
            labels: Some(std::collections::HashMap::from([(
                "mldeploy.probe".to_string(),
                "health-check-tools".to_string(),
            )])),
            ..Default::default()
        };
        let created = engine
            .docker
            .create_container(None::<CreateContainerOptions>, body)
            .await
            .map_err(|e| {
                engine_error(e, engine, "creating a container to read the image's files")
            })?;
        Ok(ImageFiles {
            engine,
            id: created.id,
        })
    }

    async fn close(self) {
        let remove = RemoveContainerOptionsBuilder::default().force(true).build();
        let _ = self
            .engine
            .docker
            .remove_container(&self.id, Some(remove))
            .await;
    }

    /// Whether `path` is an executable file in the image, following symbolic links (the engine
    /// resolves every element but the last, and names the last one's target).
    async fn executable(&self, path: &str) -> bool {
        let mut path = path.to_string();
        for _ in 0..8 {
            let options = ContainerArchiveInfoOptionsBuilder::default()
                .path(&path)
                .build();
            let Ok(stat) = self
                .engine
                .docker
                .get_container_archive_info(&self.id, Some(options))
                .await
            else {
                return false;
            };
            if stat.link_target.is_empty() || stat.link_target == path {
                return stat.file_mode & MODE_DIR == 0 && stat.file_mode & ANY_EXECUTE != 0;
            }
            path = if stat.link_target.starts_with('/') {
                stat.link_target
            } else {
                let dir = path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                format!("{dir}/{}", stat.link_target)
            };
        }
        false
    }

    /// Where `program` is: itself when it is a path, else the first executable on `path`.
    async fn resolve(&self, program: &str, path: &str) -> Option<String> {
        if program.contains('/') {
            return self.executable(program).await.then(|| program.to_string());
        }
        for dir in path.split(':').filter(|d| d.starts_with('/')) {
            let candidate = format!("{}/{program}", dir.trim_end_matches('/'));
            if self.executable(&candidate).await {
                return Some(candidate);
            }
        }
        None
    }

    async fn tools(&self, path: &str) -> Tools {
        Tools {
            shell: self.executable(SHELL).await.then(|| SHELL.to_string()),
            wget: self.resolve("wget", path).await,
            curl: self.resolve("curl", path).await,
            python3: self.resolve("python3", path).await,
            busybox: self.resolve("busybox", path).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tools(shell: bool, names: &[&str]) -> Tools {
        let at = |name: &str| names.contains(&name).then(|| format!("/usr/bin/{name}"));
        Tools {
            shell: shell.then(|| SHELL.to_string()),
            wget: at("wget"),
            curl: at("curl"),
            python3: at("python3"),
            busybox: at("busybox"),
        }
    }

    #[test]
    fn a_shell_with_any_of_the_tools_keeps_the_built_in_check() {
        for tool in ["wget", "curl", "python3"] {
            assert_eq!(
                decide(&tools(true, &[tool]), 8080, "/ready"),
                Ok(ReadyCommand::Template),
                "{tool}"
            );
        }
    }

    #[test]
    fn an_image_without_a_shell_gets_an_exec_check_with_what_it_has() {
        assert_eq!(
            decide(&tools(false, &["curl"]), 8080, "/ready"),
            Ok(ReadyCommand::Exec(
                [
                    "/usr/bin/curl",
                    "-fs",
                    "-o",
                    "/dev/null",
                    "http://127.0.0.1:8080/ready"
                ]
                .map(String::from)
                .to_vec()
            ))
        );
        // busybox alone (its applets are not on the PATH): its wget applet by name.
        assert_eq!(
            decide(&tools(true, &["busybox"]), 80, "/r"),
            Ok(ReadyCommand::Exec(
                [
                    "/usr/bin/busybox",
                    "wget",
                    "-q",
                    "-O",
                    "/dev/null",
                    "http://127.0.0.1:80/r"
                ]
                .map(String::from)
                .to_vec()
            ))
        );
        let Ok(ReadyCommand::Exec(python)) = decide(&tools(false, &["python3"]), 80, "/r") else {
            panic!("python3 alone makes an exec check");
        };
        assert_eq!(
            python[..2],
            ["/usr/bin/python3".to_string(), "-c".to_string()]
        );
    }

    #[test]
    fn an_image_with_nothing_to_run_the_check_says_what_it_lacks() {
        assert_eq!(
            decide(&tools(false, &[]), 80, "/r"),
            Err("no /bin/sh and no wget, curl, python3 or busybox on its PATH".to_string())
        );
        assert_eq!(
            decide(&tools(true, &[]), 80, "/r"),
            Err("/bin/sh and no wget, curl, python3 or busybox on its PATH".to_string())
        );
    }
}
