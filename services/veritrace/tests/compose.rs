//! `compose.yaml` (the one-host distributed deployment), checked against the binary's own
//! parsers, since no Docker engine runs here:
//!
//! - every service has an image, every `depends_on` names a service (with a healthcheck where
//!   it waits for health), every bind-mounted file exists;
//! - every veritrace `command` parses with `veritrace::cli::Cli`;
//! - every `serve` service's `environment` loads through `Config::load` in an environment that
//!   holds nothing else (as in its container), passes `serve::check`, binds all interfaces on
//!   the port it publishes, and connects as its own role with the password init.sql gives it;
//! - `chain-init`'s arguments run through `network::init`; the node files it writes match the
//!   validators' `--config` paths, published ports and service names (peers dial them by name),
//!   and the anchor's `chain.nodes` are the validators' advertised APIs;
//! - `deploy/postgres/init.sql` creates each service's schema, and, against the test
//!   PostgreSQL, lets each role run its service's real migrations and API-key checks;
//! - `docker compose config -q` accepts the file where the compose plugin is installed.
//!
//! `checker_catches_mistakes` shows that each check fails on a broken copy.

// figment's Jail fixes its closures' (large) error type.
#![allow(clippy::result_large_err)]

use clap::Parser;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use veritrace::cli::{ChainCommand, Cli, Command as Cmd};
use veritrace::network::InitOptions;
use veritrace::serve::Service;
use veritrace_kernel::config::{Config, DatabaseConfig, NodeConfig};
use yaml_rust2::{Yaml, YamlLoader};

// ---------------------------------------------------------------------------------------------
// The file, as a small model of the Compose Specification parts the deployment uses.

#[derive(Clone, Debug, Default)]
struct Compose {
    services: BTreeMap<String, ServiceDef>,
    /// Top-level named volumes.
    volumes: BTreeSet<String>,
}

#[derive(Clone, Debug, Default)]
struct ServiceDef {
    image: Option<String>,
    command: Option<Vec<String>>,
    environment: BTreeMap<String, String>,
    /// (host port, container port)
    ports: Vec<(u16, u16)>,
    volumes: Vec<Mount>,
    /// target service → condition
    depends_on: BTreeMap<String, String>,
    healthcheck: bool,
    /// The healthcheck's `test`, when it is a list.
    healthcheck_test: Option<Vec<String>>,
    restart: Option<String>,
}

#[derive(Clone, Debug)]
struct Mount {
    source: String,
    target: String,
    read_only: bool,
}

