//! The gateway outside the load: the health check before it, the prefill, and the
//! analytics fetch after it.
//!
//! Requests go through goose's client (a single [`GooseUser`] built from the same
//! configuration, so `--timeout` and the like apply) but no metrics are recorded: none
//! of this traffic shows in goose's report.

use anyhow::{anyhow, Context};
use goose::config::GooseConfiguration;
use goose::goose::{get_base_url, GooseUser};

use crate::http::{send, Call, Reply};

/// A client for one gateway.
#[derive(Debug, Clone)]
pub struct Gateway {
    host: String,
    user: GooseUser,
}

impl Gateway {
    /// A client for `host` (`http://127.0.0.1:8080`), configured as goose's users are.
    pub fn new(host: &str, config: &GooseConfiguration) -> anyhow::Result<Self> {
        let url = get_base_url(Some(host.to_owned()), None, None)
            .map_err(|e| anyhow!("--host {host:?} is not a usable URL: {e}"))?;
        let user = GooseUser::single(url, config)
            .map_err(|e| anyhow!("cannot build an HTTP client: {e}"))?;
        Ok(Self {
            host: host.trim_end_matches('/').to_owned(),
            user,
        })
    }

    /// The base URL, without a trailing slash.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The client goose built, for a request outside [`Call`]: a stream read as it comes.
    pub fn user(&self) -> &GooseUser {
        &self.user
    }

    /// Makes `call`; an error when no response arrived at all.
    pub async fn call(&mut self, call: Call<'_>) -> anyhow::Result<Reply> {
        let reply = send(&mut self.user, call)
            .await
            .map_err(|e| anyhow!("{e}"))?;
        match &reply.transport_error {
            Some(error) => Err(anyhow!("{error}")),
            None => Ok(reply),
        }
    }

    /// Fails with a hint when nothing answers at `host`; warns when a primary is down.
    pub async fn check_health(&mut self) -> anyhow::Result<()> {
        let reply = self
            .call(Call::get("health", "/api/health"))
            .await
            .with_context(|| {
                format!(
                    "no gateway answers at {}: start one with `./setup.sh run` \
                     (http://127.0.0.1:8080) or point --host at yours",
                    self.host
                )
            })?;
        match reply.status {
            200 => Ok(()),
            503 => {
                eprintln!(
                    "loadtest: warning: {} reports a primary down; expect 503s. {}",
                    self.host,
                    down_servers(&reply)
                );
                Ok(())
            }
            _ => Err(anyhow!(
                "{}/api/health answered {}: is this a Shardgate gateway?",
                self.host,
                reply.detail()
            )),
        }
    }
}

/// "down: 127.0.0.1:25433 (connection refused)", from the health body, best effort.
fn down_servers(reply: &Reply) -> String {
    let Some(body) = reply.json() else {
        return String::new();
    };
    let mut down = Vec::new();
    for shard in body["shards"].as_array().into_iter().flatten() {
        let primary = std::iter::once(&shard["primary"]);
        let replicas = shard["replicas"].as_array().into_iter().flatten();
        for server in primary.chain(replicas) {
            if server["up"] == false {
                down.push(format!(
                    "{} ({})",
                    server["server"].as_str().unwrap_or("?"),
                    server["error"].as_str().unwrap_or("down")
                ));
            }
        }
    }
    if down.is_empty() {
        String::new()
    } else {
        format!("down: {}", down.join(", "))
    }
}
