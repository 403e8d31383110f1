//! Hourly log warning while the signing certificate is within
//! [`lint::EXPIRY_WARNING_DAYS`] of its expiry, or past it: with `x5c` the registry checks
//! the certificate's dates and refuses every token once it has expired. Reads the running
//! state each time, so a reload with a renewed certificate silences it.
use std::sync::Arc;
use std::time::Duration;

use crate::http::StateHandle;
use crate::lint;

/// How often the warning repeats.
pub const PERIOD: Duration = Duration::from_secs(3600);

/// Checks now and then every `period` until the runtime stops. Call inside the runtime.
pub fn spawn(handle: Arc<StateHandle>, period: Duration) {
    let not_after = move || handle.current().service.issuer.key().not_after_unix();
    actix_web::rt::spawn(watch(period, not_after, |not_after, message| {
        tracing::warn!(event = "signing_certificate_expiry", not_after, "{message}");
    }));
}

/// Reads the expiry at once and then every `period`, reporting each warning; never ends.
async fn watch(period: Duration, not_after: impl Fn() -> i64, mut report: impl FnMut(i64, String)) {
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let not_after = not_after();
        if let Some(message) = warning(not_after, time::OffsetDateTime::now_utc().unix_timestamp()) {
            report(not_after, message);
        }
    }
}

/// The warning for a certificate valid until `not_after`, seen at `now` (Unix seconds),
/// or None while it has more than the warning window left.
pub fn warning(not_after: i64, now: i64) -> Option<String> {
    let left = not_after - now;
    if left >= lint::EXPIRY_WARNING_DAYS * 86_400 {
        return None;
    }
    let until = time::OffsetDateTime::from_unix_timestamp(not_after)
        .map_or_else(|_| not_after.to_string(), |t| t.date().to_string());
    let state = if left < 0 {
        format!("expired on {until}: registries that check it (token.x5c) refuse every token")
    } else {
        format!("expires on {until} (in {} days, {} hours)", left / 86_400, left % 86_400 / 3600)
    };
    Some(format!("the token signing certificate {state}; rotate the key (README: Key rotation) before then"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The warning repeats every period (here 20 ms instead of an hour); none while far away.
    #[actix_web::test]
    async fn repeats_every_period() {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut seen = Vec::new();
        let period = Duration::from_millis(20);
        let bounded = tokio::time::timeout(
            Duration::from_millis(300),
            watch(period, || now + 30 * 3600 + 1800, |_, m| seen.push(m)),
        );
        assert!(bounded.await.is_err(), "the watch never ends by itself");
        assert!(seen.len() >= 2 && seen[0].contains("in 1 days, 6 hours"), "{seen:?}");
        let mut quiet = Vec::new();
        let far = now + 365 * 86_400;
        let _ = tokio::time::timeout(Duration::from_millis(100), watch(period, || far, |_, m| quiet.push(m))).await;
        assert!(quiet.is_empty(), "{quiet:?}");
    }

    #[test]
    fn warns_only_within_thirty_days_and_after_expiry() {
        let day = 86_400;
        let now = 1_800_000_000;
        assert_eq!(warning(now + 30 * day, now), None);
        let soon = warning(now + 29 * day + 3600, now).unwrap();
        assert!(soon.contains("in 29 days, 1 hours"), "{soon}");
        let past = warning(now - 1, now).unwrap();
        assert!(past.contains("expired on") && past.contains("refuse every token"), "{past}");
    }
}
