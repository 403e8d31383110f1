//! `deploy/`: the compose file's registry environment, given to the real registry 2.8.2 and
//! 3.1.1 (the compose file's `registry:2` / `registry:3` switch), accepts the tokens of the
//! shipped config signed with a `gen-cert` pair in a skopeo push and pull; the backup and restore scripts
//! round-trip a real registry's data and the restored registry serves the image.
use std::path::Path;
use std::process::Command;

use yaml_rust2::{Yaml, YamlLoader};

use crate::auth_server::AuthServer;
use crate::support::oci::{read_oci_image, write_oci_layout};
use crate::support::registry::{Registry, Version};
use crate::support::skopeo::{docker_ref, Creds, Skopeo};
use crate::support::temp_dir;

const DEPLOY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy");

/// `services.registry.environment` of the compose file, as (name, value) pairs.
fn compose_registry_env() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(format!("{DEPLOY}/docker-compose.yml")).unwrap();
    let docs = YamlLoader::load_from_str(&text).unwrap();
    let services = &docs[0]["services"];
    assert!(matches!(services["auth"]["volumes"], Yaml::Array(_)), "auth service mounts config and ssl");
    let volumes: Vec<&str> =
        services["registry"]["volumes"].as_vec().unwrap().iter().filter_map(Yaml::as_str).collect();
    assert!(volumes.contains(&"registry-data:/var/lib/registry"), "{volumes:?}");
    assert!(!docs[0]["volumes"]["registry-data"].is_badvalue(), "a named volume for the data");
    let image = services["registry"]["image"].as_str().unwrap();
    assert_eq!(image, "${REGISTRY_IMAGE:-registry:3}", "registry:3 by default, REGISTRY_IMAGE=registry:2 switches");
    let env = services["registry"]["environment"].as_vec().expect("environment is a list");
    env.iter()
        .map(|item| {
            let (k, v) = item.as_str().unwrap().split_once('=').unwrap();
            assert!(!v.contains('"') && !v.contains('\''), "no quotes inside values: {k}={v}");
            (k.to_string(), v.to_string())
        })
        .collect()
}

#[test]
fn compose_registry_environment_accepts_our_tokens_end_to_end_on_registry_2_and_3() {
    let env = compose_registry_env();
    let get =
        |k: &str| env.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone()).unwrap_or_else(|| panic!("{k} missing"));
    assert_eq!(get("REGISTRY_AUTH"), "token");
    assert_eq!(get("REGISTRY_AUTH_TOKEN_ROOTCERTBUNDLE"), "/ssl/server.pem", "the mounted ./ssl");
    assert_eq!(get("OTEL_TRACES_EXPORTER"), "none", "registry 3.x would export traces to localhost:4318");
    let realm = get("REGISTRY_AUTH_TOKEN_REALM");
    assert_eq!(realm, "https://localhost:5001/auth", "reachable from the client, on the published port");

    // The pair made as the compose file's header says, and gen-cert's printed settings.
    let ssl = temp_dir("compose-ssl");
    let (cert, key) = (ssl.path().join("server.pem"), ssl.path().join("server.key"));
    let out = Command::new(crate::auth_server::binary())
        .args(["gen-cert", "--san", "auth", "--san", "localhost", "--san", "127.0.0.1", "--cert"])
        .arg(&cert)
        .arg("--key")
        .arg(&key)
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && printed.contains("  x5c: true\n"), "{printed}");
    assert!(printed.contains(&format!("REGISTRY_AUTH_TOKEN_ROOTCERTBUNDLE={}", cert.display())), "{printed}");

    // The shipped auth config, with the compose paths pointed at the generated pair.
    let shipped = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/auth_config.yml")).unwrap();
    assert!(shipped.contains(&format!("issuer: \"{}\"", get("REGISTRY_AUTH_TOKEN_ISSUER"))), "issuer matches");
    assert!(shipped.contains("\n  x5c: true\n"), "the shipped config serves registry 2 and 3");
    let yaml = shipped
        .replace("\":5001\"", "\"@ADDR@\"")
        .replace("ssl/server.pem", &cert.display().to_string())
        .replace("ssl/server.key", &key.display().to_string());
    let data = temp_dir("compose-data");
    let yaml = yaml.replace("path: \"data\"", &format!("path: \"{}\"", data.path().join("data").display()));
    assert!(yaml.contains("@ADDR@") && yaml.contains("compose-data"));
    let auth = AuthServer::start(&yaml, true, &["serve"]);

    // Only the container-specific parts change: where the client reaches the realm and the
    // path of the mounted certificate. Every other variable is passed exactly as written.
    let env: Vec<(String, String)> = env
        .into_iter()
        .map(|(k, v)| match k.as_str() {
            "REGISTRY_AUTH_TOKEN_REALM" => (k, auth.realm()),
            "REGISTRY_AUTH_TOKEN_ROOTCERTBUNDLE" => (k, cert.display().to_string()),
            _ => (k, v),
        })
        .collect();
    let images = temp_dir("compose-images");
    let image = write_oci_layout(&images.path().join("layout"), "v1", &[("compose.txt", b"from the compose setup")]);
    for version in [Version::V2_8_2, Version::V3_1_1] {
        let registry = Registry::start_version_with_env(version, env.clone());
        let skopeo = Skopeo::with_shared_cache();
        let target = docker_ref(&registry.addr(), "team/app", "v1");
        skopeo
            .copy(&image.oci_ref(), &target, Creds::Anonymous, Creds::Basic("admin", "badmin"))
            .unwrap_or_else(|e| panic!("push to {}: {e}\n{}", version.tag(), registry.log()));
        let pulled = images.path().join(format!("pulled-{}", version.tag()));
        skopeo
            .copy(&target, &format!("oci:{}:v1", pulled.display()), Creds::Basic("admin", "badmin"), Creds::Anonymous)
            .unwrap();
        assert_eq!(read_oci_image(&pulled, "v1").1, vec![image.layer_digest.clone()]);
        let wrong = skopeo.copy(
            &image.oci_ref(),
            &docker_ref(&registry.addr(), "team/other", "v1"),
            Creds::Anonymous,
            Creds::Basic("admin", "wrong"),
        );
        assert!(wrong.is_err(), "the registry {} must demand a valid token", version.tag());
    }
}

