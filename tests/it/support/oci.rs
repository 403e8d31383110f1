//! Small, valid OCI image layouts written without any container engine.
//!
//! The layer tar and its gzip stream are deterministic (fixed mtimes,
//! owners and modes), so the same files always give the same layer digest:
//! two images can share a layer, or differ by choosing different content.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use flate2::{Compression, GzBuilder};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// One image (one tag) in an OCI layout directory.
#[derive(Clone, Debug)]
pub struct OciImage {
    pub layout_dir: PathBuf,
    pub tag: String,
    /// "sha256:<hex>" of the manifest bytes, as a registry reports it.
    pub manifest_digest: String,
    /// "sha256:<hex>" of the compressed layer blob.
    pub layer_digest: String,
    pub config_digest: String,
}

impl OciImage {
    /// The skopeo/containers-image reference "oci:<dir>:<tag>".
    pub fn oci_ref(&self) -> String {
        oci_ref(&self.layout_dir, &self.tag)
    }
}

/// "oci:<dir>:<tag>"
pub fn oci_ref(layout_dir: &Path, tag: &str) -> String {
    format!("oci:{}:{tag}", layout_dir.display())
}

/// "sha256:<hex>" of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    let hex: String = Sha256::digest(bytes).iter().map(|byte| format!("{byte:02x}")).collect();
    format!("sha256:{hex}")
}

/// Writes an image whose single layer holds `files` (relative path, content) into the
/// OCI layout at `dir` (created if needed) and tags it `tag` in index.json.
/// Other tags already in the layout are kept; a previous `tag` is replaced.
pub fn write_oci_layout(dir: &Path, tag: &str, files: &[(&str, &[u8])]) -> OciImage {
    create_layout(dir);
    let image = write_image(dir, files, |diff_id| {
        json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": { "type": "layers", "diff_ids": [diff_id] },
        })
    });
    tag_in_layout(dir, tag, image.descriptor);
    OciImage {
        layout_dir: dir.to_path_buf(),
        tag: tag.to_owned(),
        manifest_digest: image.manifest_digest,
        layer_digest: image.layer_digest,
        config_digest: image.config_digest,
    }
}

/// The blobs of one single-layer image, written by [`write_image`].
struct WrittenImage {
    /// The manifest's descriptor, for an index.
    descriptor: Value,
    manifest_digest: String,
    layer_digest: String,
    config_digest: String,
}

/// Writes the layer of `files`, the config `config(diff_id)` makes, and the manifest of both.
fn write_image(dir: &Path, files: &[(&str, &[u8])], config: impl FnOnce(&str) -> Value) -> WrittenImage {
    let tar = layer_tar(files);
    let layer = gzip(&tar);
    let layer_digest = write_blob(dir, &layer);
    let config_bytes = to_json_bytes(&config(&sha256_digest(&tar)));
    let config_digest = write_blob(dir, &config_bytes);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": descriptor(CONFIG_MEDIA_TYPE, &config_digest, config_bytes.len()),
        "layers": [descriptor(LAYER_MEDIA_TYPE, &layer_digest, layer.len())],
    });
    let manifest_bytes = to_json_bytes(&manifest);
    let manifest_digest = write_blob(dir, &manifest_bytes);
    let descriptor = descriptor(MANIFEST_MEDIA_TYPE, &manifest_digest, manifest_bytes.len());
    WrittenImage { descriptor, manifest_digest, layer_digest, config_digest }
}

