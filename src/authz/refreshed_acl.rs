//! An ACL read from a database, shared by `acl_mongo` and `acl_xorm`: loaded once at start
//! (the caller fails the start if that fails), then re-read every `cache_ttl` on the driver
//! runtime. A refresh that fails or holds an invalid entry keeps the previous ACL, so a
//! half-read or half-valid table never grants anything.
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::task::JoinHandle;

use super::acl::Acl;

pub struct RefreshedAcl {
    current: Arc<RwLock<Arc<Acl>>>,
    /// Stopped when this config is replaced (reload) or dropped.
    refresher: JoinHandle<()>,
}

impl Drop for RefreshedAcl {
    fn drop(&mut self) {
        self.refresher.abort();
    }
}

impl RefreshedAcl {
    /// Serves `first` and replaces it with what `load` returns every `ttl`. `backend` and
    /// `source` name the ACL in the log.
    pub fn start<L, F>(
        backend: &'static str,
        source: String,
        first: Acl,
        ttl: Duration,
        load: L,
    ) -> Result<Self, String>
    where
        L: Fn() -> F + Send + 'static,
        F: Future<Output = Result<Acl, String>> + Send + 'static,
    {
        let current = Arc::new(RwLock::new(Arc::new(first)));
        let target = current.clone();
        let refresher = crate::driver_runtime::runtime()?.spawn(async move {
            let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + ttl, ttl);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                match load().await {
                    Ok(acl) => {
                        tracing::debug!(entries = acl.len(), source = %source, "{backend} refreshed");
                        match target.write() {
                            Ok(mut guard) => *guard = Arc::new(acl),
                            Err(poisoned) => *poisoned.into_inner() = Arc::new(acl),
                        }
                    }
                    Err(e) => {
                        tracing::error!(source = %source, error = %e, "{backend} refresh failed; keeping the previous ACL")
                    }
                }
            }
        });
        Ok(RefreshedAcl { current, refresher })
    }

    /// The ACL in force now.
    pub fn snapshot(&self) -> Arc<Acl> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}
