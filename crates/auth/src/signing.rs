//! Signed access policy replacements. Governance signs each replacement with an Ed25519 key
//! (config `access_policy_signing_key`); every other service adopts a replacement from the bus
//! only if it verifies against one of its configured public keys
//! (`access_policy_verify_keys`). Whoever can publish on the bus therefore cannot hand a
//! service a policy, and a policy signed for one deployment does not verify in another: the
//! signed message binds the namespace, the version and the policy's SHA-256:
//!
//! `"flotilla.access-policy.v1\0" || namespace || "\0" || version (u64, big-endian) || sha256 (32 bytes)`
//!
//! Keys travel as base64 (standard alphabet): the 32-byte seed in the signing key file, the
//! 32-byte public key in configuration.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};

use crate::{AuthError, Result};

const DOMAIN: &[u8] = b"flotilla.access-policy.v1\0";

/// The bytes a replacement's signature covers.
pub fn signed_message(namespace: &str, version: u64, sha256_hex: &str) -> Result<Vec<u8>> {
    let digest = hex::decode(sha256_hex)
        .ok()
        .filter(|d| d.len() == 32)
        .ok_or_else(|| AuthError::Keys(format!("{sha256_hex:?} is not a hex SHA-256")))?;
    let mut m = Vec::with_capacity(DOMAIN.len() + namespace.len() + 1 + 8 + 32);
    m.extend_from_slice(DOMAIN);
    m.extend_from_slice(namespace.as_bytes());
    m.push(0);
    m.extend_from_slice(&version.to_be_bytes());
    m.extend_from_slice(&digest);
    Ok(m)
}

/// Governance's signing key.
#[derive(Clone)]
pub struct PolicySigner {
    key: SigningKey,
}

impl std::fmt::Debug for PolicySigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicySigner")
            .field("public_key", &self.public_key())
            .finish()
    }
}

impl PolicySigner {
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self {
            key: SigningKey::from_bytes(&seed),
        }
    }

    /// A new random key.
    pub fn generate() -> Result<Self> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)
            .map_err(|e| AuthError::Keys(format!("no randomness for a new key: {e}")))?;
        Ok(Self::from_seed(seed))
    }

    /// Reads a key file holding the base64 seed.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            AuthError::Keys(format!(
                "cannot read the access policy signing key {}: {e}",
                path.display()
            ))
        })?;
        let seed: [u8; 32] = B64
            .decode(text.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                AuthError::Keys(format!(
                    "{} does not hold a base64 32-byte Ed25519 seed; make one with `flotilla keys policy-signing --out FILE`",
                    path.display()
                ))
            })?;
        Ok(Self::from_seed(seed))
    }

    /// The seed, for a key of the same kind used elsewhere (an Ed25519 note signer).
    pub fn seed(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// The base64 seed, for writing a key file.
    pub fn seed_base64(&self) -> String {
        B64.encode(self.key.to_bytes())
    }

    /// The base64 public key, for `access_policy_verify_keys`.
    pub fn public_key(&self) -> String {
        B64.encode(self.key.verifying_key().to_bytes())
    }

    /// Signs raw bytes (base64 signature).
    pub fn sign_bytes(&self, message: &[u8]) -> String {
        B64.encode(self.key.sign(message).to_bytes())
    }

    /// Signs a replacement.
    pub fn sign(&self, namespace: &str, version: u64, sha256_hex: &str) -> Result<String> {
        Ok(self.sign_bytes(&signed_message(namespace, version, sha256_hex)?))
    }
}

/// The public keys a service accepts replacements from.
#[derive(Clone, Debug, Default)]
pub struct PolicyVerifier {
    keys: Vec<(String, VerifyingKey)>,
}

