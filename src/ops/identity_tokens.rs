//! `registry-auth identity-tokens list|revoke`: the refresh tokens `docker login` stored.
//! Revocation deletes the record; every replica refuses the token on its next request.
use std::process::ExitCode;

use super::stored::{self, fail, time_text};
use crate::cli::IdentityTokensCommand;
use crate::identity::identity_token::{IdentityTokens, Selector};

pub fn run(command: &IdentityTokensCommand) -> ExitCode {
    let (IdentityTokensCommand::List { store, .. } | IdentityTokensCommand::Revoke { store, .. }) = command;
    stored::with_store(&store.config, |records, hasher, lifetimes| async move {
        let tokens = IdentityTokens::new(records, hasher, lifetimes);
        match command {
            IdentityTokensCommand::List { account, .. } => match tokens.list(account.as_deref()).await {
                Ok(list) => {
                    println!(
                        "{:<16} {:<24} {:<18} {:<21} {:<21} EXPIRES",
                        "ID", "ACCOUNT", "CLIENT", "CREATED", "LAST USED"
                    );
                    for t in list.iter().map(|l| &l.info) {
                        println!(
                            "{:<16} {:<24} {:<18} {:<21} {:<21} {}",
                            t.id,
                            t.record.account.escape_debug(),
                            t.record.client_id.escape_debug(),
                            time_text(t.record.created),
                            t.last_used.map_or("never".to_string(), time_text),
                            time_text(t.record.expires)
                        );
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e.to_string()),
            },
            IdentityTokensCommand::Revoke { id, account, .. } => {
                let selector = match (id, account) {
                    (Some(id), _) if id.len() < 8 => return fail("give at least 8 characters of the id"),
                    (Some(id), _) => Selector::Id(id.clone()),
                    (None, Some(account)) => Selector::Account(account.clone()),
                    (None, None) => return fail("give an id or --account"),
                };
                match tokens.revoke(&selector, &stored::operator(), "cli").await {
                    Ok(revoked) if revoked.is_empty() => fail("no identity token matches"),
                    Ok(revoked) => {
                        for t in &revoked {
                            println!("revoked {} ({})", t.id, t.record.account.escape_debug());
                        }
                        ExitCode::SUCCESS
                    }
                    Err(e) => fail(&e.to_string()),
                }
            }
        }
    })
}
