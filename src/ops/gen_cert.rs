//! `registry-auth gen-cert`: a self-signed pair plus the registry settings that go with it.
use std::process::ExitCode;

use crate::certgen::{self, CertSpec, KeyType};
use crate::cli::{GenCertArgs, KeyTypeArg};

/// Names used when no `--san` is given: the local host and the compose service name.
const DEFAULT_NAMES: [&str; 4] = ["localhost", "127.0.0.1", "::1", "registry-auth"];

pub fn run(args: &GenCertArgs) -> ExitCode {
    let names = if args.sans.is_empty() { DEFAULT_NAMES.map(String::from).to_vec() } else { args.sans.clone() };
    let spec = CertSpec { key_type: key_type(args.key_type), names, days: args.days };
    let written =
        certgen::generate(&spec).and_then(|g| certgen::write_pair(&g, &args.cert, &args.key, args.force).map(|()| g));
    match written {
        Ok(generated) => {
            print!("{}", summary(args, &spec, generated.not_after));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn key_type(arg: KeyTypeArg) -> KeyType {
    match arg {
        KeyTypeArg::EcP256 => KeyType::EcP256,
        KeyTypeArg::EcP384 => KeyType::EcP384,
        KeyTypeArg::Rsa2048 => KeyType::Rsa2048,
        KeyTypeArg::Rsa4096 => KeyType::Rsa4096,
    }
}

/// What was written and the matching settings for both sides.
fn summary(args: &GenCertArgs, spec: &CertSpec, not_after: time::OffsetDateTime) -> String {
    let until = not_after.date();
    let cert = args.cert.display();
    let key = args.key.display();
    format!(
        "Wrote {cert} (certificate) and {key} (private key, mode 0600)\n\
         Names: {names}\n\
         Valid until {until} ({days} days). Renew before then: a registry that checks the dates rejects tokens signed with an expired certificate.\n\
         \n\
         # auth_config.yml (x5c: registry 2.8 and 3.x both verify the certificate in the token)\n\
         token:\n  issuer: \"{issuer}\"\n  certificate: \"{cert}\"\n  key: \"{key}\"\n  x5c: true\n\
         \n\
         # registry config.yml (copy {cert} to the registry host)\n\
         auth:\n  token:\n    realm: \"{realm}\"\n    service: \"{service}\"\n    issuer: \"{issuer}\"\n    rootcertbundle: \"{cert}\"\n\
         \n\
         # or as registry environment variables (no quotes inside the values)\n\
         REGISTRY_AUTH=token\nREGISTRY_AUTH_TOKEN_REALM={realm}\nREGISTRY_AUTH_TOKEN_SERVICE={service}\nREGISTRY_AUTH_TOKEN_ISSUER={issuer}\nREGISTRY_AUTH_TOKEN_ROOTCERTBUNDLE={cert}\n\
         \n\
         # Replacing a signing key later: README, \"Key rotation\" (token.verification_certificates, `registry-auth bundle`).\n",
        names = spec.names.join(", "),
        days = spec.days,
        issuer = args.issuer,
        service = args.service,
        realm = args.realm,
    )
}
