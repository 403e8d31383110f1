//! Operator subcommands on top of the library: `gen-cert`, `hash-password`, `check-config`, `explain`,
//! `jwks`, `bundle`.
//! Results go to stdout (so they can be redirected into files), warnings to stderr.
pub mod check_config;
pub mod explain;
pub mod explain_token;
pub mod gen_cert;
pub mod hash_password;
pub mod publish;
