//! Where the JWT verification keys come from: exactly one of `auth.jwt.secret`,
//! `secret_file`, `public_key_file` (PEM) or `jwks_file`. Each becomes a [`Key`] that
//! knows which algorithms it may verify, so a key is never used with an algorithm of
//! another family (the classic HS256-signed-with-the-RSA-public-key confusion), and
//! every file problem is found at start (or at SIGHUP), naming the key and the file.

use std::path::Path;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey};

use super::error::JwtError;
use crate::config::JwtConfig;

/// Uncompressed EC points: `0x04 ‖ x ‖ y`.
const P256_POINT_LEN: usize = 65;
const P384_POINT_LEN: usize = 97;
const ED25519_KEY_LEN: usize = 32;
/// RFC 7518 §3.2: an HMAC key should be at least as long as the hash output.
const MIN_SECRET_LEN: usize = 32;

/// One verification key and the algorithms it may verify.
pub(super) struct Key {
    /// The JWKS `kid`; `None` for the other sources and for JWKS keys without one.
    pub kid: Option<String>,
    pub algorithms: Vec<Algorithm>,
    pub decoding: DecodingKey,
}

/// The configured keys.
pub(super) struct Keys {
    pub keys: Vec<Key>,
    /// Keys come from a JWKS file: the token's `kid` selects one.
    pub by_kid: bool,
    /// The HMAC secret, kept to mint tokens (`push-bridge token`).
    pub signing: Option<EncodingKey>,
    /// For messages: e.g. `auth.jwt.public_key_file /etc/push-bridge/jwt.pem`.
    pub source: String,
}

