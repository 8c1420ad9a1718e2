//! What the serving container uses and what the host has left, for `status`: CPU and memory as
//! `docker stats` computes them from the engine's stats endpoint, and the free disk where the
//! engine keeps images and containers (read on this machine for a local engine, with `df` over
//! the same ssh login for an ssh one; the engine's API does not report it, so a TCP engine's is
//! unknown).

use bollard::models::ContainerStatsResponse;
use bollard::query_parameters::StatsOptionsBuilder;
use futures_util::StreamExt;

use crate::image::endpoint::Transport;
use crate::image::engine::Engine;

pub use crate::reports::status::Usage;

/// The container's use and the host's free disk; anything the engine cannot tell is None.
pub async fn of(engine: &Engine, container: &str) -> Usage {
    let mut usage = Usage::default();
    // One sample with the one before it (stream=false, one_shot=false): the CPU's share needs two.
    let options = StatsOptionsBuilder::default()
        .stream(false)
        .one_shot(false)
        .build();
    if let Some(Ok(stats)) = engine.docker.stats(container, Some(options)).next().await {
        usage.cpu_percent = cpu_percent(&stats);
        (usage.memory_bytes, usage.memory_limit_bytes) = memory(&stats);
    }
    if let Ok(info) = engine.docker.info().await {
        if let Some(root) = info.docker_root_dir {
            usage.disk_free_bytes = free_disk(engine, &root).await;
            usage.docker_root = Some(root);
        }
    }
    usage
}

/// `docker stats`' CPU %: the container's share of the host's CPU time between the two samples,
/// times the CPUs online.
fn cpu_percent(stats: &ContainerStatsResponse) -> Option<f64> {
    let now = stats.cpu_stats.as_ref()?;
    let before = stats.precpu_stats.as_ref()?;
    let used = now.cpu_usage.as_ref()?.total_usage? as f64
        - before.cpu_usage.as_ref()?.total_usage.unwrap_or(0) as f64;
    let system = now.system_cpu_usage? as f64 - before.system_cpu_usage.unwrap_or(0) as f64;
    if system <= 0.0 || used < 0.0 {
        return Some(0.0);
    }
    Some(used / system * f64::from(now.online_cpus.unwrap_or(1)) * 100.0)
}

/// `docker stats`' memory: usage without the inactive page cache (cgroup v2's `inactive_file`,
/// v1's `total_inactive_file`), and the limit.
fn memory(stats: &ContainerStatsResponse) -> (Option<u64>, Option<u64>) {
    let Some(m) = stats.memory_stats.as_ref() else {
        return (None, None);
    };
    let cache = m.stats.as_ref().and_then(|s| {
        s.get("inactive_file")
            .or_else(|| s.get("total_inactive_file"))
            .copied()
    });
    let used = m.usage.map(|u| u.saturating_sub(cache.unwrap_or(0)));
    (used, m.limit)
}

async fn free_disk(engine: &Engine, root: &str) -> Option<u64> {
    match &engine.endpoint.transport {
        Transport::Unix(_) => rustix::fs::statvfs(root)
            .ok()
            .map(|s| s.f_bavail.saturating_mul(s.f_frsize)),
        Transport::Ssh(destination) => {
            let output = tokio::process::Command::new("ssh")
                .args(destination.ssh_args())
                .args(["df", "-Pk", root])
                .stdin(std::process::Stdio::null())
                .output()
                .await
                .ok()
                .filter(|o| o.status.success())?;
            df_available(&String::from_utf8_lossy(&output.stdout))
        }
        Transport::Tcp | Transport::Tls(_) => None,
    }
}

/// The available bytes in `df -Pk`'s one line of figures.
fn df_available(text: &str) -> Option<u64> {
    let fields: Vec<&str> = text.lines().nth(1)?.split_whitespace().collect();
    fields.get(3)?.parse::<u64>().ok().map(|kb| kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{ContainerCpuStats, ContainerCpuUsage, ContainerMemoryStats};

    #[test]
    fn cpu_and_memory_as_docker_stats_computes_them() {
        let cpu = |total, system| ContainerCpuStats {
            cpu_usage: Some(ContainerCpuUsage {
                total_usage: Some(total),
                ..Default::default()
            }),
            system_cpu_usage: Some(system),
            online_cpus: Some(2),
            ..Default::default()
        };
        let stats = ContainerStatsResponse {
            cpu_stats: Some(cpu(1_500, 20_000)),
            precpu_stats: Some(cpu(1_000, 10_000)),
            memory_stats: Some(ContainerMemoryStats {
                usage: Some(300 << 20),
                limit: Some(1 << 30),
                stats: Some([("inactive_file".to_string(), 100 << 20)].into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        // 500 of 10 000 ns of host time on 2 CPUs: 10 % of one CPU.
        assert_eq!(cpu_percent(&stats), Some(10.0));
        assert_eq!(memory(&stats), (Some(200 << 20), Some(1 << 30)));
    }

    #[test]
    fn df_reads_as_people_read_it() {
        let df = "Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/sda1 1000 400 600 40% /\n";
        assert_eq!(df_available(df), Some(600 * 1024));
    }
}