/// The layout's directories and `oci-layout` file.
fn create_layout(dir: &Path) {
    fs::create_dir_all(dir.join("blobs/sha256"))
        .unwrap_or_else(|e| panic!("cannot create OCI layout in {}: {e}", dir.display()));
    write_file(&dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#);
}

/// Tags `entry` (a manifest or index descriptor) `tag` in the layout's index.json,
/// replacing a previous `tag` and keeping the other tags.
fn tag_in_layout(dir: &Path, tag: &str, mut entry: Value) {
    entry["annotations"] = json!({ REF_NAME: tag });
    let mut entries = read_index(dir);
    entries.retain(|existing| existing["annotations"][REF_NAME] != tag);
    entries.push(entry);
    let index = json!({ "schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE, "manifests": entries });
    write_file(&dir.join("index.json"), &to_json_bytes(&index));
}

/// What a layout holds for `tag`: (manifest digest, layer digests). Reads
/// layouts written by anyone, e.g. `skopeo copy docker://... oci:...`.
pub fn read_oci_image(dir: &Path, tag: &str) -> (String, Vec<String>) {
    let entry = read_index(dir)
        .into_iter()
        .find(|entry| entry["annotations"][REF_NAME] == tag)
        .unwrap_or_else(|| panic!("tag {tag} not in {}/index.json", dir.display()));
    let manifest_digest =
        entry["digest"].as_str().unwrap_or_else(|| panic!("index entry for {tag} has no digest: {entry}")).to_owned();
    let manifest = read_json(&blob_path(dir, &manifest_digest));
    let layers = manifest["layers"]
        .as_array()
        .unwrap_or_else(|| panic!("manifest {manifest_digest} has no layers: {manifest}"))
        .iter()
        .filter_map(|layer| layer["digest"].as_str().map(str::to_owned))
        .collect();
    (manifest_digest, layers)
}

/// Path of the blob with `digest` ("sha256:<hex>") in the layout at `dir`.
pub fn blob_path(dir: &Path, digest: &str) -> PathBuf {
    let hex = digest.strip_prefix("sha256:").unwrap_or_else(|| panic!("not a sha256 digest: {digest}"));
    dir.join("blobs/sha256").join(hex)
}

fn layer_tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut dirs_added = BTreeSet::new();
    for (path, content) in files {
        // Real layers list parent directories before their files.
        for parent in parent_dirs(path) {
            if dirs_added.insert(parent.clone()) {
                let mut header = fixed_header(tar::EntryType::Directory, 0o755, 0);
                append(&mut builder, &mut header, &format!("{parent}/"), &[]);
            }
        }
        let mut header = fixed_header(tar::EntryType::Regular, 0o644, content.len());
        append(&mut builder, &mut header, path, content);
    }
    builder.into_inner().unwrap_or_else(|e| panic!("cannot finish layer tar: {e}"))
}

/// "a/b/c" -> ["a", "a/b"]
fn parent_dirs(path: &str) -> Vec<String> {
    let parts: Vec<&str> = path.split('/').filter(|part| !part.is_empty()).collect();
    (1..parts.len()).map(|n| parts[..n].join("/")).collect()
}

fn fixed_header(kind: tar::EntryType, mode: u32, size: usize) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size as u64);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header
}

fn append(builder: &mut tar::Builder<Vec<u8>>, header: &mut tar::Header, path: &str, data: &[u8]) {
    builder.append_data(header, path, data).unwrap_or_else(|e| panic!("cannot add {path} to layer tar: {e}"));
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    // GzBuilder writes mtime 0 and no file name: the output depends on `data` only.
    let mut encoder = GzBuilder::new().write(Vec::new(), Compression::default());
    encoder.write_all(data).and_then(|()| encoder.finish()).unwrap_or_else(|e| panic!("cannot gzip layer: {e}"))
}

fn descriptor(media_type: &str, digest: &str, size: usize) -> Value {
    json!({ "mediaType": media_type, "digest": digest, "size": size })
}

fn write_blob(dir: &Path, bytes: &[u8]) -> String {
    let digest = sha256_digest(bytes);
    write_file(&blob_path(dir, &digest), bytes);
    digest
}

fn read_index(dir: &Path) -> Vec<Value> {
    let path = dir.join("index.json");
    if !path.exists() {
        return Vec::new();
    }
    match read_json(&path)["manifests"].take() {
        Value::Array(entries) => entries,
        _ => Vec::new(),
    }
}

fn read_json(path: &Path) -> Value {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn to_json_bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_else(|e| panic!("cannot serialise {value}: {e}"))
}

fn write_file(path: &Path, bytes: &[u8]) {
    fs::write(path, bytes).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

/// One platform of [`write_oci_index`]: (os, architecture, variant).
pub type PlatformSpec<'a> = (&'a str, &'a str, Option<&'a str>);

/// A multi-platform image: one image per platform (each with its own layer and a config
/// naming the platform, `created` set) under an OCI image index tagged `tag` in the layout at
/// `dir`. Returns the index digest and the per-platform manifest digests. Push with
/// `skopeo copy --all`.
pub fn write_oci_index(dir: &Path, tag: &str, platforms: &[PlatformSpec<'_>]) -> (String, Vec<String>) {
    create_layout(dir);
    let mut entries = Vec::new();
    let mut digests = Vec::new();
    for (os, architecture, variant) in platforms {
        let text = format!("built for {os}/{architecture}");
        let image = write_image(dir, &[("platform.txt", text.as_bytes())], |diff_id| {
            let mut config = json!({
                "created": "2026-01-02T03:04:05Z",
                "architecture": architecture,
                "os": os,
                "config": {},
                "rootfs": { "type": "layers", "diff_ids": [diff_id] },
            });
            if let Some(variant) = variant {
                config["variant"] = json!(variant);
            }
            config
        });
        let mut entry = image.descriptor;
        entry["platform"] = json!({ "os": os, "architecture": architecture });
        if let Some(variant) = variant {
            entry["platform"]["variant"] = json!(variant);
        }
        entries.push(entry);
        digests.push(image.manifest_digest);
    }
    let image_index = json!({ "schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE, "manifests": entries });
    let index_bytes = to_json_bytes(&image_index);
    let index_digest = write_blob(dir, &index_bytes);
    tag_in_layout(dir, tag, descriptor(INDEX_MEDIA_TYPE, &index_digest, index_bytes.len()));
    (index_digest, digests)
}