impl Keys {
    /// Reads the one configured key source. A secret or PEM key must fit every
    /// configured algorithm; a JWKS must hold a key for at least one of them.
    pub fn load(config: &JwtConfig, algorithms: &[Algorithm]) -> Result<Keys, JwtError> {
        let sources: Vec<&str> = [
            ("secret", config.secret.is_some()),
            ("secret_file", config.secret_file.is_some()),
            ("public_key_file", config.public_key_file.is_some()),
            ("jwks_file", config.jwks_file.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect();
        if sources.len() > 1 {
            return Err(JwtError::SeveralKeys(sources.join(", ")));
        }
        let keys = if let Some(secret) = &config.secret {
            secret_keys(secret.as_bytes().to_vec(), "auth.jwt.secret".into())?
        } else if let Some(path) = &config.secret_file {
            let mut secret = read("secret_file", path)?;
            while secret.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                secret.pop();
            }
            secret_keys(secret, format!("auth.jwt.secret_file {}", path.display()))?
        } else if let Some(path) = &config.public_key_file {
            pem_keys(path)?
        } else if let Some(path) = &config.jwks_file {
            return jwks_keys(path, algorithms);
        } else {
            return Err(JwtError::NoKey);
        };
        keys.check_algorithms(algorithms)?;
        Ok(keys)
    }

    /// A secret or PEM key must fit every configured algorithm.
    fn check_algorithms(&self, algorithms: &[Algorithm]) -> Result<(), JwtError> {
        for key in &self.keys {
            if let Some(algorithm) = algorithms.iter().find(|a| !key.algorithms.contains(a)) {
                return Err(JwtError::AlgorithmMismatch {
                    algorithm: format!("{algorithm:?}"),
                    key: self.source.clone(),
                    usable: names(&key.algorithms),
                });
            }
        }
        Ok(())
    }

    /// The key for a token's `kid`: the one key of a secret or PEM file (the `kid` is
    /// ignored), or the JWKS key with that `kid`; a token without `kid` only fits a
    /// JWKS holding exactly one key.
    pub fn select(&self, kid: Option<&str>) -> Option<&Key> {
        match (self.by_kid, kid, self.keys.as_slice()) {
            (false, _, [key]) | (true, None, [key]) => Some(key),
            (true, Some(kid), keys) => keys.iter().find(|k| k.kid.as_deref() == Some(kid)),
            _ => None,
        }
    }
}

fn read(key: &'static str, path: &Path) -> Result<Vec<u8>, JwtError> {
    std::fs::read(path).map_err(|cause| JwtError::Read {
        key,
        path: path.to_path_buf(),
        cause,
    })
}

fn secret_keys(secret: Vec<u8>, source: String) -> Result<Keys, JwtError> {
    if secret.is_empty() {
        return Err(JwtError::Empty(source));
    }
    if secret.len() < MIN_SECRET_LEN {
        tracing::warn!(
            "{source} is only {} bytes: use at least {MIN_SECRET_LEN} random bytes, or tokens can be forged by guessing it",
            secret.len()
        );
    }
    Ok(Keys {
        keys: vec![Key {
            kid: None,
            algorithms: AlgorithmFamily::Hmac.algorithms().to_vec(),
            decoding: DecodingKey::from_secret(&secret),
        }],
        by_kid: false,
        signing: Some(EncodingKey::from_secret(&secret)),
        source,
    })
}

/// A PEM public key: RSA (PKCS#1 or SPKI), EC P-256/P-384 or Ed25519, detected from
/// its contents. Private keys and certificates are refused with the command that
/// extracts the public key.
fn pem_keys(path: &Path) -> Result<Keys, JwtError> {
    let invalid = |message: String| JwtError::InvalidPem {
        path: path.to_path_buf(),
        message,
    };
    let pem = read("public_key_file", path)?;
    let text = String::from_utf8_lossy(&pem);
    let label = text
        .split_once("-----BEGIN ")
        .and_then(|(_, rest)| rest.split_once("-----"))
        .map(|(label, _)| label.trim().to_string())
        .ok_or_else(|| invalid("no PEM block (expected -----BEGIN PUBLIC KEY-----)".into()))?;
    if label.contains("PRIVATE KEY") {
        return Err(invalid(format!(
            "is a private key ({label}); give the public key: openssl pkey -in {} -pubout",
            path.display()
        )));
    }
    if label.contains("CERTIFICATE") {
        return Err(invalid(format!(
            "is a certificate; give its public key: openssl x509 -in {} -pubkey -noout",
            path.display()
        )));
    }
    if label != "PUBLIC KEY" && label != "RSA PUBLIC KEY" {
        return Err(invalid(format!(
            "holds a {label}, not a public key (RSA, EC P-256/P-384 or Ed25519)"
        )));
    }
    let decoding = DecodingKey::from_rsa_pem(&pem)
        .or_else(|_| DecodingKey::from_ec_pem(&pem))
        .or_else(|_| DecodingKey::from_ed_pem(&pem))
        .map_err(|e| invalid(format!("not an RSA, EC or Ed25519 public key ({e})")))?;
    // Parses the key material itself (the PEM decoding above only classified it).
    Jwk::from_decoding_key(&decoding, None)
        .map_err(|e| invalid(format!("not a valid public key ({e})")))?;
    let algorithms = algorithms_of(&decoding).map_err(invalid)?;
    Ok(Keys {
        keys: vec![Key {
            kid: None,
            algorithms,
            decoding,
        }],
        by_kid: false,
        signing: None,
        source: format!("auth.jwt.public_key_file {}", path.display()),
    })
}

/// What a decoded key can verify, from its family and, for EC, its curve.
fn algorithms_of(key: &DecodingKey) -> Result<Vec<Algorithm>, String> {
    let len = key.try_get_as_bytes().map(<[u8]>::len).unwrap_or(0);
    match key.family() {
        AlgorithmFamily::Ec => match len {
            P256_POINT_LEN => Ok(vec![Algorithm::ES256]),
            P384_POINT_LEN => Ok(vec![Algorithm::ES384]),
            _ => Err("an EC key on an unsupported curve (P-256 and P-384 are supported)".into()),
        },
        AlgorithmFamily::Ed if len != ED25519_KEY_LEN => {
            Err("an EdDSA key that is not Ed25519".into())
        }
        family => Ok(family.algorithms().to_vec()),
    }
}

/// A JWKS file (RFC 7517). Encryption keys and keys of unsupported algorithms or curves
/// are skipped; a key that claims a supported type but is broken, an `alg` that does not
/// fit the key, or two keys with one `kid` are errors.
fn jwks_keys(path: &Path, algorithms: &[Algorithm]) -> Result<Keys, JwtError> {
    let invalid = |message: String| JwtError::InvalidJwks {
        path: path.to_path_buf(),
        message,
    };
    let set: JwkSet = serde_json::from_slice(&read("jwks_file", path)?)
        .map_err(|e| invalid(format!("not a JWKS document ({e})")))?;
    let mut keys: Vec<Key> = Vec::new();
    let mut skipped = 0;
    for (index, jwk) in set.keys.iter().enumerate() {
        let name = match &jwk.common.key_id {
            Some(kid) => format!("key {kid:?}"),
            None => format!("key #{}", index + 1),
        };
        match jwks_key(jwk) {
            Ok(Some(key)) => {
                if key.kid.is_some() && keys.iter().any(|k| k.kid == key.kid) {
                    return Err(invalid(format!("two keys have the kid of {name}")));
                }
                keys.push(key);
            }
            Ok(None) => skipped += 1,
            Err(message) => return Err(invalid(format!("{name}: {message}"))),
        }
    }
    if keys.is_empty() {
        return Err(invalid(format!(
            "no key usable to verify signatures ({skipped} skipped: encryption keys, \
             unsupported algorithms or curves)"
        )));
    }
    let usable = |a: &Algorithm| keys.iter().any(|k| k.algorithms.contains(a));
    if !algorithms.iter().any(usable) {
        return Err(invalid(format!(
            "no key in it can verify any of auth.jwt.algorithms ({})",
            names(algorithms)
        )));
    }
    Ok(Keys {
        keys,
        by_kid: true,
        signing: None,
        source: format!("auth.jwt.jwks_file {}", path.display()),
    })
}

/// `Ok(None)`: a key this bridge does not verify with (skipped, not an error).
fn jwks_key(jwk: &Jwk) -> Result<Option<Key>, String> {
    if jwk.common.public_key_use == Some(PublicKeyUse::Encryption) {
        return Ok(None);
    }
    let declared = match jwk.common.key_algorithm {
        Some(alg) => match Algorithm::try_from(alg) {
            Ok(alg) => Some(alg),
            Err(_) => return Ok(None),
        },
        None => None,
    };
    let (kty, usable) = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => ("RSA", AlgorithmFamily::Rsa.algorithms().to_vec()),
        AlgorithmParameters::OctetKey(_) => ("oct", AlgorithmFamily::Hmac.algorithms().to_vec()),
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => ("EC", vec![Algorithm::ES256]),
            EllipticCurve::P384 => ("EC", vec![Algorithm::ES384]),
            _ => return Ok(None),
        },
        AlgorithmParameters::OctetKeyPair(okp) => match okp.curve {
            EllipticCurve::Ed25519 => ("OKP", vec![Algorithm::EdDSA]),
            _ => return Ok(None),
        },
        AlgorithmParameters::Other(other) => {
            return match other.fields.get("kty").and_then(|v| v.as_str()) {
                Some(kty @ ("RSA" | "EC" | "oct" | "OKP")) => Err(format!(
                    "is not a valid {kty} key (a parameter is missing or malformed)"
                )),
                _ => Ok(None),
            };
        }
        _ => return Ok(None),
    };
    if let Some(alg) = declared {
        if !usable.contains(&alg) {
            return Err(format!("its alg {alg:?} cannot be used with a {kty} key"));
        }
    }
    let decoding = DecodingKey::from_jwk(jwk).map_err(|e| format!("invalid {kty} key ({e})"))?;
    // `from_jwk` does not check lengths: a truncated coordinate would only fail later.
    let expected_len = match usable.first() {
        Some(Algorithm::ES256) => Some(P256_POINT_LEN),
        Some(Algorithm::ES384) => Some(P384_POINT_LEN),
        Some(Algorithm::EdDSA) => Some(ED25519_KEY_LEN),
        _ => None,
    };
    let len = decoding.try_get_as_bytes().map(<[u8]>::len).ok();
    let fits = match expected_len {
        Some(expected) => len == Some(expected),
        None => len != Some(0),
    };
    if !fits {
        return Err(format!(
            "invalid {kty} key (wrong key or coordinate length)"
        ));
    }
    Ok(Some(Key {
        kid: jwk.common.key_id.clone(),
        algorithms: declared.map_or(usable, |alg| vec![alg]),
        decoding,
    }))
}

/// `HS256, HS384, …` for messages.
fn names(algorithms: &[Algorithm]) -> String {
    let names: Vec<String> = algorithms.iter().map(|a| format!("{a:?}")).collect();
    names.join(", ")
}
