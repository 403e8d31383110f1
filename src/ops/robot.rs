//! `registry-auth robot create|list|revoke|rotate`: robot (CI) credentials in the store.
//! A secret is printed only after the store acknowledged the write, so a robot that was
//! printed exists even if the process is killed right after.
use std::process::ExitCode;

use super::stored::{self, fail, time_text};
use crate::cli::RobotCommand;
use crate::identity::robot::{NewRobot, RobotError, RobotRecord, Robots, ACCOUNT_PREFIX, ALT_ACCOUNT_PREFIX};

pub fn run(command: &RobotCommand) -> ExitCode {
    let config = match command {
        RobotCommand::Create { store, .. }
        | RobotCommand::List { store }
        | RobotCommand::Revoke { store, .. }
        | RobotCommand::Rotate { store, .. } => &store.config,
    };
    stored::with_store(config, |store, hasher, _| async move {
        let robots = Robots::new(store, hasher);
        let operator = stored::operator();
        match command {
            RobotCommand::Create { name, scopes, expires, description, .. } => {
                let lifetime = match expires.as_deref().map(parse_expires).transpose() {
                    Ok(lifetime) => lifetime,
                    Err(e) => return fail(&e),
                };
                let new = NewRobot {
                    name: name.clone(),
                    scopes: scopes.clone(),
                    lifetime,
                    description: description.clone(),
                    created_by: operator.clone(),
                    owner: None,
                };
                finish(robots.create(&new, &operator, "cli").await, "created")
            }
            RobotCommand::List { .. } => match robots.list().await {
                Ok(list) => {
                    println!("{:<24} {:<21} {:<21} {:<21} SCOPES", "NAME", "EXPIRES", "CREATED", "LAST USED");
                    for robot in list {
                        let r = &robot.record;
                        println!(
                            "{:<24} {:<21} {:<21} {:<21} {}",
                            r.name,
                            r.expires.map_or("never".to_string(), time_text),
                            time_text(r.created),
                            robot.last_used.map_or("never".to_string(), time_text),
                            r.scopes.join(" ")
                        );
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e.to_string()),
            },
            RobotCommand::Revoke { name, .. } => match robots.revoke(name, &operator, "cli").await {
                Ok(()) => {
                    println!("robot {name:?} revoked");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e.to_string()),
            },
            RobotCommand::Rotate { name, .. } => finish(robots.rotate(name, &operator, "cli").await, "rotated"),
        }
    })
}

/// Ten years: beyond it "expires" means "never" (leave `--expires` out for that).
const MAX_EXPIRES: std::time::Duration = std::time::Duration::from_secs(3650 * 86_400);

fn parse_expires(text: &str) -> Result<std::time::Duration, String> {
    let shown: String = text.chars().take(40).collect();
    crate::config::identity::parse_lifetime(text)
        .filter(|d| !d.is_zero() && *d <= MAX_EXPIRES)
        .ok_or_else(|| {
            format!("--expires {shown:?} is not a duration up to 3650d; write days such as 90d or hours such as 12h (leave it out for a robot that never expires)")
        })
}

/// Prints the secret once, with the login line, after the store kept the record.
fn finish(result: Result<(RobotRecord, String), RobotError>, verb: &str) -> ExitCode {
    let (record, secret) = match result {
        Ok(done) => done,
        Err(e) => return fail(&e.to_string()),
    };
    let name = &record.name;
    println!("robot {name:?} {verb}; the secret is shown only now, store it in your CI's secret store:");
    println!("account: {ACCOUNT_PREFIX}{name}   (or {ALT_ACCOUNT_PREFIX}{name}, which needs no quotes)");
    println!("secret:  {secret}");
    println!("scopes:  {}", record.scopes.join(" "));
    println!("expires: {}", record.expires.map_or("never".to_string(), time_text));
    println!("login:   echo \"$ROBOT_SECRET\" | docker login --username '{ACCOUNT_PREFIX}{name}' --password-stdin <registry>");
    ExitCode::SUCCESS
}
