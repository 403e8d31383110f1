//! Command line: `registry-auth serve [CONFIG]`, and docker_auth's own invocation
//! `registry-auth [glog flags] CONFIG`, which existing Helm charts and `docker run` lines use.
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// The config `serve` uses when none is given.
pub const DEFAULT_CONFIG: &str = "config/auth_config.yml";

/// Token authorization server for the Docker registry, compatible with docker_auth's config.
#[derive(Debug, Parser)]
#[command(name = "registry-auth", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log line format on stderr.
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub log_format: crate::telemetry::LogFormat,
    /// Log level of registry-auth's own events (error, warn, info, debug, trace);
    /// overrides -v=N; RUST_LOG overrides both.
    #[arg(long, global = true, value_parser = ["error", "warn", "info", "debug", "trace"])]
    pub log_level: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve tokens (the default when only a config path is given).
    Serve {
        /// docker_auth-style YAML config.
        #[arg(default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Generate a self-signed certificate and key for token signing and/or TLS.
    GenCert(GenCertArgs),
    /// Print a bcrypt hash for the users: section, read from a no-echo prompt or stdin.
    HashPassword(HashPasswordArgs),
    /// Load and build a config exactly as `serve` does, without listening; list every problem.
    CheckConfig {
        /// Exit 2 when there are warnings (and no errors).
        #[arg(long)]
        strict: bool,
        config: PathBuf,
    },
    /// Show what the server would decide for an account and scopes, and why; or decode
    /// and verify a token.
    Explain(ExplainArgs),
    /// List or revoke the identity tokens `docker login` stored (needs a store).
    #[command(subcommand)]
    IdentityTokens(IdentityTokensCommand),
    /// Create, list, revoke or rotate robot (CI) credentials (needs a store).
    #[command(subcommand)]
    Robot(RobotCommand),
    /// List the accounts and client addresses locked out now, or unlock one (needs a store).
    #[command(subcommand)]
    Lockout(LockoutCommand),
    /// Print the JWKS for registry 3.x's auth.token.jwks: the signing and verification
    /// certificates' keys under the kid our tokens carry.
    Jwks { config: PathBuf },
    /// Print the PEM bundle for the registry's auth.token.rootcertbundle: the signing
    /// certificate, then token.verification_certificates.
    Bundle { config: PathBuf },
}

