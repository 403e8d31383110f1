//! Operator subcommands on top of the library: `gen-cert`, `hash-password`, `check-config`,
//! `explain`, `jwks`, `bundle`, and the store's `identity-tokens`, `robot` and `lockout`.
//! Results go to stdout (so they can be redirected into files), warnings to stderr.
pub mod check_config;
pub mod explain;
pub mod explain_token;
pub mod gen_cert;
pub mod hash_password;
pub mod identity_tokens;
pub mod lockout;
pub mod publish;
pub mod robot;
pub mod stored;
