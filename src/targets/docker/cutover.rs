//! The zero-downtime cut-over behind the proxy: the new release starts on the project's network,
//! is checked through the proxy's header route (`ready_path`, then the smoke test) while users'
//! requests still reach the serving release, and only then does the proxy send everything to
//! it; the replaced release drains for `target.drain` and stops, kept for rollback. With
//! `[gate]`, the model gate's sample requests go to both releases (the serving one as users
//! reach it, the new one through the header route) and are judged before the switch. A release
//! that fails its checks never receives a user's request and is removed.

use super::containers::{self, ProjectContainer, Spec};
use super::proxy::{self, Routes, RELEASE_HEADER};
use crate::config::Config;
use crate::exit::{self, ExitStatus};
use crate::gate::{self, GateReport};
use crate::image::engine::Engine;
use crate::output::Printer;
use crate::smoke::{self, Prober};
use crate::undo::Undo;

pub(crate) async fn replace(
    engine: &Engine,
    config: &Config,
    proxy_image: &str,
    spec: Spec,
    existing: &[ProjectContainer],
    timeout: std::time::Duration,
    printer: &Printer,
) -> anyhow::Result<Option<GateReport>> {
    let project = config.project.name.as_str();
    let host_port = config.target.host_port;
    let network = proxy::ensure_network(engine, project).await?;
    let serving: Vec<&ProjectContainer> = existing.iter().filter(|c| c.running).collect();
    // A release that publishes the host port itself ran before the proxy did: it gives the port
    // up to the proxy, once, and serves again if the new release fails.
    let unproxied: Vec<&ProjectContainer> = serving
        .iter()
        .copied()
        .filter(|c| c.host_port.is_some())
        .collect();
    let behind = serving.iter().find(|c| c.host_port.is_none());
    let serving_name = behind.map(|c| c.name.clone());

    // A running proxy that publishes other ports than the configuration asks for (HTTPS added,
    // a port changed) is started anew by `proxy::start`, which says so.
    let wanted_ports = proxy::ports_label(&proxy::Site::of(config));
    let running_proxy = proxy::find(engine, project)
        .await?
        .filter(|p| p.running && p.ports == wanted_ports);
    // Each change below records how to take it back if the command is interrupted.
    let undo = Undo::begin();
    if running_proxy.is_none() {
        for c in &unproxied {
            printer.warn(format!(
                "{} publishes port {host_port} itself, from before the proxy: it stops so the proxy can take the port, and requests fail until the new release is ready (this once)",
                c.name
            ));
            // Recorded first: an interrupt while it stops still starts it again.
            let (e, id) = (engine.clone(), c.id.clone());
            undo.push(format!("started {} again", c.name), move || async move {
                containers::start_again(&e, &id).await
            });
            containers::stop(engine, &c.id).await?;
        }
    }
    let serving_routes = Routes {
        serving: serving_name.clone(),
        candidate: None,
    };
    let proxy = match running_proxy {
        Some(p) => p,
        None => {
            match proxy::start(
                engine,
                config,
                proxy_image,
                &network,
                &serving_routes,
                printer,
            )
            .await
            {
                Ok(p) => {
                    if !unproxied.is_empty() {
                        let (e, id) = (engine.clone(), p.id.clone());
                        undo.push("removed the new proxy", move || async move {
                            containers::remove(&e, &id).await
                        });
                    }
                    p
                }
                Err(e) => {
                    undo.finish();
                    restart(engine, &unproxied).await?;
                    return Err(e);
                }
            }
        }
    };

    let spec = Spec {
        name: spec.name.trim_end_matches("-candidate").to_string(),
        network: Some(network),
        restart: true,
        host_port: None,
        ..spec
    };
    printer.info(format!("Starting {} from {}", spec.name, spec.image));
    {
        // By name, recorded before the start: an interrupt during it leaves no container behind.
        let (e, name) = (engine.clone(), spec.name.clone());
        undo.push(format!("removed {}", spec.name), move || async move {
            containers::remove_if_there(&e, &name).await
        });
    }
    let (id, _) = containers::start(engine, &spec).await?;
    {
        // Sends users back to the serving release: pushed before the candidate's route is
        // loaded, so that a route half-loaded by Caddy is taken back too.
        let (e, proxy_id, routes, site) = (
            engine.clone(),
            proxy.id.clone(),
            serving_routes.clone(),
            proxy::Site::of(config),
        );
        let back = match &serving_name {
            Some(name) => format!("the proxy sends every request to {name} again"),
            None => "the proxy routes no release".to_string(),
        };
        undo.push(back, move || async move {
            proxy::route_site(&e, &proxy_id, &routes, &site).await
        });
    }
    let token = smoke::route_token();
    let under_test = Routes {
        serving: serving_name.clone(),
        candidate: Some((token.clone(), spec.name.clone())),
    };
    let url = proxy::Site::of(config).url(&engine.published_host);
    let checked = async {
        proxy::route(engine, &proxy, &under_test, config).await?;
        let prober = Prober::with_header(None, RELEASE_HEADER, &token)?;
        containers::wait_ready_through(
            &prober,
            engine,
            &id,
            &url,
            &config.service.ready_path,
            config.service.port,
            timeout,
        )
        .await?;
        printer.info(format!("{} is ready behind the proxy", spec.name));
        smoke::run_through(
            &prober,
            &url,
            &config.service.ready_path,
            config.smoke.as_ref(),
            timeout,
            printer,
        )
        .await?;
        let Some(config_gate) = &config.gate else {
            return Ok(None);
        };
        let users = Prober::new(None)?;
        let routes = gate::Routes {
            base_url: &url,
            serving: behind.map(|_| &users),
            new: &prober,
        };
        let samples = gate::sample(config_gate, &routes).await;
        let new_model = spec.labels.get(containers::MODEL_PATH_LABEL);
        let model_changed = behind.is_some_and(|c| c.model_path.as_ref() != new_model);
        let report = gate::judge(config_gate, &samples, model_changed);
        printer.info(format!(
            "Model gate: {} sample request(s), {} against {}",
            samples.len(),
            spec.name,
            serving_name.as_deref().unwrap_or("nothing serving")
        ));
        for line in report.lines() {
            printer.info(line);
        }
        if report.passed() {
            Ok(Some(report))
        } else {
            Err(anyhow::anyhow!(
                "the model gate failed: {}\n{}",
                report.failures.join("; "),
                report.lines().join("\n")
            ))
        }
    }
    .await;
    let gate_report = match checked {
        Ok(report) => report,
        Err(e) => {
            undo.finish();
            let lines = containers::last_lines(engine, &id).await;
            proxy::route(engine, &proxy, &serving_routes, config).await?;
            containers::remove(engine, &id).await?;
            let keeps = match (serving_name.as_deref(), unproxied.first()) {
                (Some(name), _) => {
                    format!("{name} keeps serving; it alone received users' requests")
                }
                (None, Some(old)) => {
                    containers::remove(engine, &proxy.id).await?;
                    restart(engine, &unproxied).await?;
                    format!("{} serves again on port {host_port}", old.name)
                }
                (None, None) => "nothing served before".to_string(),
            };
            return Err(e.context(exit::Classified {
                status: ExitStatus::Failed,
                message: format!(
                    "the new release failed its checks and was removed; {keeps}. Its last lines:\n{lines}"
                ),
            }));
        }
    };

    // The switch: Caddy loads the new routes while requests in flight finish where they began.
    let switched = Routes {
        serving: Some(spec.name.clone()),
        candidate: None,
    };
    proxy::route(engine, &proxy, &switched, config).await?;
    printer.info(format!("The proxy sends every request to {}", spec.name));
    let replaced: Vec<&&ProjectContainer> =
        serving.iter().filter(|c| c.host_port.is_none()).collect();
    if !replaced.is_empty() && !config.target.drain.is_zero() {
        printer.info(format!(
            "Draining {} for {}",
            replaced
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            humantime::format_duration(config.target.drain)
        ));
        tokio::time::sleep(config.target.drain).await;
    }
    // Past this point the new release serves and the old ones stop: an interrupt leaves it so.
    undo.finish();
    for c in replaced {
        containers::stop(engine, &c.id).await?;
    }
    containers::keep_newest(engine, existing, config.target.keep_releases).await?;
    Ok(gate_report)
}

/// With no release to replace: the proxy as the configuration now asks for it (its image,
/// ports, HTTPS), sending users to `serving`. A release from before the proxy keeps its port
/// until the next new release moves it.
pub(crate) async fn converge_proxy(
    engine: &Engine,
    config: &Config,
    proxy_image: &str,
    serving: &ProjectContainer,
    printer: &Printer,
) -> anyhow::Result<()> {
    if serving.host_port.is_some() {
        return Ok(());
    }
    let network = proxy::ensure_network(engine, &config.project.name).await?;
    let routes = Routes {
        serving: Some(serving.name.clone()),
        candidate: None,
    };
    proxy::start(engine, config, proxy_image, &network, &routes, printer).await?;
    Ok(())
}

/// Starts again the releases that gave their port up to a proxy that then could not serve.
async fn restart(engine: &Engine, releases: &[&ProjectContainer]) -> anyhow::Result<()> {
    for c in releases {
        containers::start_again(engine, &c.id).await?;
    }
    Ok(())
}