/// The image our services run, as the file names it without a `.env`.
const OUR_IMAGE: &str = "veritrace:dev";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// Compose's variable interpolation (`$$`, `$VAR`, `${VAR}`, `${VAR:-default}`,
/// `${VAR-default}`, `${VAR:?message}`), with `vars` as the environment. The checks run with
/// none set, so the defaults in the file are what is checked; a variable without one is an
/// error (the file must work without a .env).
fn interpolate(s: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(r) = rest.strip_prefix('{') {
            let end = r
                .find('}')
                .ok_or_else(|| format!("unclosed ${{ in {s:?}"))?;
            let expr = &r[..end];
            rest = &r[end + 1..];
            let name_end = expr
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(expr.len());
            let (name, op) = expr.split_at(name_end);
            let value = vars.get(name).cloned();
            let empty_is_unset = |v: &Option<String>| v.as_deref().is_none_or(str::is_empty);
            out.push_str(&if let Some(d) = op.strip_prefix(":-") {
                if empty_is_unset(&value) {
                    d.to_string()
                } else {
                    value.unwrap_or_default()
                }
            } else if let Some(d) = op.strip_prefix('-') {
                value.unwrap_or_else(|| d.to_string())
            } else if let Some(m) = op.strip_prefix(":?") {
                match value {
                    Some(v) if !v.is_empty() => v,
                    _ => return Err(format!("${{{name}}} is required: {m}")),
                }
            } else if op.is_empty() {
                value.ok_or_else(|| format!("${{{name}}} is not set and has no default"))?
            } else {
                return Err(format!("unsupported interpolation ${{{expr}}}"));
            });
        } else {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let name = &rest[..end];
            rest = &rest[end..];
            out.push_str(
                &vars
                    .get(name)
                    .cloned()
                    .ok_or_else(|| format!("${name} is not set and has no default"))?,
            );
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn scalar(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Parses compose.yaml into the model; the forms the deployment promises (services as a map,
/// `command` as a list, `environment` as a map) are errors otherwise.
fn parse(text: &str) -> Result<Compose, Vec<String>> {
    let vars = BTreeMap::new();
    let docs = YamlLoader::load_from_str(text).map_err(|e| vec![format!("YAML: {e}")])?;
    let [doc] = docs.as_slice() else {
        return Err(vec![format!("{} YAML documents, expected 1", docs.len())]);
    };
    let mut errors = Vec::new();
    let mut compose = Compose::default();
    let Some(services) = doc["services"].as_hash() else {
        return Err(vec!["`services` is not a map".into()]);
    };
    let text_of = |y: &Yaml, what: &str, errors: &mut Vec<String>| -> Option<String> {
        let Some(s) = scalar(y) else {
            errors.push(format!("{what} is not a scalar"));
            return None;
        };
        interpolate(&s, &vars)
            .map_err(|e| errors.push(format!("{what}: {e}")))
            .ok()
    };
    for (name, def) in services {
        let Some(name) = name.as_str() else {
            errors.push(format!("service name {name:?} is not a string"));
            continue;
        };
        let at = |what: &str| format!("{name}: {what}");
        let mut s = ServiceDef::default();
        if !def["image"].is_badvalue() {
            s.image = text_of(&def["image"], &at("image"), &mut errors);
        }
        match &def["command"] {
            Yaml::BadValue => {}
            Yaml::Array(items) => {
                s.command = items
                    .iter()
                    .map(|i| text_of(i, &at("command item"), &mut errors))
                    .collect();
            }
            _ => errors.push(at("`command` must be a list (exec form)")),
        }
        match &def["environment"] {
            Yaml::BadValue => {}
            Yaml::Hash(h) => {
                for (k, v) in h {
                    let (Some(k), Some(v)) = (
                        scalar(k),
                        text_of(v, &at(&format!("environment {k:?}")), &mut errors),
                    ) else {
                        continue;
                    };
                    s.environment.insert(k, v);
                }
            }
            _ => errors.push(at("`environment` must be a map")),
        }
        for p in def["ports"].as_vec().into_iter().flatten() {
            let Some(p) = text_of(p, &at("port"), &mut errors) else {
                continue;
            };
            // [ip:]host:container[/protocol]
            let p = p.split('/').next().unwrap_or_default();
            let parts: Vec<&str> = p.rsplitn(3, ':').collect();
            match (
                parts.first().map(|c| c.parse()),
                parts.get(1).map(|h| h.parse()),
            ) {
                (Some(Ok(container)), Some(Ok(host))) => s.ports.push((host, container)),
                _ => errors.push(at(&format!("port {p:?} is not host:container"))),
            }
        }
        for v in def["volumes"].as_vec().into_iter().flatten() {
            let Some(v) = text_of(v, &at("volume"), &mut errors) else {
                continue;
            };
            let parts: Vec<&str> = v.split(':').collect();
            match parts.as_slice() {
                [source, target] | [source, target, _] => s.volumes.push(Mount {
                    source: source.to_string(),
                    target: target.to_string(),
                    read_only: parts
                        .get(2)
                        .is_some_and(|m| m.split(',').any(|o| o == "ro")),
                }),
                _ => errors.push(at(&format!("volume {v:?} is not source:target[:mode]"))),
            }
        }
        match &def["depends_on"] {
            Yaml::BadValue => {}
            Yaml::Array(names) => {
                for n in names.iter().filter_map(scalar) {
                    s.depends_on.insert(n, "service_started".into());
                }
            }
            Yaml::Hash(h) => {
                for (k, v) in h {
                    let condition = scalar(&v["condition"]).unwrap_or("service_started".into());
                    s.depends_on
                        .insert(scalar(k).unwrap_or_default(), condition);
                }
            }
            _ => errors.push(at("`depends_on` is neither a list nor a map")),
        }
        s.healthcheck = !def["healthcheck"]["test"].is_badvalue();
        if let Yaml::Array(items) = &def["healthcheck"]["test"] {
            s.healthcheck_test = items
                .iter()
                .map(|i| text_of(i, &at("healthcheck item"), &mut errors))
                .collect();
        }
        if !def["restart"].is_badvalue() {
            s.restart = text_of(&def["restart"], &at("restart"), &mut errors);
        }
        compose.services.insert(name.to_string(), s);
    }
    if let Some(volumes) = doc["volumes"].as_hash() {
        compose.volumes = volumes.keys().filter_map(scalar).collect();
    }
    if errors.is_empty() {
        Ok(compose)
    } else {
        Err(errors)
    }
}

fn load_compose() -> Compose {
    parse(&read("compose.yaml")).unwrap_or_else(|e| panic!("compose.yaml: {}", e.join("\n")))
}

// ---------------------------------------------------------------------------------------------
// What init.sql declares.

#[derive(Debug, Default)]
struct InitSql {
    database: Option<String>,
    /// role → the environment variable its password comes from
    roles: BTreeMap<String, String>,
    /// schema → owner
    schemas: BTreeMap<String, String>,
}

fn words(line: &str) -> Vec<&str> {
    line.split(|c: char| c.is_whitespace() || c == ';')
        .filter(|w| !w.is_empty())
        .collect()
}

fn parse_init_sql(sql: &str) -> InitSql {
    let mut init = InitSql::default();
    let mut getenv = BTreeMap::new();
    for line in sql.lines().map(str::trim) {
        match words(line).as_slice() {
            ["\\getenv", var, env] => {
                getenv.insert(var.to_string(), env.to_string());
            }
            ["CREATE", "ROLE", role, "LOGIN", "PASSWORD", var, ..] => {
                let var = var.trim_start_matches(":'").trim_end_matches('\'');
                init.roles.insert(
                    role.to_string(),
                    getenv.get(var).cloned().unwrap_or_default(),
                );
            }
            ["CREATE", "DATABASE", db, ..] => init.database = Some(db.to_string()),
            ["CREATE", "SCHEMA", schema, "AUTHORIZATION", owner] => {
                init.schemas.insert(schema.to_string(), owner.to_string());
            }
            _ => {}
        }
    }
    init
}

// ---------------------------------------------------------------------------------------------
// Environment isolation.

/// Runs `f` holding figment's Jail lock. Config checks clear the whole environment inside a
/// Jail (a container sees only its own variables), so reading the environment or spawning a
/// process (which looks up PATH) must not overlap them. Not reentrant.
fn locked<T>(f: impl FnOnce() -> T) -> T {
    let mut out = None;
    figment::Jail::expect_with(|_| {
        out = Some(f());
        Ok(())
    });
    out.expect("the jailed closure ran")
}

/// `load` run in a process environment that holds exactly `env`, as a container's does.
fn in_env<T>(
    env: &BTreeMap<String, String>,
    load: impl FnOnce() -> Result<T, String>,
) -> Result<T, String> {
    let mut loaded = None;
    figment::Jail::try_with(|jail| {
        jail.clear_env();
        for (k, v) in env {
            jail.set_env(k, v);
        }
        loaded = Some(load());
        Ok(())
    })
    .map_err(|e| e.to_string())?;
    loaded.unwrap_or_else(|| Err("not loaded".into()))
}

/// `Config::load(None)` as `veritrace serve` runs it in a container whose environment is `env`.
fn load_config(env: &BTreeMap<String, String>) -> Result<Config, String> {
    in_env(env, || Config::load(None).map_err(|e| e.to_string()))
}

/// A node file as `veritrace node` reads it (its `VERITRACE_NODE__*` variables apply).
fn load_node(path: &Path, env: &BTreeMap<String, String>) -> Result<NodeConfig, String> {
    in_env(env, || NodeConfig::load(path).map_err(|e| e.to_string()))
}

// ---------------------------------------------------------------------------------------------
// The checker.

/// `scheme://user:password@host:port/path?query`, split without decoding.
#[derive(Debug, PartialEq)]
struct Url {
    user: String,
    password: String,
    host: String,
    port: Option<u16>,
    path: String,
}

fn parse_url(url: &str) -> Option<Url> {
    let (_, rest) = url.split_once("://")?;
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let (userinfo, hostport) = authority.rsplit_once('@').unwrap_or(("", authority));
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h, Some(p.parse().ok()?)),
        None => (hostport, None),
    };
    let path = path.split('?').next().unwrap_or_default();
    Some(Url {
        user: user.into(),
        password: password.into(),
        host: host.into(),
        port,
        path: path.trim_start_matches('/').into(),
    })
}

struct Checker<'a> {
    compose: &'a Compose,
    init_sql: InitSql,
    problems: Vec<String>,
    /// Named volumes as directories: where `chain init` writes, and where the services'
    /// container paths lead.
    volumes: tempfile::TempDir,
}

impl<'a> Checker<'a> {
    fn problem(&mut self, service: &str, what: impl std::fmt::Display) {
        self.problems.push(format!("{service}: {what}"));
    }

    /// The file behind `container_path` in `service` (inside one of its named volumes), and
    /// whether that mount is read-only.
    fn in_volume(&self, service: &str, container_path: &Path) -> Option<(PathBuf, bool)> {
        let s = self.compose.services.get(service)?;
        s.volumes
            .iter()
            .filter(|m| self.compose.volumes.contains(&m.source))
            .find_map(|m| {
                let rel = container_path.strip_prefix(&m.target).ok()?;
                Some((self.volumes.path().join(&m.source).join(rel), m.read_only))
            })
    }

    fn check_structure(&mut self) {
        let compose: &'a Compose = self.compose;
        for (name, s) in &compose.services {
            if s.image.as_deref().is_none_or(str::is_empty) {
                self.problems.push(format!("{name}: no image"));
            }
            for (target, condition) in &s.depends_on {
                let Some(t) = compose.services.get(target) else {
                    self.problems.push(format!(
                        "{name}: depends on {target:?}, which is not a service"
                    ));
                    continue;
                };
                match condition.as_str() {
                    "service_started" => {}
                    "service_healthy" if !t.healthcheck => self.problems.push(format!(
                        "{name}: waits for {target} to be healthy, but it has no healthcheck"
                    )),
                    "service_healthy" => {}
                    "service_completed_successfully"
                        if matches!(t.restart.as_deref(), Some("always" | "unless-stopped")) =>
                    {
                        self.problems.push(format!(
                            "{name}: waits for {target} to complete, but it is restarted forever"
                        ))
                    }
                    "service_completed_successfully" => {}
                    other => self
                        .problems
                        .push(format!("{name}: unknown depends_on condition {other:?}")),
                }
            }
            for m in &s.volumes {
                if let Some(rel) = m.source.strip_prefix("./") {
                    if !root().join(rel).exists() {
                        self.problems
                            .push(format!("{name}: mounts {}, which does not exist", m.source));
                    }
                } else if !m.source.starts_with('/') && !compose.volumes.contains(&m.source) {
                    self.problems.push(format!(
                        "{name}: mounts volume {:?}, which is not declared",
                        m.source
                    ));
                }
            }
        }
    }

    /// Every veritrace command line, parsed as the binary parses it.
    fn parse_commands(&mut self) -> Vec<(String, Cli)> {
        let compose: &'a Compose = self.compose;
        let mut parsed = Vec::new();
        for (name, s) in &compose.services {
            if s.image.as_deref() != Some(OUR_IMAGE) {
                continue;
            }
            let Some(command) = &s.command else {
                self.problems.push(format!("{name}: no command"));
                continue;
            };
            match Cli::try_parse_from(
                std::iter::once("veritrace").chain(command.iter().map(String::as_str)),
            ) {
                Ok(cli) => parsed.push((name.clone(), cli)),
                Err(e) => self.problems.push(format!(
                    "{name}: `veritrace {}` does not parse: {}",
                    command.join(" "),
                    e.to_string().lines().next().unwrap_or_default()
                )),
            }
        }
        parsed
    }

    fn check_serve(
        &mut self,
        name: &str,
        service: Service,
        config_file: Option<&Path>,
        bind: Option<&str>,
    ) -> Option<Config> {
        let compose: &'a Compose = self.compose;
        let s = &compose.services[name];
        if let Some(f) = config_file {
            self.problem(
                name,
                format!(
                    "--config {} is not part of the deployment; configure it through `environment`",
                    f.display()
                ),
            );
            return None;
        }
        let mut config = match load_config(&s.environment) {
            Ok(c) => c,
            Err(e) => {
                self.problem(name, format!("environment does not load: {e}"));
                return None;
            }
        };
        if let Some(b) = bind {
            config.http.bind = b.to_string();
        }
        if let Err(e) = veritrace::serve::check(service, &config) {
            self.problem(name, e);
        }
        match config.http.bind.parse::<SocketAddr>() {
            Ok(addr) if !addr.ip().is_unspecified() => self.problem(
                name,
                format!("listens on {addr}: unreachable from outside its container"),
            ),
            Ok(addr) if !s.ports.iter().any(|(_, c)| *c == addr.port()) => self.problem(
                name,
                format!(
                    "listens on port {} but publishes container ports {:?}",
                    addr.port(),
                    s.ports.iter().map(|p| p.1).collect::<Vec<_>>()
                ),
            ),
            Ok(_) => {}
            Err(e) => self.problem(name, format!("http.bind {:?}: {e}", config.http.bind)),
        }
        self.check_probe(name, &config);
        self.check_database(name, service, &config.database);
        if let Some(url) = config.amqp.url.clone() {
            self.check_amqp(name, &config, &url);
        }
        let role = format!("veritrace_{}", service.name());
        let schema_owner = self.init_sql.schemas.get(service.name()).cloned();
        if schema_owner.as_deref() != Some(role.as_str()) {
            self.problem(
                name,
                format!(
                    "init.sql creates no schema {} owned by {role} (found owner {schema_owner:?})",
                    service.name()
                ),
            );
        }
        Some(config)
    }

    /// A served service's healthcheck runs `veritrace probe` (the image has no curl) on its own
    /// `/readyz`, on the port it listens on inside its container.
    fn check_probe(&mut self, name: &str, config: &Config) {
        let compose: &'a Compose = self.compose;
        let test: Vec<&str> = compose.services[name]
            .healthcheck_test
            .iter()
            .flatten()
            .map(String::as_str)
            .collect();
        let ["CMD", "veritrace", args @ ..] = test.as_slice() else {
            self.problem(
                name,
                "has no healthcheck running `veritrace probe` on its /readyz",
            );
            return;
        };
        let url = match Cli::try_parse_from(std::iter::once(&"veritrace").chain(args)) {
            Ok(Cli {
                command: Cmd::Probe { url, .. },
            }) => url,
            Ok(_) => return self.problem(name, "its healthcheck is not `veritrace probe`"),
            Err(e) => {
                return self.problem(
                    name,
                    format!(
                        "its healthcheck does not parse: {}",
                        e.to_string().lines().next().unwrap_or_default()
                    ),
                );
            }
        };
        let listening = config
            .http
            .bind
            .parse::<SocketAddr>()
            .map(|a| a.port())
            .ok();
        match parse_url(&url) {
            Some(u) if u.port == listening && u.path == "readyz" => {}
            _ => self.problem(
                name,
                format!("its healthcheck probes {url}, not /readyz on port {listening:?}"),
            ),
        }
    }

    fn check_database(&mut self, name: &str, service: Service, db: &DatabaseConfig) {
        let Some(url) = db.url.as_deref() else {
            return; // serve::check reported it
        };
        // The binary's own URL parsing (PgConnectOptions) and schema rules; no connection.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let built = {
            let _in_rt = rt.enter();
            veritrace_kernel::db::Database::postgres(db, service.name(), service.name()).map(drop)
        };
        if let Err(e) = built {
            self.problem(name, format!("database.url: {e}"));
            return;
        }
        let Some(u) = parse_url(url) else {
            self.problem(name, "database.url is not a URL");
            return;
        };
        let role = format!("veritrace_{}", service.name());
        if u.user != role {
            self.problem(
                name,
                format!("connects as {:?}, not as its own role {role}", u.user),
            );
        }
        if Some(&u.path) != self.init_sql.database.as_ref() {
            self.problem(
                name,
                format!(
                    "uses database {:?}; init.sql creates {:?}",
                    u.path, self.init_sql.database
                ),
            );
        }
        let compose: &'a Compose = self.compose;
        let Some(server) = compose.services.get(&u.host) else {
            self.problem(name, format!("database host {:?} is not a service", u.host));
            return;
        };
        let Some(env) = self.init_sql.roles.get(&u.user).cloned() else {
            self.problem(name, format!("init.sql creates no role {:?}", u.user));
            return;
        };
        if server.environment.get(&env) != Some(&u.password) {
            self.problem(
                name,
                format!(
                    "its password for {} is not the one init.sql reads from {env} in {}",
                    u.user, u.host
                ),
            );
        }
    }

    fn check_amqp(&mut self, name: &str, config: &Config, url: &str) {
        if let Err(e) = veritrace_kernel::amqp::AmqpBus::new(&config.amqp) {
            self.problem(name, format!("amqp.url: {e}"));
            return;
        }
        let Some(u) = parse_url(url) else {
            self.problem(name, "amqp.url is not a URL");
            return;
        };
        let compose: &'a Compose = self.compose;
        let Some(broker) = compose.services.get(&u.host) else {
            self.problem(name, format!("AMQP host {:?} is not a service", u.host));
            return;
        };
        // RabbitMQ's guest user may only connect from loopback: another container needs the
        // user the broker's environment creates.
        let user = broker.environment.get("RABBITMQ_DEFAULT_USER");
        let pass = broker.environment.get("RABBITMQ_DEFAULT_PASS");
        if user != Some(&u.user) || pass != Some(&u.password) {
            self.problem(
                name,
                format!(
                    "AMQP user {:?} and its password are not RABBITMQ_DEFAULT_USER/PASS of {}",
                    u.user, u.host
                ),
            );
        }
    }

    /// Runs chain-init's command into the volume directories; checks the validators against
    /// the node files. Returns each validator's advertised API (`host:port`) and the genesis.
    fn check_chain(&mut self, name: &str, mut opts: InitOptions) -> Option<(Vec<String>, PathBuf)> {
        if !opts.if_missing {
            self.problem(
                name,
                "without --if-missing the next start fails on the existing genesis",
            );
        }
        let compose: &'a Compose = self.compose;
        let Some((dir, read_only)) = self.in_volume(name, &opts.dir) else {
            self.problem(
                name,
                format!("--dir {} is not in a named volume", opts.dir.display()),
            );
            return None;
        };
        if read_only {
            self.problem(
                name,
                format!("--dir {} is mounted read-only", opts.dir.display()),
            );
        }
        opts.dir = dir;
        let made = match veritrace::network::init(&opts) {
            Ok(r) => r,
            Err(e) => {
                self.problem(name, format!("chain init fails: {e}"));
                return None;
            }
        };
        if opts.if_missing {
            match veritrace::network::init(&opts) {
                Ok(again) if again.kept => {}
                Ok(_) => self.problem(name, "a second run did not keep the network"),
                Err(e) => self.problem(name, format!("a second run fails: {e}")),
            }
        }
        let files: Vec<NodeConfig> = match made
            .node_configs
            .iter()
            .map(|p| load_node(p, &BTreeMap::new()))
            .collect()
        {
            Ok(f) => f,
            Err(e) => {
                self.problem(name, format!("a node file does not load: {e}"));
                return None;
            }
        };
        // Validators: who runs which node file.
        let mut runners: BTreeMap<PathBuf, Vec<String>> = BTreeMap::new();
        for (service, cli) in self.parse_commands_quiet() {
            if let Cmd::Node { config } = cli.command {
                match self.in_volume(&service, &config) {
                    Some((path, read_only)) => {
                        if read_only {
                            self.problem(
                                &service,
                                "its node directory (block store) is mounted read-only",
                            );
                        }
                        runners.entry(path).or_default().push(service);
                    }
                    None => self.problem(
                        &service,
                        format!("--config {} is not in a named volume", config.display()),
                    ),
                }
            }
        }
        let mut apis = Vec::new();
        for (path, node) in made.node_configs.iter().zip(&files) {
            let service = match runners.remove(path).as_deref() {
                Some([one]) => one.clone(),
                Some(many) => {
                    self.problem(name, format!("{} is run by {many:?}", node.name));
                    continue;
                }
                None => {
                    self.problem(
                        name,
                        format!(
                            "no service runs `node --config` on {}'s node file",
                            node.name
                        ),
                    );
                    continue;
                }
            };
            let node = match load_node(path, &compose.services[&service].environment) {
                Ok(n) => n,
                Err(e) => {
                    self.problem(&service, format!("node file does not load: {e}"));
                    continue;
                }
            };
            let ports = &compose.services[&service].ports;
            let mut own = Vec::new();
            for (what, addr) in [("listen", &node.listen), ("api", &node.api)] {
                let Ok(addr) = addr.parse::<SocketAddr>() else {
                    self.problem(&service, format!("{what} {addr:?} is not ip:port"));
                    continue;
                };
                if !addr.ip().is_unspecified() {
                    self.problem(
                        &service,
                        format!("{what} on {addr}: unreachable from the other containers"),
                    );
                }
                if !ports.contains(&(addr.port(), addr.port())) {
                    self.problem(
                        &service,
                        format!(
                            "its node file's {what} port {} is not published as {0}:{0} ({ports:?})",
                            addr.port()
                        ),
                    );
                }
                own.push(addr.port());
            }
            // How the others reach it: by this service's name, on its own ports.
            let mut advertised_api = None;
            for other in files.iter().filter(|o| o.name != node.name) {
                let Some(peer) = other.peers.iter().find(|p| p.name == node.name) else {
                    self.problem(
                        name,
                        format!("{} has no peer entry for {}", other.name, node.name),
                    );
                    continue;
                };
                for (what, addr, port) in [
                    ("address", &peer.address, own.first()),
                    ("api", &peer.api, own.get(1)),
                ] {
                    let expected = port.map(|p| format!("{service}:{p}"));
                    if Some(addr) != expected.as_ref() {
                        self.problem(
                            &service,
                            format!(
                                "{} reaches {} at {what} {addr}, but this service is {expected:?}",
                                other.name, node.name
                            ),
                        );
                    }
                }
                advertised_api.get_or_insert_with(|| peer.api.clone());
            }
            apis.extend(advertised_api);
        }
        for (path, services) in runners {
            for s in services {
                self.problem(
                    &s,
                    format!("runs {}, which chain-init does not write", path.display()),
                );
            }
        }
        Some((apis, made.genesis_path))
    }

    /// Commands parsed again without recording problems (`parse_commands` did).
    fn parse_commands_quiet(&self) -> Vec<(String, Cli)> {
        self.compose
            .services
            .iter()
            .filter(|(_, s)| s.image.as_deref() == Some(OUR_IMAGE))
            .filter_map(|(n, s)| {
                let cmd = s.command.as_ref()?;
                let args = std::iter::once("veritrace").chain(cmd.iter().map(String::as_str));
                Some((n.clone(), Cli::try_parse_from(args).ok()?))
            })
            .collect()
    }

    fn check_genesis(&mut self, name: &str, config: &Config, genesis: &Path) {
        let Some(path) = &config.chain.genesis else {
            return;
        };
        match self.in_volume(name, path) {
            Some((p, _)) if p == genesis => {}
            _ => self.problem(
                name,
                format!(
                    "chain.genesis {} is not the genesis.json chain-init writes",
                    path.display()
                ),
            ),
        }
    }
}

