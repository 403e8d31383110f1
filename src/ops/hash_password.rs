//! `registry-auth hash-password`: a bcrypt hash for the `users:` section. The password
//! comes from a no-echo prompt on a terminal, else from the first line of stdin; argv only
//! with an explicit `--password` (which `ps` and shell history would show).
use std::io::{BufRead as _, IsTerminal as _};
use std::process::ExitCode;

use crate::cli::{HashFormat, HashPasswordArgs};

/// Costs below this are fast enough to brute-force offline from a leaked config.
pub const RECOMMENDED_MIN_COST: u32 = 10;

pub fn run(args: &HashPasswordArgs) -> ExitCode {
    if args.format == HashFormat::Yaml && args.user.is_none() {
        eprintln!("error: --format yaml needs a USER");
        return ExitCode::FAILURE;
    }
    if args.cost < RECOMMENDED_MIN_COST {
        eprintln!("warning: bcrypt cost {} is below {RECOMMENDED_MIN_COST}; the hash is cheap to crack", args.cost);
    }
    let password = match read_password(args) {
        Ok(password) => password,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match bcrypt::hash(password.as_bytes(), args.cost) {
        Ok(hash) => {
            println!("{}", render(args.user.as_deref(), &hash, args.format));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: cannot hash the password: {e}");
            ExitCode::FAILURE
        }
    }
}

fn read_password(args: &HashPasswordArgs) -> Result<String, String> {
    let password = match &args.password {
        Some(p) => {
            eprintln!("warning: a password given with --password is visible in `ps` and in shell history");
            p.clone()
        }
        None if std::io::stdin().is_terminal() => prompt()?,
        None => {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line).map_err(|e| format!("cannot read stdin: {e}"))?;
            line.trim_end_matches(['\n', '\r']).to_string()
        }
    };
    if password.is_empty() {
        return Err("the password is empty".to_string());
    }
    if password.len() > 72 {
        eprintln!("warning: bcrypt only uses the first 72 bytes of the password");
    }
    Ok(password)
}

fn prompt() -> Result<String, String> {
    let first = rpassword::prompt_password("Password: ").map_err(|e| format!("cannot read the password: {e}"))?;
    let again = rpassword::prompt_password("Again: ").map_err(|e| format!("cannot read the password: {e}"))?;
    if first != again {
        return Err("the passwords do not match".to_string());
    }
    Ok(first)
}

/// JSON string syntax is valid YAML double-quoted syntax, so serde_json quotes the name.
fn render(user: Option<&str>, hash: &str, format: HashFormat) -> String {
    match (format, user) {
        (HashFormat::Yaml, Some(user)) => {
            let quoted = serde_json::to_string(user).unwrap_or_else(|_| format!("{user:?}"));
            format!("users:\n  {quoted}:\n    password: \"{hash}\"")
        }
        (_, Some(user)) => format!("{user}:{hash}"),
        (_, None) => hash.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_both_formats() {
        assert_eq!(render(Some("ci"), "$2b$x", HashFormat::Htpasswd), "ci:$2b$x");
        assert_eq!(render(None, "$2b$x", HashFormat::Htpasswd), "$2b$x");
        assert_eq!(render(Some("a\"b"), "$2b$x", HashFormat::Yaml), "users:\n  \"a\\\"b\":\n    password: \"$2b$x\"");
    }
}
