//! The text of the audit line's list fields (`requested`, `granted`, `rules`, `ip`) as
//! `Display` values: formatted straight into the log line when the event is written,
//! instead of building and joining a `String` per scope first (issue 16: the audit line
//! was 8 % of an anonymous ES256 token's instructions).
use std::fmt;
use std::net::IpAddr;

use crate::authz::ScopeDecision;
use crate::request::{AccessEntry, Scope};

/// The client address, or nothing when there is none (a unix-socket peer).
pub(crate) struct IpText(pub Option<IpAddr>);

impl fmt::Display for IpText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(ip) => write!(f, "{ip}"),
            None => Ok(()),
        }
    }
}

/// One requested scope: `type[(class)]:name:action,action`.
pub(crate) struct ScopeText<'a>(pub &'a Scope);

impl fmt::Display for ScopeText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scope = self.0;
        f.write_str(&scope.resource_type)?;
        if let Some(class) = &scope.class {
            write!(f, "({class})")?;
        }
        write!(f, ":{}:", scope.name)?;
        comma_separated(f, &scope.actions)
    }
}

/// Every requested scope, space-separated.
pub(crate) struct ScopesText<'a>(pub &'a [Scope]);

impl fmt::Display for ScopesText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, scope) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{}", ScopeText(scope))?;
        }
        Ok(())
    }
}

/// What was granted, one `type:name:actions` per scope, space-separated.
pub(crate) struct GrantedText<'a>(pub &'a [AccessEntry]);

impl fmt::Display for GrantedText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, entry) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{}:{}:", entry.resource_type, entry.name)?;
            comma_separated(f, &entry.actions)?;
        }
        Ok(())
    }
}

/// Which rule decided each scope: `backend[index]("comment")`, `backend`, or `default-deny`.
pub(crate) struct RulesText<'a>(pub &'a [ScopeDecision]);

impl fmt::Display for RulesText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, decision) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            match &decision.decided_by {
                Some((_, backend, Some(rule))) => {
                    write!(f, "{backend}[{}]", rule.index)?;
                    if let Some(comment) = &rule.comment {
                        write!(f, "({comment:?})")?;
                    }
                }
                Some((_, backend, None)) => f.write_str(backend)?,
                None => f.write_str("default-deny")?,
            }
        }
        Ok(())
    }
}

fn comma_separated(f: &mut fmt::Formatter<'_>, items: &[String]) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(",")?;
        }
        f.write_str(item)?;
    }
    Ok(())
}
