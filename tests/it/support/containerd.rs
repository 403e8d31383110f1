//! A private `containerd` (Debian 1.6) for `ctr`: its own root, state and socket in a temp
//! dir, the `native` snapshotter (no overlayfs needed), the CRI plugin off.
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use super::ports::Probe;
use super::process::{require_program, ChildGuard};
use super::temp_dir;

pub struct Containerd {
    process: ChildGuard,
    dir: TempDir,
    ctr: PathBuf,
}

impl Containerd {
    pub fn start() -> Containerd {
        let daemon = require_program("containerd");
        let ctr = require_program("ctr");
        let dir = temp_dir("containerd");
        let d = dir.path().display();
        let config = format!(
            r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "{d}/containerd.sock"
[ttrpc]
  address = "{d}/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"
"#
        );
        let config_path = dir.path().join("config.toml");
        std::fs::write(&config_path, config).unwrap();
        let mut command = Command::new(daemon);
        command.arg("--config").arg(&config_path);
        let mut process = ChildGuard::spawn("containerd", command, dir.path());
        let socket = dir.path().join("containerd.sock");
        process
            .wait_ready("ctr version answers", Duration::from_secs(20), || {
                let out = Command::new(&ctr).arg("--address").arg(&socket).arg("version").output();
                match out {
                    Ok(o) if o.status.success() => Probe::Ready(()),
                    Ok(o) => Probe::NotYet(String::from_utf8_lossy(&o.stderr).into_owned()),
                    Err(e) => Probe::NotYet(e.to_string()),
                }
            })
            .unwrap_or_else(|e| panic!("{e}"));
        Containerd { process, dir, ctr }
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("containerd.sock")
    }

    /// `ctr -n test <args>`: Ok(stdout) or Err(stderr + stdout).
    pub fn ctr(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new(&self.ctr)
            .arg("--address")
            .arg(self.socket())
            .args(["--namespace", "test"])
            .args(args)
            .env("CONTAINERD_SNAPSHOTTER", "native")
            .output()
            .unwrap_or_else(|e| panic!("cannot run ctr: {e}"));
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        if out.status.success() {
            Ok(text(&out.stdout))
        } else {
            Err(format!("{}{}", text(&out.stderr), text(&out.stdout)))
        }
    }

    pub fn log(&self) -> String {
        self.process.log()
    }
}
