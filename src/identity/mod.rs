//! Who the caller is, beyond the authentication backends: features written against the
//! store (`crate::store`) and called from `crate::service`. Nothing here knows HTTP.
pub mod lockout;
