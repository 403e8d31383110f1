//! The listener's certificate, swapped in place when a new one arrives (no restart), and the
//! TLS-ALPN-01 challenge certificate (RFC 8737), shown only to a client that offers nothing
//! but the `acme-tls/1` protocol for our host.
use std::sync::{Arc, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

#[derive(Debug, Default)]
pub struct AcmeResolver {
    current: RwLock<Option<Arc<CertifiedKey>>>,
    challenge: RwLock<Option<(String, Arc<CertifiedKey>)>>,
}

impl AcmeResolver {
    pub fn set_certificate(&self, certified: Arc<CertifiedKey>) {
        *write(&self.current) = Some(certified);
    }

    pub fn set_challenge(&self, host: &str, certified: Arc<CertifiedKey>) {
        *write(&self.challenge) = Some((host.to_string(), certified));
    }

    pub fn clear_challenge(&self) {
        *write(&self.challenge) = None;
    }
}

impl ResolvesServerCert for AcmeResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let only_acme = hello
            .alpn()
            .is_some_and(|mut protocols| protocols.next() == Some(ACME_TLS_ALPN) && protocols.next().is_none());
        if only_acme {
            let challenge = read(&self.challenge);
            let (host, certified) = challenge.as_ref()?;
            return (hello.server_name() == Some(host.as_str())).then(|| certified.clone());
        }
        // None until the first certificate arrives: the handshake fails with an alert.
        read(&self.current).clone()
    }
}

fn read<T: Clone>(lock: &RwLock<T>) -> T {
    match lock.read() {
        Ok(guard) => guard.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    }
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|poisoned| poisoned.into_inner())
}