/// The store's config file, shared by the store subcommands.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreConfigArg {
    /// The server's config (its store: section says where the records are).
    #[arg(long, default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum IdentityTokensCommand {
    /// Every live identity token (id, account, client, created, last used, expiry).
    List {
        /// Only this account's tokens.
        #[arg(long)]
        account: Option<String>,
        #[command(flatten)]
        store: StoreConfigArg,
    },
    /// Revoke one token by id (as listed, 8 characters at least) or all of an account's.
    Revoke {
        #[arg(required_unless_present = "account", conflicts_with = "account")]
        id: Option<String>,
        #[arg(long)]
        account: Option<String>,
        #[command(flatten)]
        store: StoreConfigArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum RobotCommand {
    /// Create a robot and print its secret (shown once) and the `docker login` line.
    Create {
        /// 1-64 characters a-z 0-9 . _ - ; it logs in as robot$NAME (or robot+NAME).
        name: String,
        /// What it may get, e.g. 'repository:team/*:pull,push' (repeatable); the ACL
        /// still applies on top.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// Lifetime such as 90d or 12h; without it the robot lives until revoked.
        #[arg(long)]
        expires: Option<String>,
        #[arg(long, default_value = "")]
        description: String,
        #[command(flatten)]
        store: StoreConfigArg,
    },
    /// Every robot: name, scopes, expiry, created, last used (never the secret).
    List {
        #[command(flatten)]
        store: StoreConfigArg,
    },
    /// Delete a robot; its secret stops working at once on every replica.
    Revoke {
        name: String,
        #[command(flatten)]
        store: StoreConfigArg,
    },
    /// Give a robot a new secret (printed once); the old one stops working at once.
    Rotate {
        name: String,
        #[command(flatten)]
        store: StoreConfigArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum LockoutCommand {
    /// Every current lockout: account or address, failed logins, time until it ends.
    List {
        #[command(flatten)]
        store: StoreConfigArg,
    },
    /// Clear an account's or an address's failure count; its next login is checked again.
    Unlock {
        /// The account name, as clients send it.
        #[arg(long, required_unless_present = "ip", conflicts_with = "ip")]
        account: Option<String>,
        /// A client address (IPv6 addresses unlock their /64, as they are counted).
        #[arg(long)]
        ip: Option<std::net::IpAddr>,
        #[command(flatten)]
        store: StoreConfigArg,
    },
}

#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    #[arg(long)]
    pub config: PathBuf,
    /// The account to explain (use "" for anonymous).
    #[arg(long, required_unless_present = "token")]
    pub account: Option<String>,
    /// Run authentication with this password (otherwise it is skipped).
    #[arg(long, conflicts_with = "labels")]
    pub password: Option<String>,
    /// Labels to assume instead of authenticating: key=value,key=value2.
    #[arg(long)]
    pub labels: Option<String>,
    /// The client address the ACL's ip conditions see.
    #[arg(long)]
    pub ip: Option<std::net::IpAddr>,
    /// The service clients ask tokens for (REGISTRY_AUTH_TOKEN_SERVICE).
    #[arg(long, default_value = "Docker registry")]
    pub service: String,
    /// Decode and verify this token instead.
    #[arg(long, conflicts_with_all = ["account", "password", "labels"])]
    pub token: Option<String>,
    /// Scopes such as repository:team/app:pull,push.
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyTypeArg {
    EcP256,
    EcP384,
    #[value(name = "rsa-2048")]
    Rsa2048,
    #[value(name = "rsa-4096")]
    Rsa4096,
}

#[derive(Debug, clap::Args)]
pub struct GenCertArgs {
    #[arg(long, value_enum, default_value = "ec-p256")]
    pub key_type: KeyTypeArg,
    /// A DNS name or IP address the certificate is for (repeatable); the first is the CN.
    /// Default: localhost, 127.0.0.1, ::1, registry-auth.
    #[arg(long = "san")]
    pub sans: Vec<String>,
    /// Validity in days. The default (ten years) keeps tokens working: a registry that
    /// checks the certificate's dates would reject every token once it expires.
    #[arg(long, default_value_t = crate::certgen::VALIDITY_DAYS, value_parser = clap::value_parser!(i64).range(1..=36500))]
    pub days: i64,
    #[arg(long, default_value = "ssl/server.pem")]
    pub cert: PathBuf,
    #[arg(long, default_value = "ssl/server.key")]
    pub key: PathBuf,
    /// Overwrite existing files.
    #[arg(long)]
    pub force: bool,
    /// Printed registry settings: token.issuer of your config.
    #[arg(long, default_value = "Acme auth server")]
    pub issuer: String,
    /// Printed registry settings: the service name clients ask tokens for.
    #[arg(long, default_value = "Docker registry")]
    pub service: String,
    /// Printed registry settings: the token URL as the docker client reaches it.
    #[arg(long, default_value = "https://auth:5001/auth")]
    pub realm: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HashFormat {
    /// `user:hash`, like `htpasswd -nB` (just the hash without USER).
    Htpasswd,
    /// A `users:` snippet for auth_config.yml (needs USER).
    Yaml,
}

#[derive(Debug, clap::Args)]
pub struct HashPasswordArgs {
    pub user: Option<String>,
    /// bcrypt cost (4-31); each step doubles the work of every login.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(4..=31))]
    pub cost: u32,
    /// The password itself. Visible in `ps` and shell history: prefer the prompt or stdin.
    #[arg(long)]
    pub password: Option<String>,
    #[arg(long, value_enum, default_value = "htpasswd")]
    pub format: HashFormat,
}

const SUBCOMMANDS: &[&str] = &[
    "serve",
    "gen-cert",
    "hash-password",
    "check-config",
    "explain",
    "jwks",
    "bundle",
    "identity-tokens",
    "robot",
    "lockout",
    "help",
];
/// glog flags that take a value.
const GLOG_VALUE_FLAGS: &[&str] = &["v", "stderrthreshold", "log_dir", "vmodule", "log_backtrace_at", "logbufsecs"];
const GLOG_BOOL_FLAGS: &[&str] = &["logtostderr", "alsologtostderr"];

/// Arguments after glog flags were taken out.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Normalized {
    pub args: Vec<String>,
    /// `-v=N`, if given.
    pub verbosity: Option<u8>,
    /// Notes about flags accepted for compatibility but without effect.
    pub notes: Vec<String>,
}

/// Removes glog flags (`-v=2`, `--v 2`, `-logtostderr`, ...) wherever they are and inserts
/// `serve` when the first argument is a config path rather than a subcommand.
pub fn normalize(raw: Vec<String>) -> Normalized {
    let mut out = Normalized::default();
    let mut iter = raw.into_iter();
    out.args.extend(iter.next());
    while let Some(arg) = iter.next() {
        let Some((name, inline_value)) = glog_flag(&arg) else {
            out.args.push(arg);
            continue;
        };
        let value =
            if GLOG_VALUE_FLAGS.contains(&name.as_str()) { inline_value.or_else(|| iter.next()) } else { inline_value };
        apply_glog(&name, value, &mut out);
    }
    let first = out.args.get(1).map(String::as_str);
    let is_command = first.is_some_and(|a| SUBCOMMANDS.contains(&a) || a.starts_with('-'));
    if !is_command {
        out.args.insert(1.min(out.args.len()), "serve".to_string());
    }
    out
}

/// `-name`, `--name`, `-name=value` for the glog flags only.
fn glog_flag(arg: &str) -> Option<(String, Option<String>)> {
    let body = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-'))?;
    let (name, value) = match body.split_once('=') {
        Some((n, v)) => (n, Some(v.to_string())),
        None => (body, None),
    };
    (GLOG_VALUE_FLAGS.contains(&name) || GLOG_BOOL_FLAGS.contains(&name)).then(|| (name.to_string(), value))
}

fn apply_glog(name: &str, value: Option<String>, out: &mut Normalized) {
    match name {
        "v" => match value.as_deref().map(str::parse::<u8>) {
            Some(Ok(level)) => out.verbosity = Some(level),
            _ => out.notes.push(format!("ignoring -v={}: not a number", value.unwrap_or_default())),
        },
        // We always log to stderr, which is what these ask for.
        "logtostderr" | "alsologtostderr" => {}
        other => {
            out.notes.push(format!("ignoring glog flag -{other}: logs always go to stderr (use RUST_LOG to filter)"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(args: &[&str]) -> Normalized {
        normalize(std::iter::once("registry-auth").chain(args.iter().copied()).map(String::from).collect())
    }

    #[test]
    fn docker_auth_invocation_becomes_serve() {
        let n = norm(&["--v=2", "-logtostderr", "/config/auth_config.yml"]);
        assert_eq!(n.args, ["registry-auth", "serve", "/config/auth_config.yml"]);
        assert_eq!(n.verbosity, Some(2));
        assert!(n.notes.is_empty());
    }

    #[test]
    fn separate_values_and_unsupported_flags() {
        let n = norm(&["-v", "3", "-stderrthreshold=INFO", "-log_dir", "/tmp", "--alsologtostderr", "c.yml"]);
        assert_eq!(n.args, ["registry-auth", "serve", "c.yml"]);
        assert_eq!(n.verbosity, Some(3));
        assert_eq!(n.notes.len(), 2);
    }

    #[test]
    fn subcommands_and_help_pass_through() {
        assert_eq!(norm(&["serve", "x.yml"]).args, ["registry-auth", "serve", "x.yml"]);
        assert_eq!(norm(&["--help"]).args, ["registry-auth", "--help"]);
        assert_eq!(norm(&[]).args, ["registry-auth", "serve"]);
        assert_eq!(norm(&["serve", "-v=2"]).verbosity, Some(2));
        assert_eq!(norm(&["gen-cert", "--force"]).args, ["registry-auth", "gen-cert", "--force"]);
        assert_eq!(norm(&["check-config", "c.yml"]).args, ["registry-auth", "check-config", "c.yml"]);
    }

    #[test]
    fn parses_with_clap() {
        let cli = Cli::try_parse_from(norm(&["-v=1", "a.yml"]).args).unwrap();
        assert!(matches!(cli.command, Command::Serve { config } if config == std::path::Path::new("a.yml")));
    }
}