/// Every problem found in `compose` (empty: the deployment is consistent).
fn check(compose: &Compose, init_sql: &str) -> Vec<String> {
    let mut c = Checker {
        compose,
        init_sql: parse_init_sql(init_sql),
        problems: Vec::new(),
        volumes: tempfile::tempdir().expect("tempdir"),
    };
    c.check_structure();
    // The postgres service must provide every password init.sql reads.
    if let Some((pg, s)) = compose
        .services
        .iter()
        .find(|(_, s)| s.volumes.iter().any(|m| m.source.ends_with("init.sql")))
    {
        for env in c.init_sql.roles.values() {
            if !s.environment.contains_key(env) {
                c.problems.push(format!(
                    "{pg}: init.sql reads {env}, which its environment lacks"
                ));
            }
        }
    } else {
        c.problems.push("no service mounts init.sql".into());
    }
    let commands = c.parse_commands();
    let mut serving = Vec::new();
    let mut inits = Vec::new();
    for (name, cli) in commands {
        match cli.command {
            Cmd::Serve {
                service,
                config,
                bind,
                ..
            } => {
                if let Some(cfg) = c.check_serve(&name, service, config.as_deref(), bind.as_deref())
                {
                    serving.push((name, service, cfg));
                }
            }
            Cmd::Chain {
                command: ChainCommand::Init(opts),
            } => inits.push((name, opts)),
            _ => {}
        }
    }
    // A domain service's answers link to receipts, which the anchor serves: on a port the
    // anchor publishes (there is no gateway in front).
    let anchor_ports: Vec<u16> = serving
        .iter()
        .filter(|(_, s, _)| *s == Service::Anchor)
        .flat_map(|(name, _, _)| compose.services[name].ports.iter().map(|p| p.0))
        .collect();
    for (name, service, config) in &serving {
        if !service.is_domain() {
            continue;
        }
        match config.http.receipts_url.as_deref() {
            None => c.problems.push(format!(
                "{name}: http.receipts_url is not set, so its receipt links lead to itself"
            )),
            Some(url) => {
                let port = parse_url(url).map(|u| u.port.unwrap_or(80));
                if !port.is_some_and(|p| anchor_ports.contains(&p)) {
                    c.problems.push(format!(
                        "{name}: http.receipts_url {url} is not on a port the anchor publishes {anchor_ports:?}"
                    ));
                }
            }
        }
    }
    let served: BTreeSet<&str> = serving.iter().map(|(_, s, _)| s.name()).collect();
    for wanted in Service::all().iter().map(|s| s.name()) {
        if !served.contains(wanted) {
            c.problems.push(format!("no service runs `serve {wanted}`"));
        }
    }
    if inits.len() != 1 {
        c.problems.push(format!(
            "{} services run `chain init`, expected 1",
            inits.len()
        ));
    }
    let chain = inits
        .into_iter()
        .next()
        .and_then(|(name, opts)| c.check_chain(&name, opts));
    if let Some((apis, genesis)) = chain {
        for (name, service, config) in &serving {
            c.check_genesis(name, config, &genesis);
            if *service == Service::Anchor {
                let mut want: Vec<String> = apis.iter().map(|a| format!("http://{a}")).collect();
                let mut got = config.chain.nodes.clone();
                want.sort();
                got.sort();
                if got != want {
                    c.problems.push(format!(
                        "{name}: chain.nodes {got:?}, but the validators' APIs are {want:?}"
                    ));
                }
            }
        }
    }
    c.problems
}

