//! `registry-auth robot create|list|revoke|rotate`: robot (CI) credentials in the store.
//! A secret is printed only after the store acknowledged the write, so a robot that was
//! printed exists even if the process is killed right after.
use std::process::ExitCode;

use super::stored::{self, fail, time_text};
use crate::cli::RobotCommand;
use crate::identity::audit::Event;
use crate::identity::robot::{NewRobot, RobotError, RobotRecord, Robots, ACCOUNT_PREFIX, ALT_ACCOUNT_PREFIX};
use crate::store::SharedStore;

pub fn run(command: &RobotCommand) -> ExitCode {
    let config = match command {
        RobotCommand::Create { store, .. }
        | RobotCommand::List { store }
        | RobotCommand::Revoke { store, .. }
        | RobotCommand::Rotate { store, .. } => &store.config,
    };
    stored::with_store(config, |store, hasher, _| async move {
        let robots = Robots::new(store.clone(), hasher);
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
                    created_by: stored::operator(),
                    owner: None,
                };
                finish(robots.create(&new).await, "created", &store).await
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
            RobotCommand::Revoke { name, .. } => match robots.revoke(name).await {
                Ok(()) => {
                    audit("robot_revoked", name, &store).await;
                    println!("robot {name:?} revoked");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e.to_string()),
            },
            RobotCommand::Rotate { name, .. } => finish(robots.rotate(name).await, "rotated", &store).await,
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
async fn finish(result: Result<(RobotRecord, String), RobotError>, verb: &str, store: &SharedStore) -> ExitCode {
    let (record, secret) = match result {
        Ok(done) => done,
        Err(e) => return fail(&e.to_string()),
    };
    audit(if verb == "created" { "robot_created" } else { "robot_rotated" }, &record.name, store).await;
    let name = &record.name;
    println!("robot {name:?} {verb}; the secret is shown only now, store it in your CI's secret store:");
    println!("account: {ACCOUNT_PREFIX}{name}   (or {ALT_ACCOUNT_PREFIX}{name}, which needs no quotes)");
    println!("secret:  {secret}");
    println!("scopes:  {}", record.scopes.join(" "));
    println!("expires: {}", record.expires.map_or("never".to_string(), time_text));
    println!("login:   echo \"$ROBOT_SECRET\" | docker login --username '{ACCOUNT_PREFIX}{name}' --password-stdin <registry>");
    ExitCode::SUCCESS
}

async fn audit(event: &'static str, name: &str, store: &SharedStore) {
    let outcome = match event {
        "robot_created" => "created",
        "robot_rotated" => "rotated",
        _ => "revoked",
    };
    let account = format!("{ACCOUNT_PREFIX}{name}");
    let operator = stored::operator();
    let event = Event {
        event,
        outcome,
        account: &account,
        credential: "robot",
        id: name,
        operator: &operator,
        ..Default::default()
    };
    crate::identity::audit::log_and_keep(&event, "robot credential changed", store).await;
}
