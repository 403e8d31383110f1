//! The OAuth2 fields of a token request (distribution token spec, "OAuth2 Token"):
//! `grant_type`, `refresh_token`, `access_type`, `offline_token`, `client_id`.
//! https://distribution.github.io/distribution/spec/auth/oauth/
use super::error::HttpError;
use super::extract::Form;

/// Longest accepted `client_id` (clients send short fixed names such as `docker`).
const MAX_CLIENT_ID: usize = 256;
/// Longer than any token we issue by far; longer values are refused before any lookup.
const MAX_REFRESH_TOKEN: usize = 512;

/// What the OAuth2 fields ask for.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct OAuthFields {
    pub refresh_token: Option<String>,
    pub offline: bool,
    pub client_id: String,
}

/// Reads the fields; `has_password` says whether Basic or form credentials came too.
/// `refresh_supported` is false without a store: the grant is then refused as before.
pub fn read(form: &Form, has_password: bool, refresh_supported: bool) -> Result<OAuthFields, HttpError> {
    let client_id = form.first("client_id");
    if client_id.len() > MAX_CLIENT_ID {
        return Err(HttpError::InvalidRequest("client_id is too long"));
    }
    let offline = form.first("offline_token") == "true" || form.first("access_type") == "offline";
    let presented = form.first("refresh_token");
    let refresh_token = match form.first("grant_type") {
        "refresh_token" if !refresh_supported => return Err(HttpError::UnsupportedGrantType),
        "refresh_token" if presented.is_empty() => {
            return Err(HttpError::InvalidRequest("grant_type=refresh_token needs a refresh_token"))
        }
        "refresh_token" if has_password => {
            return Err(HttpError::InvalidRequest("send either a password or a refresh token, not both"))
        }
        "refresh_token" if presented.len() > MAX_REFRESH_TOKEN => {
            return Err(HttpError::Auth(crate::service::AuthError::InvalidGrant("malformed refresh token")))
        }
        "refresh_token" => Some(presented.to_string()),
        _ if !presented.is_empty() && refresh_supported => {
            return Err(HttpError::InvalidRequest("a refresh_token needs grant_type=refresh_token"))
        }
        _ => None,
    };
    Ok(OAuthFields { refresh_token, offline, client_id: client_id.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderMap;
    use actix_web::http::Method;

    fn form(query: &str) -> Form {
        Form::parse(&Method::GET, &HeaderMap::new(), query, b"")
    }

    #[test]
    fn refresh_grant_and_offline_flags() {
        let f = read(&form("grant_type=refresh_token&refresh_token=abc&client_id=docker"), false, true).unwrap();
        assert_eq!(f.refresh_token.as_deref(), Some("abc"));
        assert_eq!(f.client_id, "docker");
        assert!(read(&form("offline_token=true"), true, true).unwrap().offline);
        assert!(read(&form("access_type=offline&grant_type=password"), true, true).unwrap().offline);
        assert!(!read(&form("offline_token=1"), true, true).unwrap().offline);
    }

    #[test]
    fn bad_combinations_are_client_errors() {
        let err = |q: &str, pw: bool, sup: bool| read(&form(q), pw, sup).unwrap_err();
        assert!(matches!(
            err("grant_type=refresh_token&refresh_token=x", false, false),
            HttpError::UnsupportedGrantType
        ));
        assert!(matches!(err("grant_type=refresh_token", false, true), HttpError::InvalidRequest(_)));
        assert!(matches!(err("grant_type=refresh_token&refresh_token=x", true, true), HttpError::InvalidRequest(_)));
        assert!(matches!(err("grant_type=password&refresh_token=x", true, true), HttpError::InvalidRequest(_)));
        let long = format!("grant_type=refresh_token&refresh_token={}", "a".repeat(600));
        assert!(matches!(err(&long, false, true), HttpError::Auth(_)));
        assert!(matches!(err(&format!("client_id={}", "c".repeat(300)), false, true), HttpError::InvalidRequest(_)));
    }
}