// ---------------------------------------------------------------------------------------------
// Tests.

#[test]
fn compose_file_matches_the_binary() {
    let compose = load_compose();
    let problems = check(&compose, &read("deploy/postgres/init.sql"));
    assert!(
        problems.is_empty(),
        "compose.yaml:\n{}",
        problems.join("\n")
    );

    // What the checker saw, so a silently empty model cannot pass.
    let anchor = load_config(&compose.services["anchor"].environment).unwrap();
    assert_eq!(
        anchor.chain.nodes,
        (1..=4)
            .map(|i| format!("http://validator-{i}:{}", 26700 + i))
            .collect::<Vec<_>>(),
        "one variable, figment's array syntax, four URLs"
    );
    for (service, port) in [
        ("identity", 8081u16),
        ("evidence", 8082),
        ("anchor", 8083),
        ("cases", 8084),
    ] {
        assert_eq!(compose.services[service].ports, [(port, 8080)]);
    }
}

/// A mutation of the parsed file and a phrase the checker must then report.
type Mutation = (&'static str, fn(&mut Compose), &'static str);

fn env<'a>(c: &'a mut Compose, service: &str) -> &'a mut BTreeMap<String, String> {
    &mut c.services.get_mut(service).unwrap().environment
}

fn command<'a>(c: &'a mut Compose, service: &str) -> &'a mut Vec<String> {
    c.services
        .get_mut(service)
        .unwrap()
        .command
        .as_mut()
        .unwrap()
}