fn script(name: &str, args: &[&Path]) -> std::process::Output {
    Command::new("bash").arg(format!("{DEPLOY}/{name}")).args(args).output().unwrap()
}

#[test]
fn backup_and_restore_round_trip_a_real_registry() {
    let registry = Registry::start_without_auth();
    let images = temp_dir("backup-images");
    let image = write_oci_layout(&images.path().join("layout"), "v1", &[("backup.txt", b"keep me safe")]);
    let skopeo = Skopeo::with_shared_cache();
    skopeo
        .copy(&image.oci_ref(), &docker_ref(&registry.addr(), "saved/app", "v1"), Creds::Anonymous, Creds::Anonymous)
        .unwrap();

    let work = temp_dir("backup");
    let archive = work.path().join("backups/registry.tar.gz");
    let out = script("backup.sh", &[&archive, &registry.data_dir()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listing = std::fs::read_to_string(work.path().join("backups/registry.tar.gz.sha256")).unwrap();
    assert!(listing.lines().count() >= 3 && listing.contains("./docker/registry/v2/"), "{listing}");
    let again = script("backup.sh", &[&archive, &registry.data_dir()]);
    assert_eq!(again.status.code(), Some(1), "never overwrites a backup");
    drop(registry);

    let restored = work.path().join("restored");
    let out = script("restore.sh", &[&archive, &restored]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("all checksums match"));
    let registry = Registry::start_without_auth_on(&restored);
    let pulled = images.path().join("pulled");
    skopeo
        .copy(
            &docker_ref(&registry.addr(), "saved/app", "v1"),
            &format!("oci:{}:v1", pulled.display()),
            Creds::Anonymous,
            Creds::Anonymous,
        )
        .unwrap_or_else(|e| panic!("pull from the restored registry: {e}\n{}", registry.log()));
    assert_eq!(read_oci_image(&pulled, "v1").1, vec![image.layer_digest.clone()]);

    // A damaged listing (or archive) makes the restore fail, and a non-empty target is refused.
    let refused = script("restore.sh", &[&archive, &restored]);
    assert_eq!(refused.status.code(), Some(1));
    let tampered = listing.replacen(&listing[..8], "00000000", 1);
    std::fs::write(work.path().join("backups/registry.tar.gz.sha256"), tampered).unwrap();
    let out = script("restore.sh", &[&archive, &work.path().join("restored-2")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("do not match"), "{}", String::from_utf8_lossy(&out.stderr));
}

/// The systemd unit passes `systemd-analyze verify` (with the binary path pointed at ours)
/// and its sandboxing keeps the exposure score low.
#[test]
fn systemd_unit_verifies_and_is_sandboxed() {
    let analyze = crate::support::process::require_program("systemd-analyze");
    let dir = temp_dir("systemd");
    let unit = std::fs::read_to_string(format!("{DEPLOY}/registry-auth.service")).unwrap();
    assert!(
        unit.contains("ExecReload=/bin/kill -HUP $MAINPID")
            && unit.contains("ExecStartPre=/usr/local/bin/registry-auth check-config")
    );
    let binary = crate::auth_server::binary();
    let path = dir.path().join("registry-auth.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/registry-auth", &binary.display().to_string())).unwrap();
    let verify = Command::new(&analyze).arg("verify").arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&verify.stderr);
    assert!(verify.status.success() && stderr.trim().is_empty(), "systemd-analyze verify:\n{stderr}");
    let security =
        Command::new(&analyze).args(["security", "--offline=true", "--threshold=20"]).arg(&path).output().unwrap();
    let report = String::from_utf8_lossy(&security.stdout);
    assert!(security.status.success(), "exposure above 2.0:\n{report}{}", String::from_utf8_lossy(&security.stderr));
    assert!(report.contains("Overall exposure level for registry-auth.service: 1."), "{report}");
}

/// `docker-compose.replicas.yml`: two replicas with one config on one Redis behind one
/// address. The config it mounts, given to two real replicas on a real redis-server with
/// a password, serves tokens at both, and both see the same failed-login counts.
#[test]
fn compose_replicas_share_one_redis() {
    let text = std::fs::read_to_string(format!("{DEPLOY}/docker-compose.replicas.yml")).unwrap();
    let docs = YamlLoader::load_from_str(&text).unwrap();
    let services = &docs[0]["services"];
    assert_eq!(services["auth-1"]["volumes"], services["auth-2"]["volumes"], "one config for both replicas");
    let volumes: Vec<&str> = services["auth-1"]["volumes"].as_vec().unwrap().iter().filter_map(Yaml::as_str).collect();
    assert!(volumes.contains(&"./replicas:/config:ro"), "{volumes:?}");
    let redis_command = format!("{:?}", services["redis"]["command"]);
    assert!(redis_command.contains("--appendfsync always") && redis_command.contains("--requirepass"));
    assert!(!services["auth"]["ports"].is_badvalue() && services["auth-1"]["ports"].is_badvalue());

    let redis = crate::support::redis::RedisServer::start_with(crate::support::redis::RedisOptions {
        password: Some("compose-pw".into()),
        ..Default::default()
    });
    let secrets = temp_dir("compose-replicas");
    let password_file = secrets.path().join("redis-password");
    std::fs::write(&password_file, "compose-pw\n").unwrap();
    let keys = crate::common::Keys::new(crate::common::KeyKind::EcP256);
    let shipped = std::fs::read_to_string(format!("{DEPLOY}/replicas/auth_config.yml")).unwrap();
    assert!(shipped.contains("addr: \"redis:6379\"") && shipped.contains("/config/redis-password"));
    let yaml = shipped
        .replace("\":5001\"", "\"@ADDR@\"")
        .replace("redis:6379", &redis.addr())
        .replace("/config/redis-password", &password_file.display().to_string())
        .replace("ssl/server.pem", &keys.cert.display().to_string())
        .replace("ssl/server.key", &keys.key.display().to_string());
    let replicas = [AuthServer::start(&yaml, true, &["serve"]), AuthServer::start(&yaml, true, &["serve"])];
    let client = AuthServer::client(&keys.cert);
    for replica in &replicas {
        let ready = client.get(&format!("https://{}/readyz", replica.addr)).call().unwrap();
        assert_eq!(ready.status(), 200);
    }
    let login = |replica: &AuthServer, password: &str| {
        let (name, value) = crate::common::basic("admin", password);
        match client.get(&replica.realm()).query("service", "Docker registry").set(&name, &value).call() {
            Ok(r) => r.status(),
            Err(ureq::Error::Status(code, _)) => code,
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(login(&replicas[0], "badmin"), 200);
    assert_eq!(login(&replicas[1], "badmin"), 200);
    // The default limit (100 failures per address) reached half at each replica.
    for i in 0..100 {
        assert_eq!(login(&replicas[i % 2], "wrong"), 401);
    }
    assert_eq!(login(&replicas[0], "badmin"), 429);
    assert_eq!(login(&replicas[1], "badmin"), 429);
}
