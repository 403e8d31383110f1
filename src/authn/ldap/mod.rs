//! `ldap_auth`: bind, search and labels as docker_auth (parity.md §5.3), plus group search,
//! pooled service connections, timeouts and fail-closed errors.
//!
//! Default flow: search the user on a pooled service connection, bind as the found DN on a
//! connection of its own, then build labels (attributes, then the optional group search).
//! With `initial_bind_as_user` everything runs on one connection bound as the user.
use async_trait::async_trait;
use ldap3::{Ldap, Scope, SearchEntry};

use super::{Authenticator, AuthnError, AuthnOutcome, LookupOutcome};
use crate::config::ldap::{GroupSearch, LdapConfig, LdapLabel};
use crate::request::Labels;
use crate::secret::Secret;

mod conn;
pub mod escape;

use conn::{Connector, Pool};
use escape::{dn_value, filter_value, first_cn, substitute};

/// Requests no attributes (RFC 4511 §4.5.1.8) when no label needs one.
const NO_ATTRIBUTES: &str = "1.1";

pub struct LdapAuth {
    connector: Connector,
    pool: Pool,
    bind_dn: Option<String>,
    bind_password: Option<Secret>,
    initial_bind_as_user: bool,
    base: String,
    filter: String,
    labels: Vec<LdapLabel>,
    groups: Option<GroupSearch>,
    /// The attributes the user search asks for.
    attributes: Vec<String>,
}

impl LdapAuth {
    /// Checks the filters and prepares TLS; no connection is made until the first login.
    pub fn new(config: &LdapConfig) -> Result<LdapAuth, String> {
        check_filter("filter", &config.filter)?;
        if let Some(groups) = &config.groups {
            check_filter("group_filter", &groups.filter)?;
        }
        let mut attributes: Vec<String> = config.labels.iter().map(|l| l.attribute.clone()).collect();
        if attributes.is_empty() {
            attributes.push(NO_ATTRIBUTES.to_string());
        }
        Ok(LdapAuth {
            connector: Connector::new(config)?,
            pool: Pool::new(config.pool_size),
            bind_dn: config.bind_dn.clone(),
            bind_password: config.bind_password.clone(),
            initial_bind_as_user: config.initial_bind_as_user,
            base: config.base.clone(),
            filter: config.filter.clone(),
            labels: config.labels.clone(),
            groups: config.groups.clone(),
            attributes,
        })
    }

    fn user_filter(&self, account: &str) -> String {
        substitute(&self.filter, &[("account", &filter_value(account))])
    }

    /// Default flow: service search, user bind on its own connection, labels.
    async fn via_service(&self, account: &str, password: &Secret) -> Result<AuthnOutcome, AuthnError> {
        let entries = self.service_search(&self.base, &self.user_filter(account), &self.attributes).await?;
        let Some(entry) = single(entries)? else { return Ok(AuthnOutcome::NoMatch) };
        let mut user = self.connector.connect().await?;
        let accepted = self.connector.bind(&mut user, &entry.dn, password).await;
        // The user connection is never reused; unbind just closes it politely.
        let _ = user.unbind().await;
        if !accepted? {
            return Ok(AuthnOutcome::Deny);
        }
        let mut labels = self.attribute_labels(&entry);
        if let Some(groups) = &self.groups {
            let filter = group_filter(groups, &entry.dn, account);
            let found = self.service_search(&groups.base, &filter, std::slice::from_ref(&groups.attribute)).await?;
            add_group_values(groups, &found, &mut labels);
        }
        Ok(AuthnOutcome::Allow(labels))
    }