#[test]
fn checker_catches_mistakes() {
    let good = load_compose();
    let init_sql = read("deploy/postgres/init.sql");
    let mutations: &[Mutation] = &[
        (
            "misspelt key",
            |c| {
                let url = env(c, "evidence")
                    .remove("VERITRACE_DATABASE__URL")
                    .unwrap();
                env(c, "evidence").insert("VERITRACE_DATABASE__URI".into(), url);
            },
            "evidence: environment does not load",
        ),
        (
            "missing genesis",
            |c| {
                env(c, "anchor").remove("VERITRACE_CHAIN__GENESIS");
            },
            "chain.genesis must name",
        ),
        (
            "wrong published port",
            |c| c.services.get_mut("identity").unwrap().ports = vec![(8081, 8081)],
            "identity: listens on port 8080 but publishes",
        ),
        (
            "loopback bind",
            |c| {
                env(c, "anchor").insert("VERITRACE_HTTP__BIND".into(), "127.0.0.1:8080".into());
            },
            "unreachable from outside its container",
        ),
        (
            "validator port",
            |c| c.services.get_mut("validator-2").unwrap().ports[1] = (26712, 26712),
            "validator-2: its node file's api port 26702 is not published",
        ),
        (
            "validator config path",
            |c| {
                c.services.get_mut("validator-3").unwrap().command = Some(vec![
                    "node".into(),
                    "--config".into(),
                    "/net/validator-3/node.tom".into(),
                ]);
            },
            "no service runs `node --config` on validator-3",
        ),
        (
            "hosts that are not the services",
            |c| {
                let cmd = command(c, "chain-init");
                let i = cmd.iter().position(|a| a == "--hosts").unwrap();
                cmd[i + 1] = "v1,v2,v3,v4".into();
            },
            "validator-1: validator-2 reaches validator-1 at address v1:26601",
        ),
        (
            "no --if-missing",
            |c| {
                let cmd = command(c, "chain-init");
                cmd.retain(|a| a != "--if-missing");
            },
            "without --if-missing",
        ),
        (
            "unknown subcommand",
            |c| {
                c.services.get_mut("evidence").unwrap().command =
                    Some(vec!["serv".into(), "evidence".into()])
            },
            "evidence: `veritrace serv evidence` does not parse",
        ),
        (
            "healthcheck on the published port",
            |c| {
                let test = c
                    .services
                    .get_mut("anchor")
                    .unwrap()
                    .healthcheck_test
                    .as_mut();
                test.unwrap()[3] = "http://127.0.0.1:8083/readyz".into();
            },
            "anchor: its healthcheck probes http://127.0.0.1:8083/readyz, not /readyz on port Some(8080)",
        ),
        (
            "no healthcheck",
            |c| {
                let evidence = c.services.get_mut("evidence").unwrap();
                evidence.healthcheck = false;
                evidence.healthcheck_test = None;
            },
            "evidence: has no healthcheck running `veritrace probe`",
        ),
        (
            "receipt links to the evidence service",
            |c| {
                env(c, "evidence").insert(
                    "VERITRACE_HTTP__RECEIPTS_URL".into(),
                    "http://localhost:8082".into(),
                );
            },
            "evidence: http.receipts_url http://localhost:8082 is not on a port the anchor publishes",
        ),
        (
            "receipt links unset",
            |c| {
                env(c, "evidence").remove("VERITRACE_HTTP__RECEIPTS_URL");
            },
            "evidence: http.receipts_url is not set",
        ),
        (
            "a node missing from chain.nodes",
            |c| {
                env(c, "anchor").insert(
                    "VERITRACE_CHAIN__NODES".into(),
                    "[http://validator-1:26701,http://validator-2:26702,http://validator-3:26703]"
                        .into(),
                );
            },
            "anchor: chain.nodes",
        ),
        (
            "another service's role",
            |c| {
                let url = env(c, "evidence")["VERITRACE_DATABASE__URL"].clone();
                env(c, "identity").insert("VERITRACE_DATABASE__URL".into(), url);
            },
            "identity: connects as \"veritrace_evidence\"",
        ),
        (
            "wrong password",
            |c| {
                env(c, "postgres").insert("VERITRACE_ANCHOR_DB_PASSWORD".into(), "other".into());
            },
            "anchor: its password for veritrace_anchor",
        ),
        (
            "guest on the broker",
            |c| {
                env(c, "evidence").insert(
                    "VERITRACE_AMQP__URL".into(),
                    "amqp://guest:guest@rabbitmq:5672/%2f".into(),
                );
            },
            "evidence: AMQP user \"guest\"",
        ),
        (
            "dependency on a missing service",
            |c| {
                c.services
                    .get_mut("anchor")
                    .unwrap()
                    .depends_on
                    .insert("postgress".into(), "service_healthy".into());
            },
            "anchor: depends on \"postgress\"",
        ),
        (
            "health of a service without a healthcheck",
            |c| c.services.get_mut("postgres").unwrap().healthcheck = false,
            "waits for postgres to be healthy",
        ),
        (
            "no image",
            |c| c.services.get_mut("rabbitmq").unwrap().image = None,
            "rabbitmq: no image",
        ),
        (
            "genesis elsewhere",
            |c| {
                env(c, "evidence")
                    .insert("VERITRACE_CHAIN__GENESIS".into(), "/genesis.json".into());
            },
            "evidence: chain.genesis /genesis.json is not the genesis.json",
        ),
        (
            "read-only node directory",
            |c| c.services.get_mut("validator-4").unwrap().volumes[0].read_only = true,
            "validator-4: its node directory (block store) is mounted read-only",
        ),
    ];
    assert!(check(&good, &init_sql).is_empty());
    for (what, mutate, expected) in mutations {
        let mut bad = good.clone();
        mutate(&mut bad);
        let problems = check(&bad, &init_sql);
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "{what}: expected a problem containing {expected:?}, got {problems:#?}"
        );
    }

    // init.sql without the evidence schema.
    let no_schema = init_sql.replace(
        "CREATE SCHEMA evidence AUTHORIZATION veritrace_evidence;",
        "",
    );
    assert_ne!(no_schema, init_sql);
    let problems = check(&good, &no_schema);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("init.sql creates no schema evidence")),
        "{problems:#?}"
    );

    // The forms the file promises.
    let text = read("compose.yaml");
    let string_command = text.replacen(
        "command: [\"serve\", \"identity\"]",
        "command: serve identity",
        1,
    );
    assert_ne!(string_command, text);
    let errors = parse(&string_command).unwrap_err();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("identity: `command` must be a list")),
        "{errors:?}"
    );
}

