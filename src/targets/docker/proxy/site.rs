//! What the proxy serves (its site: ports, HTTPS through ACME) and where it sends requests
//! (its routes), as Caddy's JSON configuration.

use serde_json::json;

use super::{ACME_ROOT_FILE, CONFIG_DIR, RELEASE_HEADER};
use crate::config::Config;

/// What the proxy serves, from the configuration: the releases' port, the host's HTTP port
/// and, with `service.domain`, HTTPS on `target.https_port` with a certificate from ACME.
/// The proxy listens in its container on the same ports as on the host, so Caddy's redirects
/// name the ports users reach.
#[derive(Debug, Clone)]
pub struct Site {
    pub service_port: u16,
    pub http_port: u16,
    pub https: Option<Https>,
}

#[derive(Debug, Clone)]
pub struct Https {
    pub domain: String,
    pub port: u16,
    pub acme: crate::config::Acme,
}

impl Site {
    pub fn of(config: &Config) -> Site {
        Site {
            service_port: config.service.port,
            http_port: config.target.host_port,
            https: config.service.domain.as_ref().map(|domain| Https {
                domain: domain.clone(),
                port: config.target.https_port,
                acme: config.target.acme.clone(),
            }),
        }
    }

    /// The address users reach the service at.
    pub fn url(&self, published_host: &str) -> String {
        match &self.https {
            Some(h) if h.port == 443 => format!("https://{}", h.domain),
            Some(h) => format!("https://{}:{}", h.domain, h.port),
            None => format!("http://{published_host}:{}", self.http_port),
        }
    }
}

/// Where the proxy sends requests: the serving release, and the one under test with the header
/// value that reaches it.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    pub serving: Option<String>,
    pub candidate: Option<(String, String)>,
}

impl Routes {
    /// Caddy's JSON configuration for these routes on `site`.
    pub fn caddy_config(&self, site: &Site) -> serde_json::Value {
        let port = site.service_port;
        let upstream = |name: &str| json!([{ "handler": "reverse_proxy", "upstreams": [{ "dial": format!("{name}:{port}") }] }]);
        let mut routes = Vec::new();
        if let Some((token, name)) = &self.candidate {
            routes.push(json!({
                "match": [{ "header": { RELEASE_HEADER: [token] } }],
                "handle": upstream(name),
            }));
        }
        routes.push(match &self.serving {
            Some(name) => json!({ "handle": upstream(name) }),
            None => json!({ "handle": [{
                "handler": "static_response",
                "status_code": 503,
                "body": "no release serves yet\n",
            }] }),
        });
        let Some(https) = &site.https else {
            return json!({
                "admin": { "listen": "localhost:2019" },
                "apps": { "http": { "servers": { "mldeploy": {
                    "listen": [format!(":{}", site.http_port)],
                    "routes": routes,
                    "automatic_https": { "disable": true },
                } } } },
            });
        };
        // Caddy's automatic HTTPS: a certificate for the host the route matches, from the ACME
        // directory, and a server on the HTTP port that redirects there and answers the CA's
        // HTTP-01 challenges.
        let mut issuer = json!({ "module": "acme", "ca": https.acme.directory });
        if let Some(email) = &https.acme.email {
            issuer["email"] = json!(email);
        }
        if https.acme.ca_root.is_some() {
            issuer["trusted_roots_pem_files"] = json!([format!("{CONFIG_DIR}/{ACME_ROOT_FILE}")]);
        }
        json!({
            "admin": { "listen": "localhost:2019" },
            "apps": {
                // https_port stays Caddy's 443: Caddy takes it for the port users reach
                // (behind a port mapping), and a redirect names the listener's port when it is
                // another.
                "http": {
                    "http_port": site.http_port,
                    "servers": { "mldeploy": {
                        "listen": [format!(":{}", https.port)],
                        "routes": [{
                            "match": [{ "host": [https.domain] }],
                            "handle": [{ "handler": "subroute", "routes": routes }],
                            "terminal": true,
                        }],
                    } },
                },
                "tls": { "automation": { "policies": [{
                    "subjects": [https.domain],
                    "issuers": [issuer],
                }] } },
            },
        })
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn the_candidate_route_comes_first_and_only_takes_its_header() {
        let routes = Routes {
            serving: Some("app-4".into()),
            candidate: Some(("secret".into(), "app-5".into())),
        };
        let site = Site {
            service_port: 8080,
            http_port: 80,
            https: None,
        };
        let config = routes.caddy_config(&site);
        let list = &config["apps"]["http"]["servers"]["mldeploy"]["routes"];
        assert_eq!(list[0]["match"][0]["header"][RELEASE_HEADER][0], "secret");
        assert_eq!(list[0]["handle"][0]["upstreams"][0]["dial"], "app-5:8080");
        assert_eq!(list[1]["handle"][0]["upstreams"][0]["dial"], "app-4:8080");
        assert!(list[1].get("match").is_none());
        let empty = Routes::default().caddy_config(&site);
        let only = &empty["apps"]["http"]["servers"]["mldeploy"]["routes"];
        assert_eq!(only[0]["handle"][0]["status_code"], 503);
    }
}