    /// `initial_bind_as_user`: bind with the templated DN, then search and bind as the entry.
    /// The user's entry and groups through the service account, as at login minus the bind.
    async fn lookup_via_service(&self, account: &str) -> Result<LookupOutcome, AuthnError> {
        let entries = self.service_search(&self.base, &self.user_filter(account), &self.attributes).await?;
        let Some(entry) = single(entries)? else { return Ok(LookupOutcome::NotFound) };
        let mut labels = self.attribute_labels(&entry);
        if let Some(groups) = &self.groups {
            let filter = group_filter(groups, &entry.dn, account);
            let found = self.service_search(&groups.base, &filter, std::slice::from_ref(&groups.attribute)).await?;
            add_group_values(groups, &found, &mut labels);
        }
        Ok(LookupOutcome::Found(labels))
    }

    async fn as_user(&self, account: &str, password: &Secret) -> Result<AuthnOutcome, AuthnError> {
        let template = self.bind_dn.as_deref().unwrap_or_default();
        let bind_dn = substitute(template, &[("account", &dn_value(account))]);
        let mut ldap = self.connector.connect().await?;
        let outcome = self.as_user_on(&mut ldap, &bind_dn, account, password).await;
        let _ = ldap.unbind().await;
        outcome
    }

    async fn as_user_on(
        &self,
        ldap: &mut Ldap,
        bind_dn: &str,
        account: &str,
        password: &Secret,
    ) -> Result<AuthnOutcome, AuthnError> {
        if !self.connector.bind(ldap, bind_dn, password).await? {
            return Ok(AuthnOutcome::Deny);
        }
        let entries = self.search(ldap, &self.base, &self.user_filter(account), &self.attributes).await?;
        let Some(entry) = single(entries)? else { return Ok(AuthnOutcome::NoMatch) };
        if !self.connector.bind(ldap, &entry.dn, password).await? {
            return Ok(AuthnOutcome::Deny);
        }
        let mut labels = self.attribute_labels(&entry);
        if let Some(groups) = &self.groups {
            let filter = group_filter(groups, &entry.dn, account);
            let found = self.search(ldap, &groups.base, &filter, std::slice::from_ref(&groups.attribute)).await?;
            add_group_values(groups, &found, &mut labels);
        }
        Ok(AuthnOutcome::Allow(labels))
    }

    /// A search on a pooled service connection. A pooled connection may have died while
    /// idle (directory restarted): then the search is retried once on a fresh one.
    async fn service_search(
        &self,
        base: &str,
        filter: &str,
        attributes: &[String],
    ) -> Result<Vec<SearchEntry>, AuthnError> {
        if let Some(mut ldap) = self.pool.take() {
            match self.search(&mut ldap, base, filter, attributes).await {
                Ok(entries) => {
                    self.pool.put(ldap);
                    return Ok(entries);
                }
                Err(e) => tracing::debug!(error = %e, "pooled LDAP connection failed, retrying on a new one"),
            }
        }
        let mut ldap = self.service_connection().await?;
        let entries = self.search(&mut ldap, base, filter, attributes).await?;
        self.pool.put(ldap);
        Ok(entries)
    }

    /// A new connection bound as `bind_dn`, or anonymous when there is none.
    async fn service_connection(&self) -> Result<Ldap, AuthnError> {
        let mut ldap = self.connector.connect().await?;
        if let (Some(dn), Some(password)) = (&self.bind_dn, &self.bind_password) {
            if !self.connector.bind(&mut ldap, dn, password).await? {
                return Err(AuthnError(format!(
                    "LDAP service bind as {dn:?} on {}: invalid credentials; check bind_dn and bind_password_file",
                    self.connector.url()
                )));
            }
        }
        Ok(ldap)
    }

    /// Subtree search, aliases never dereferenced, no limits (docker_auth's settings).
    async fn search(
        &self,
        ldap: &mut Ldap,
        base: &str,
        filter: &str,
        attributes: &[String],
    ) -> Result<Vec<SearchEntry>, AuthnError> {
        let result = ldap
            .with_timeout(self.connector.operation_timeout)
            .search(base, Scope::Subtree, filter, attributes.to_vec())
            .await
            .and_then(|result| result.success());
        let (entries, _) = result.map_err(|e| {
            AuthnError(format!("LDAP search in {base:?} for {filter:?} on {} failed: {e}", self.connector.url()))
        })?;
        Ok(entries.into_iter().map(SearchEntry::construct).collect())
    }

