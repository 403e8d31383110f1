//! `registry-auth lockout list|unlock`: the brute-force lockouts in force now, and
//! clearing one (audited, with who ran the command).
use std::process::ExitCode;

use super::stored::{self, fail};
use crate::cli::LockoutCommand;
use crate::identity::lockout::{address_group, Lockout, Subject};
use crate::identity::lockouts;

pub fn run(command: &LockoutCommand) -> ExitCode {
    let (LockoutCommand::List { store } | LockoutCommand::Unlock { store, .. }) = command;
    stored::with_config(&store.config, |config, store, _| async move {
        let lockout = Lockout::new(&config.lockout, store);
        match command {
            LockoutCommand::List { .. } => match lockouts::list(&lockout).await {
                Ok(list) => {
                    println!("{:<8} {:<40} {:>8} ENDS IN", "SCOPE", "ACCOUNT OR ADDRESS", "FAILURES");
                    for locked in &list {
                        println!(
                            "{:<8} {:<40} {:>8} {}s",
                            locked.subject.scope().as_str(),
                            locked.subject.name().escape_debug(),
                            locked.failures,
                            locked.resets_in.as_secs().max(1)
                        );
                    }
                    if !lockout.enabled() {
                        eprintln!("note: lockout.enabled is false in this config: nothing is refused");
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e.to_string()),
            },
            LockoutCommand::Unlock { account, ip, .. } => {
                let subject = match (account, ip) {
                    (Some(account), _) => Subject::Account(account.clone()),
                    (None, Some(ip)) => Subject::Address(address_group(*ip)),
                    (None, None) => return fail("give --account or --ip"),
                };
                match lockouts::unlock(&lockout, &subject, &stored::operator(), "cli").await {
                    Ok(true) => {
                        println!("unlocked {} {}", subject.scope().as_str(), subject.name().escape_debug());
                        ExitCode::SUCCESS
                    }
                    Ok(false) => {
                        println!(
                            "{} {} had no failed logins counted; nothing to unlock",
                            subject.scope().as_str(),
                            subject.name().escape_debug()
                        );
                        ExitCode::SUCCESS
                    }
                    Err(e) => fail(&e.to_string()),
                }
            }
        }
    })
}