impl PolicyVerifier {
    /// Parses base64 public keys.
    pub fn new<S: AsRef<str>>(keys: &[S]) -> Result<Self> {
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            let k = k.as_ref().trim();
            let bytes: [u8; 32] = B64
                .decode(k)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| {
                    AuthError::Keys(format!(
                        "access_policy_verify_keys entry {:?} is not a base64 32-byte Ed25519 public key",
                        k.chars().take(60).collect::<String>()
                    ))
                })?;
            let key = VerifyingKey::from_bytes(&bytes).map_err(|e| {
                AuthError::Keys(format!("access_policy_verify_keys entry {k:?}: {e}"))
            })?;
            out.push((k.to_owned(), key));
        }
        Ok(Self { keys: out })
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Checks a base64 signature over raw bytes; answers the public key that verified it.
    pub fn verify_bytes(&self, message: &[u8], signature: &str) -> Result<&str> {
        if self.keys.is_empty() {
            return Err(AuthError::Keys(
                "no access_policy_verify_keys are configured, so no replacement is adopted".into(),
            ));
        }
        let sig: [u8; 64] = B64
            .decode(signature.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| AuthError::Keys("the signature is not base64 of 64 bytes".into()))?;
        let sig = Signature::from_bytes(&sig);
        self.keys
            .iter()
            .find(|(_, k)| k.verify_strict(message, &sig).is_ok())
            .map(|(text, _)| text.as_str())
            .ok_or_else(|| {
                AuthError::Keys("the signature does not verify with any configured key".into())
            })
    }

    /// Checks a replacement's signature.
    pub fn verify(
        &self,
        namespace: &str,
        version: u64,
        sha256_hex: &str,
        signature: &str,
    ) -> Result<&str> {
        self.verify_bytes(&signed_message(namespace, version, sha256_hex)?, signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex<const N: usize>(s: &str) -> [u8; N] {
        hex::decode(s)
            .ok()
            .and_then(|v| v.try_into().ok())
            .expect("hex of the right length")
    }

    /// RFC 8032, section 7.1, TEST 1 (empty message) and TEST 2 (one byte 0x72).
    #[test]
    fn rfc8032_test_vectors() {
        let vectors = [
            (
                "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
                "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
                "",
                "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
            ),
            (
                "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
                "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
                "72",
                "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
            ),
        ];
        for (seed, public, message, signature) in vectors {
            let signer = PolicySigner::from_seed(unhex::<32>(seed));
            assert_eq!(signer.public_key(), B64.encode(unhex::<32>(public)));
            let message = hex::decode(message).expect("hex");
            let sig = signer.sign_bytes(&message);
            assert_eq!(sig, B64.encode(unhex::<64>(signature)));
            let verifier = PolicyVerifier::new(&[signer.public_key()]).expect("key");
            assert!(verifier.verify_bytes(&message, &sig).is_ok());
        }
    }

    #[test]
    fn a_replacement_verifies_only_for_its_namespace_version_and_text() {
        let signer = PolicySigner::generate().expect("key");
        let other = PolicySigner::generate().expect("key");
        let sha = hex::encode([7u8; 32]);
        let sig = signer.sign("acme", 3, &sha).expect("sign");
        let v = PolicyVerifier::new(&[other.public_key(), signer.public_key()]).expect("keys");
        assert_eq!(
            v.verify("acme", 3, &sha, &sig).expect("verifies"),
            signer.public_key()
        );
        assert!(v.verify("other-deployment", 3, &sha, &sig).is_err());
        assert!(v.verify("acme", 4, &sha, &sig).is_err());
        assert!(v.verify("acme", 3, &hex::encode([8u8; 32]), &sig).is_err());
        let only_other = PolicyVerifier::new(&[other.public_key()]).expect("key");
        assert!(only_other.verify("acme", 3, &sha, &sig).is_err());
        assert!(
            PolicyVerifier::default()
                .verify("acme", 3, &sha, &sig)
                .is_err()
        );
        assert!(PolicyVerifier::new(&["not a key"]).is_err());
    }
}
