//! What the console shows of a tag, parsed from the registry's JSON: Docker v2 and OCI image
//! manifests (config + layers), Docker manifest lists and OCI indexes (one entry per
//! platform), and the image config (created, os/architecture/variant).
use serde::Deserialize;

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Every manifest type the console understands, for `Accept`.
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

#[derive(Debug, Clone, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub platform: Option<Platform>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Platform {
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        match &self.variant {
            Some(variant) if !variant.is_empty() => write!(f, "/{variant}"),
            _ => Ok(()),
        }
    }
}

/// A manifest as the registry served it.
#[derive(Debug, Clone)]
pub enum Manifest {
    Image { config: Descriptor, layers: Vec<Descriptor> },
    Index { manifests: Vec<Descriptor> },
}

#[derive(Deserialize)]
struct RawManifest {
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
}

impl Manifest {
    /// `content_type` is the answer's `Content-Type`; the body's own `mediaType` wins when set
    /// (OCI makes it optional, so an OCI manifest may only say so in the header).
    pub fn parse(content_type: &str, body: &[u8]) -> Result<(Manifest, String), String> {
        let raw: RawManifest = serde_json::from_slice(body).map_err(|e| format!("not a manifest: {e}"))?;
        let header = content_type.split(';').next().unwrap_or("").trim();
        let media_type = raw.media_type.clone().filter(|m| !m.is_empty()).unwrap_or_else(|| header.to_string());
        let manifest = match media_type.as_str() {
            DOCKER_LIST | OCI_INDEX => Manifest::Index { manifests: raw.manifests.unwrap_or_default() },
            DOCKER_MANIFEST | OCI_MANIFEST => match raw.config {
                Some(config) => Manifest::Image { config, layers: raw.layers.unwrap_or_default() },
                None => return Err("an image manifest without a config".into()),
            },
            other => return Err(format!("unsupported manifest type {other:?}")),
        };
        Ok((manifest, media_type))
    }
}

/// The fields of an image config the console shows.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub created: Option<String>,
    #[serde(flatten)]
    pub platform: Platform,
}

impl ImageConfig {
    pub fn parse(body: &[u8]) -> Result<ImageConfig, String> {
        serde_json::from_slice(body).map_err(|e| format!("not an image config: {e}"))
    }
}

/// The index entries that are images for a platform (BuildKit's attestation manifests say
/// `unknown/unknown`).
pub fn platform_entries(manifests: &[Descriptor]) -> impl Iterator<Item = &Descriptor> {
    manifests.iter().filter(|d| d.platform.as_ref().is_none_or(|p| p.os != "unknown"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_manifests_and_indexes_parse() {
        let image = br#"{"schemaVersion":2,"config":{"mediaType":"c","digest":"sha256:a","size":7},
            "layers":[{"mediaType":"l","digest":"sha256:b","size":100}]}"#;
        let (manifest, media_type) = Manifest::parse(OCI_MANIFEST, image).unwrap();
        assert_eq!(media_type, OCI_MANIFEST);
        let Manifest::Image { config, layers } = manifest else { panic!("not an image") };
        assert_eq!((config.size, layers[0].size), (7, 100));

        let index = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
            {"digest":"sha256:1","size":1,"platform":{"os":"linux","architecture":"arm64","variant":"v8"}},
            {"digest":"sha256:2","size":1,"platform":{"os":"unknown","architecture":"unknown"}}]}"#;
        let (manifest, _) = Manifest::parse("application/json", index).unwrap();
        let Manifest::Index { manifests } = manifest else { panic!("not an index") };
        let shown: Vec<String> =
            platform_entries(&manifests).map(|d| d.platform.clone().unwrap_or_default().to_string()).collect();
        assert_eq!(shown, ["linux/arm64/v8"]);

        assert!(Manifest::parse("application/vnd.docker.distribution.manifest.v1+json", b"{}").is_err());
        assert!(Manifest::parse(OCI_MANIFEST, b"[").is_err());
        let config = ImageConfig::parse(br#"{"created":"2026-01-02T03:04:05Z","os":"linux","architecture":"amd64"}"#);
        assert_eq!(config.unwrap().platform.to_string(), "linux/amd64");
    }
}
