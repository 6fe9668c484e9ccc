//! Where a [`BlobKey`] lives in the underlying object store: the store's key prefix
//! (from `s3://bucket/prefix`) joined with the key, and back again on list.

use mc_core::{BlobError, BlobKey};
use object_store::path::Path;

use crate::error::OpenError;

/// Top-level folder (under the prefix) of the staging objects of large write-once
/// uploads; never a [`BlobKey`] a caller sees in a listing.
pub(crate) const STAGING_DIR: &str = "_mc_staging";

/// The key prefix of a store: every key is stored under it, and stripped from listed
/// locations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Root {
    prefix: Option<Path>,
}

impl Root {
    /// `prefix` with surrounding `/` trimmed; empty means no prefix.
    pub(crate) fn new(prefix: &str) -> Result<Self, OpenError> {
        let trimmed = prefix.trim_matches('/');
        if trimmed.is_empty() {
            return Ok(Root::default());
        }
        let bad = |reason: &str| OpenError::InvalidPrefix {
            prefix: prefix.to_string(),
            reason: reason.to_string(),
        };
        // Same rules as a key: no empty, `.` or `..` segment, no control character.
        BlobKey::new(trimmed).map_err(|e| bad(&e.to_string()))?;
        let path = Path::parse(trimmed).map_err(|e| bad(&e.to_string()))?;
        Ok(Root { prefix: Some(path) })
    }

    /// The prefix as a string without trailing `/` (empty when none).
    pub(crate) fn as_str(&self) -> &str {
        self.prefix.as_ref().map_or("", Path::as_ref)
    }

    /// The object path of `key`.
    pub(crate) fn path(&self, key: &BlobKey) -> Path {
        self.join(key.as_str())
    }

    /// `prefix/rest` as a path. `rest` is a validated key or a string built from
    /// validated parts, so parsing cannot fail on it; should it ever, the unparsed
    /// form is still confined to the prefix because `Path::from` escapes `/` in parts.
    fn join(&self, rest: &str) -> Path {
        let full = match &self.prefix {
            Some(p) => format!("{}/{rest}", p.as_ref()),
            None => rest.to_string(),
        };
        Path::parse(&full).unwrap_or_else(|_| Path::from_iter(full.split('/')))
    }

    /// A fresh staging path for one large write-once upload.
    pub(crate) fn staging(&self, unique: &str) -> Path {
        self.join(&format!("{STAGING_DIR}/{unique}"))
    }

    /// The directory to list for a string `prefix` of keys: object_store lists whole
    /// path segments, so `tenants/ac` is listed as `tenants` and filtered afterwards.
    pub(crate) fn list_dir(&self, key_prefix: &str) -> Result<Option<Path>, BlobError> {
        let dir = match key_prefix.rfind('/') {
            Some(i) => &key_prefix[..i],
            None => "",
        };
        if dir.is_empty() {
            return Ok(self.prefix.clone());
        }
        // A directory that is not a valid key cannot hold any key.
        let dir_key = BlobKey::new(dir)?;
        Ok(Some(self.path(&dir_key)))
    }

    /// The key of a listed location, or `None` for objects outside the prefix, staging
    /// objects and names that are not valid keys (written by someone else).
    pub(crate) fn key_of(&self, location: &Path) -> Option<BlobKey> {
        let parts: Vec<String> = match &self.prefix {
            Some(p) => location
                .prefix_match(p)?
                .map(|part| part.as_ref().to_string())
                .collect(),
            None => location.parts().map(|p| p.as_ref().to_string()).collect(),
        };
        if parts.first().map(String::as_str) == Some(STAGING_DIR) {
            return None;
        }
        BlobKey::new(parts.join("/")).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn prefix_is_prepended_and_stripped() {
        let root = Root::new("/mc/prod/").unwrap();
        assert_eq!(root.as_str(), "mc/prod");
        let key = BlobKey::new("tenants/acme/logs/e1/run.log").unwrap();
        let path = root.path(&key);
        assert_eq!(path.as_ref(), "mc/prod/tenants/acme/logs/e1/run.log");
        assert_eq!(root.key_of(&path), Some(key));
        assert_eq!(root.key_of(&Path::from("other/tenants/x")), None);
        assert_eq!(root.key_of(&root.staging("abc")), None);
        assert_eq!(
            root.list_dir("tenants/ac").unwrap(),
            Some(Path::from("mc/prod/tenants"))
        );
        assert_eq!(root.list_dir("").unwrap(), Some(Path::from("mc/prod")));
        assert_eq!(Root::new("").unwrap().list_dir("x").unwrap(), None);
    }

    #[test]
    fn bad_prefixes_are_refused() {
        for bad in ["a/../b", "a//b", "./a", "a\nb"] {
            assert!(
                matches!(Root::new(bad), Err(OpenError::InvalidPrefix { .. })),
                "{bad:?}"
            );
        }
    }

    /// Characters that stress path handling: separators, dots, percent signs, hashes,
    /// spaces, unicode, Windows separators and drive letters.
    fn segment() -> impl Strategy<Value = String> {
        proptest::string::string_regex(r"[a-zA-Z0-9._%#: \-~é/\\]{1,12}").unwrap()
    }

    proptest! {
        /// No key accepted by `BlobKey::new` maps to a file outside the local root,
        /// with or without a store prefix.
        #[test]
        fn local_paths_stay_under_root(
            segs in proptest::collection::vec(segment(), 1..6),
            prefix in proptest::option::of("[a-z]{1,8}"),
        ) {
            let raw = segs.join("/");
            let Ok(key) = BlobKey::new(raw) else { return Ok(()); };
            let dir = tempfile::tempdir().unwrap();
            let root_dir = dir.path().canonicalize().unwrap();
            let local = object_store::local::LocalFileSystem::new_with_prefix(&root_dir).unwrap();
            let root = Root::new(prefix.as_deref().unwrap_or("")).unwrap();
            let path = root.path(&key);
            if let Ok(fs_path) = local.path_to_filesystem(&path) {
                prop_assert!(fs_path.starts_with(&root_dir), "{fs_path:?} escapes {root_dir:?}");
                prop_assert!(
                    fs_path.components().all(|c| !matches!(
                        c,
                        std::path::Component::ParentDir | std::path::Component::CurDir
                    )),
                    "{fs_path:?} has a relative component"
                );
            }
            // The mapping round-trips: a listed location gives back the same key.
            prop_assert_eq!(root.key_of(&path), Some(key));
        }
    }
}