    fn attribute_labels(&self, entry: &SearchEntry) -> Labels {
        let mut labels = Labels::new();
        for label in &self.labels {
            let values: Vec<String> = attribute_values(entry, &label.attribute)
                .map(|value| {
                    let value = if label.parse_cn { first_cn(value) } else { value.to_string() };
                    if label.lower_case {
                        value.to_lowercase()
                    } else {
                        value
                    }
                })
                .collect();
            // docker_auth omits a label without values.
            if !values.is_empty() {
                labels.entry(label.name.clone()).or_default().extend(values);
            }
        }
        labels
    }
}

#[async_trait]
impl Authenticator for LdapAuth {
    fn name(&self) -> &'static str {
        "ldap"
    }

    /// Ready when a service connection can be opened (and bound, with `bind_dn`); the
    /// connection then joins the pool.
    async fn ready(&self) -> Result<(), AuthnError> {
        let ldap = self.service_connection().await?;
        self.pool.put(ldap);
        Ok(())
    }

    async fn authenticate(&self, account: &str, password: &Secret) -> Result<AuthnOutcome, AuthnError> {
        // An empty password would be an unauthenticated bind, which servers accept.
        if account.is_empty() || password.is_empty() {
            return Ok(AuthnOutcome::NoMatch);
        }
        if self.initial_bind_as_user {
            self.as_user(account, password).await
        } else {
            self.via_service(account, password).await
        }
    }

    fn can_lookup(&self) -> bool {
        !self.initial_bind_as_user
    }

    /// Searched with the service account (or anonymously, as at login). With
    /// `initial_bind_as_user` there is no way to search without the user's password.
    async fn lookup(&self, account: &str) -> Result<LookupOutcome, AuthnError> {
        if self.initial_bind_as_user {
            return Ok(LookupOutcome::Unsupported);
        }
        if account.is_empty() {
            return Ok(LookupOutcome::NotFound);
        }
        self.lookup_via_service(account).await
    }
}

fn check_filter(key: &str, filter: &str) -> Result<(), String> {
    let sample = substitute(filter, &[("account", "x"), ("dn", "cn=x")]);
    ldap3::parse_filter(&sample)
        .map(|_| ())
        .map_err(|_| format!("ldap_auth.{key} is not a valid LDAP filter: {filter}"))
}

/// 0 entries: no such user; 1: the user; more: the filter is ambiguous, an error.
fn single(mut entries: Vec<SearchEntry>) -> Result<Option<SearchEntry>, AuthnError> {
    match entries.len() {
        0 => Ok(None),
        1 => Ok(entries.pop()),
        n => Err(AuthnError(format!("Too many entries returned. ({n} entries match the LDAP filter)"))),
    }
}

/// Attribute names are case-insensitive in LDAP; servers answer in the schema's spelling.
fn attribute_values<'a>(entry: &'a SearchEntry, attribute: &'a str) -> impl Iterator<Item = &'a String> {
    entry.attrs.iter().filter(move |(name, _)| name.eq_ignore_ascii_case(attribute)).flat_map(|(_, values)| values)
}

fn group_filter(groups: &GroupSearch, dn: &str, account: &str) -> String {
    substitute(&groups.filter, &[("dn", &filter_value(dn)), ("account", &filter_value(account))])
}

fn add_group_values(groups: &GroupSearch, found: &[SearchEntry], labels: &mut Labels) {
    let values = labels.entry(groups.label.clone()).or_default();
    for value in found.iter().flat_map(|entry| attribute_values(entry, &groups.attribute)) {
        if !values.contains(value) {
            values.push(value.clone());
        }
    }
    if values.is_empty() {
        labels.remove(&groups.label);
    }
}