#[test]
fn interpolation_follows_compose() {
    let vars: BTreeMap<String, String> = [
        ("SET".to_string(), "x".to_string()),
        ("EMPTY".into(), String::new()),
    ]
    .into();
    for (input, want) in [
        ("${SET:-d}", "x"),
        ("${UNSET:-d}", "d"),
        ("${EMPTY:-d}", "d"),
        ("${EMPTY-d}", ""),
        ("a$${SET}b", "a${SET}b"),
        ("$SET/y", "x/y"),
        ("%2f?heartbeat=10", "%2f?heartbeat=10"),
    ] {
        assert_eq!(interpolate(input, &vars).as_deref(), Ok(want), "{input}");
    }
    assert!(interpolate("${UNSET}", &vars).is_err());
    assert!(interpolate("${UNSET:?needed}", &vars).is_err());
}

/// `docker compose config -q` where the compose plugin (or a v2 `docker-compose`) exists; it
/// needs no engine. Elsewhere the test says it skipped that part.
#[test]
fn docker_compose_accepts_the_file() {
    let root = root();
    let compose_cmd = locked(|| {
        let plugin = Command::new("docker").args(["compose", "version"]).output();
        if plugin.is_ok_and(|o| o.status.success()) {
            return Some(vec!["docker", "compose"]);
        }
        let standalone = Command::new("docker-compose").arg("version").output();
        match standalone {
            Ok(o) if o.status.success() && String::from_utf8_lossy(&o.stdout).contains("v2") => {
                Some(vec!["docker-compose"])
            }
            _ => None,
        }
    });
    let Some(cmd) = compose_cmd else {
        eprintln!(
            "note: no `docker compose` on this machine; `config -q` was not run (the other compose tests still check the file)"
        );
        return;
    };
    let run = |file: &Path| {
        locked(|| {
            Command::new(cmd[0])
                .args(&cmd[1..])
                .arg("--project-directory")
                .arg(&root)
                .arg("-f")
                .arg(file)
                .args(["config", "-q"])
                .output()
                .expect("run docker compose")
        })
    };
    let out = run(&root.join("compose.yaml"));
    assert!(
        out.status.success(),
        "docker compose config -q: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // And it does reject a broken file.
    let tmp = tempfile::tempdir().unwrap();
    let broken = tmp.path().join("compose.yaml");
    std::fs::write(
        &broken,
        read("compose.yaml").replacen(
            "        condition: service_completed_successfully",
            "        condition: service_finished",
            1,
        ),
    )
    .unwrap();
    assert!(!run(&broken).status.success());
}

// ---------------------------------------------------------------------------------------------
// init.sql against the real PostgreSQL.

/// A scratch database and roles with a per-run suffix (roles are cluster-wide), removed even
/// when the test fails.
struct Scratch {
    server_url: String,
    database: String,
    roles: Vec<String>,
    removed: bool,
}

impl Scratch {
    /// psql as the postgres image runs init scripts (ON_ERROR_STOP, no psqlrc).
    fn psql(&self, args: &[&str], env: &BTreeMap<String, String>) -> Result<Output, String> {
        locked(|| {
            Command::new("psql")
                .arg(&self.server_url)
                .args(["-v", "ON_ERROR_STOP=1", "--no-psqlrc", "-q"])
                .args(args)
                .envs(env)
                .output()
                .map_err(|e| format!("cannot run psql ({e}); scripts/services installs it"))
        })
    }

    fn remove(&mut self) -> Result<(), String> {
        if self.removed {
            return Ok(());
        }
        // Separate -c commands: DROP DATABASE cannot run inside a transaction block.
        let drop_db = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.database);
        let drop_roles = format!("DROP ROLE IF EXISTS {}", self.roles.join(", "));
        let out = self.psql(&["-c", &drop_db, "-c", &drop_roles], &BTreeMap::new())?;
        if !out.status.success() {
            return Err(format!(
                "could not remove {} and its roles: {}",
                self.database,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        self.removed = true;
        Ok(())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            eprintln!("{e}");
        }
    }
}

/// init.sql with its roles and database renamed for one test run.
fn rename(sql: &str, suffix: &str, database: &str) -> String {
    let mut sql = sql.to_string();
    let roles = Service::all()
        .into_iter()
        .map(|s| s.name())
        .chain(["audit"])
        .collect::<Vec<_>>();
    for role in roles {
        sql = sql.replace(
            &format!("veritrace_{role}"),
            &format!("veritrace_{role}_{suffix}"),
        );
    }
    // The database: `veritrace` as a whole word only (not veritrace_identity_...).
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let word = "veritrace";
    let mut out = String::new();
    let mut i = 0;
    while let Some(c) = sql[i..].chars().next() {
        if sql[i..].starts_with(word)
            && !sql[..i].chars().next_back().is_some_and(ident)
            && !sql[i + word.len()..].chars().next().is_some_and(ident)
        {
            out.push_str(database);
            i += word.len();
        } else {
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

#[test]
fn init_sql_lets_each_role_run_its_service() {
    use veritrace_kernel::auth::Identity;
    use veritrace_kernel::db::Database;
    use veritrace_kernel::migrate;

    let (skipped, server_url) = locked(|| {
        (
            veritrace_kernel::testing::servers_skipped("the init.sql check"),
            veritrace_kernel::testing::database_server_url(),
        )
    });
    if skipped {
        return;
    }
    let compose = load_compose();
    let sql = read("deploy/postgres/init.sql");
    let declared = parse_init_sql(&sql);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        use sqlx::Connection;
        sqlx::PgConnection::connect(&server_url)
            .await
            .map(drop)
            .unwrap_or_else(|e| {
                panic!(
                    "cannot reach the test PostgreSQL at {}: {e}. Run the suite with scripts/test, \
                     which starts it (or set VERITRACE_TEST_BACKENDS=sqlite to skip these tests)",
                    veritrace_kernel::db::redact(&server_url)
                )
            })
    });

    let suffix = uuid::Uuid::now_v7().simple().to_string()[20..].to_string();
    let database = format!("vt_compose_{suffix}");
    let scratch = Scratch {
        server_url: server_url.clone(),
        database: database.clone(),
        roles: declared
            .roles
            .keys()
            .map(|r| format!("{r}_{suffix}"))
            .collect(),
        removed: false,
    };
    // The passwords the postgres container would hand to init.sql.
    let pg_env = &compose.services["postgres"].environment;
    let passwords: BTreeMap<String, String> = declared
        .roles
        .values()
        .map(|env| (env.clone(), pg_env[env].clone()))
        .collect();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), rename(&sql, &suffix, &database)).unwrap();
    let out = scratch
        .psql(&["-f", file.path().to_str().unwrap()], &passwords)
        .unwrap();
    assert!(
        out.status.success(),
        "init.sql failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let server = parse_url(&server_url).expect("server URL");
    let server_at = format!("{}:{}", server.host, server.port.unwrap_or(5432));
    // A role's URL on the test server: the compose URL's password, the renamed role.
    let url_of = |role: &str, password: &str| {
        format!("postgres://{role}_{suffix}:{password}@{server_at}/{database}")
    };
    let service_url = |service: &str| {
        let compose_url =
            parse_url(&compose.services[service].environment["VERITRACE_DATABASE__URL"])
                .expect("database URL");
        DatabaseConfig {
            url: Some(url_of(&compose_url.user, &compose_url.password)),
            ..DatabaseConfig::default()
        }
    };
    rt.block_on(async {
        let identity_cfg = service_url("identity");
        let anchor_cfg = service_url("anchor");
        let domains: Vec<_> = veritrace::domains::DOMAINS
            .iter()
            .map(|d| (*d, service_url(d.name())))
            .collect();
        let db = |cfg: &DatabaseConfig, schema: &str| {
            Database::postgres(cfg, schema, "compose-test").expect("pool")
        };
        // The migrations each service runs at start (serve.rs), twice: the second start finds
        // the schema there (`CREATE SCHEMA IF NOT EXISTS` as a role that owns it).
        for _ in 0..2 {
            migrate::run(
                &db(&identity_cfg, "identity"),
                "identity",
                migrate::IDENTITY,
            )
            .await
            .expect("identity migrates as veritrace_identity");
            migrate::run(
                &db(&identity_cfg, "identity"),
                "idempotency",
                migrate::IDEMPOTENCY,
            )
            .await
            .expect("identity's idempotency keys migrate as veritrace_identity");
            for (domain, cfg) in &domains {
                let name = domain.name();
                let events = db(cfg, name);
                migrate::run(&events, "event_store", migrate::EVENT_STORE)
                    .await
                    .unwrap_or_else(|e| {
                        panic!("the event store migrates as veritrace_{name}: {e}")
                    });
                migrate::run(&events, name, domain.migrations())
                    .await
                    .unwrap_or_else(|e| panic!("{name} migrates as veritrace_{name}: {e}"));
                migrate::run(
                    &events,
                    "read_model",
                    veritrace_kernel::read_model::MIGRATIONS,
                )
                .await
                .unwrap_or_else(|e| {
                    panic!("{name}'s read-model tables migrate as veritrace_{name}: {e}")
                });
                migrate::run(&events, "idempotency", migrate::IDEMPOTENCY)
                    .await
                    .unwrap_or_else(|e| {
                        panic!("{name}'s idempotency keys migrate as veritrace_{name}: {e}")
                    });
            }
            migrate::run(
                &db(&anchor_cfg, "anchor"),
                "anchor",
                veritrace_anchor::MIGRATIONS,
            )
            .await
            .expect("anchor migrates as veritrace_anchor");
        }
        // The admin key identity creates is accepted by the other services' key checks, which
        // read identity's tables as their own roles.
        let key = Identity::new(&db(&identity_cfg, "identity"))
            .bootstrap_admin()
            .await
            .expect("bootstrap")
            .expect("a new admin key");
        for cfg in domains.iter().map(|(_, cfg)| cfg).chain([&anchor_cfg]) {
            let org = Identity::new(&db(cfg, "identity"))
                .authenticate(&key)
                .await
                .expect("API-key check as the service's role");
            assert_eq!(org.name, "admin");
        }

        // What a role must not do.
        let refused = |role: &'static str, statement: &'static str| {
            let password = declared.roles[&format!("veritrace_{role}")].clone();
            let url = url_of(&format!("veritrace_{role}"), &pg_env[&password]);
            async move {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(&url).await.expect("login");
                let err = sqlx::raw_sql(statement)
                    .execute(&mut conn)
                    .await
                    .expect_err(statement);
                let code = err
                    .as_database_error()
                    .and_then(|e| e.code())
                    .map(|c| c.to_string());
                assert_eq!(code.as_deref(), Some("42501"), "{role}: {statement}: {err}");
            }
        };
        refused("evidence", "DELETE FROM identity.api_keys").await;
        refused("anchor", "UPDATE identity.organisations SET name = name").await;
        refused("evidence", "SELECT * FROM anchor.leaves").await;
        // A domain reads another's events from the bus only, never from its schema.
        refused("cases", "SELECT * FROM evidence.events").await;
        refused("evidence", "SELECT * FROM cases.events").await;
        refused("anchor", "CREATE TABLE evidence.stray (i int)").await;
        refused("audit", "DELETE FROM evidence.events").await;
        refused("audit", "CREATE SCHEMA IF NOT EXISTS audit").await;

        // The audit role reads every schema.
        let audit_env = &declared.roles["veritrace_audit"];
        let mut audit = {
            use sqlx::Connection;
            sqlx::PgConnection::connect(&url_of("veritrace_audit", &pg_env[audit_env]))
                .await
                .expect("audit login")
        };
        let mut tables: Vec<String> = [
            "identity.organisations",
            "identity.api_keys",
            "anchor.leaves",
            "anchor.batches",
            "anchor.rejected_events",
        ]
        .map(String::from)
        .to_vec();
        for (domain, _) in &domains {
            // Its event store, whatever its read model holds.
            tables.push(format!("{}.events", domain.name()));
            tables.push(format!("{}.outbox", domain.name()));
        }
        for table in tables {
            let n: i64 =
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
                    .fetch_one(&mut audit)
                    .await
                    .unwrap_or_else(|e| panic!("audit reads {table}: {e}"));
            assert!(n >= 0);
        }
    });
    // Gone again: the database and the cluster-wide roles.
    let mut scratch = scratch;
    scratch.remove().expect("clean up");
    let left = scratch
        .psql(
            &[
                "-tAc",
                &format!(
                    "SELECT (SELECT count(*) FROM pg_roles WHERE rolname LIKE '%{suffix}') \
                 + (SELECT count(*) FROM pg_database WHERE datname = '{database}')"
                ),
            ],
            &BTreeMap::new(),
        )
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&left.stdout).trim(), "0");
}
