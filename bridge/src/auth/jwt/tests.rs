//! Tests of JWT verification and minting with real signatures. Asymmetric test keys
//! are generated once per run with the `openssl` command (no key crates to build).

use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::EncodingKey;
use serde_json::json;

use super::*;

const SECRET: &str = "0123456789abcdef0123456789abcdef";

struct TestKey {
    private: Vec<u8>,
    public: Vec<u8>,
}

fn openssl(args: &[&str], input: Option<&[u8]>) -> Vec<u8> {
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("these tests need the openssl command");
    let mut stdin = child.stdin.take().unwrap();
    if let Some(input) = input {
        stdin.write_all(input).unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "openssl {args:?} failed: {stderr}");
    out.stdout
}

fn generate(args: &[&str]) -> TestKey {
    let private = openssl(&[&["genpkey"], args].concat(), None);
    let public = openssl(&["pkey", "-pubout"], Some(&private));
    TestKey { private, public }
}

macro_rules! test_key {
    ($name:ident, $($arg:expr),+) => {
        fn $name() -> &'static TestKey {
            static KEY: OnceLock<TestKey> = OnceLock::new();
            KEY.get_or_init(|| generate(&[$($arg),+]))
        }
    };
}
test_key!(rsa, "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048");
test_key!(
    rsa_other,
    "-algorithm",
    "RSA",
    "-pkeyopt",
    "rsa_keygen_bits:2048"
);
test_key!(
    p256,
    "-algorithm",
    "EC",
    "-pkeyopt",
    "ec_paramgen_curve:P-256"
);
test_key!(
    p384,
    "-algorithm",
    "EC",
    "-pkeyopt",
    "ec_paramgen_curve:P-384"
);
test_key!(ed25519, "-algorithm", "ED25519");

fn signing_key(algorithm: Algorithm, key: &TestKey) -> EncodingKey {
    match algorithm.family() {
        jsonwebtoken::AlgorithmFamily::Rsa => EncodingKey::from_rsa_pem(&key.private),
        jsonwebtoken::AlgorithmFamily::Ec => EncodingKey::from_ec_pem(&key.private),
        jsonwebtoken::AlgorithmFamily::Ed => EncodingKey::from_ed_pem(&key.private),
        jsonwebtoken::AlgorithmFamily::Hmac => Ok(EncodingKey::from_secret(&key.private)),
    }
    .unwrap()
}

/// A directory for key files that lives as long as the test.
struct Files(tempfile::TempDir);

impl Files {
    fn new() -> Self {
        Files(tempfile::tempdir().unwrap())
    }
    fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.0.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn claims() -> Value {
    json!({"sub": "alice", "exp": now() + 600, "topics": ["article:*", "package_created"]})
}

fn with(extra: Value) -> Value {
    let mut claims = claims();
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            claims.as_object_mut().unwrap().remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
    claims
}

fn sign(algorithm: Algorithm, key: &EncodingKey, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(algorithm);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

fn hs256(claims: &Value) -> String {
    sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(SECRET.as_bytes()),
        None,
        claims,
    )
}

/// A token from raw header and payload bytes, HS256-signed with [`SECRET`].
fn raw_hs256(header: &[u8], payload: &[u8]) -> String {
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::HS256).unwrap();
    format!("{message}.{signature}")
}

fn secret_config() -> JwtConfig {
    JwtConfig {
        secret: Some(SECRET.into()),
        ..JwtConfig::default()
    }
}

fn verifier(config: &JwtConfig) -> JwtVerifier {
    JwtVerifier::from_config(config).unwrap()
}

fn hs_verifier() -> JwtVerifier {
    verifier(&secret_config())
}

fn pem_config(files: &Files, key: &TestKey, algorithms: &[&str]) -> JwtConfig {
    JwtConfig {
        algorithms: algorithms.iter().map(|a| a.to_string()).collect(),
        public_key_file: Some(files.write("key.pem", &key.public)),
        ..JwtConfig::default()
    }
}

fn p(s: &str) -> Pattern {
    Pattern::parse(s).unwrap()
}

fn refused(verifier: &JwtVerifier, token: &str) -> JwtRejection {
    verifier.verify(token).unwrap_err()
}

fn config_error(config: &JwtConfig) -> JwtError {
    JwtVerifier::from_config(config).unwrap_err()
}

#[test]
fn hs_tokens_verify_into_a_grant() {
    for algorithm in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        let config = JwtConfig {
            algorithms: vec![format!("{algorithm:?}")],
            ..secret_config()
        };
        let claims = claims();
        let key = EncodingKey::from_secret(SECRET.as_bytes());
        let grant = verifier(&config)
            .verify(&sign(algorithm, &key, None, &claims))
            .unwrap();
        assert_eq!(grant.subject.as_deref(), Some("alice"));
        assert_eq!(grant.patterns, vec![p("article:*"), p("package_created")]);
        let exp = claims["exp"].as_u64().unwrap();
        assert_eq!(
            grant.expires_at,
            Some(UNIX_EPOCH + Duration::from_secs(exp))
        );
    }
}

#[test]
fn rsa_pss_ec_and_eddsa_pem_keys_verify_and_detect_their_type() {
    let files = Files::new();
    let cases: [(&TestKey, &[Algorithm]); 4] = [
        (
            rsa(),
            &[
                Algorithm::RS256,
                Algorithm::RS384,
                Algorithm::RS512,
                Algorithm::PS256,
                Algorithm::PS384,
                Algorithm::PS512,
            ],
        ),
        (p256(), &[Algorithm::ES256]),
        (p384(), &[Algorithm::ES384]),
        (ed25519(), &[Algorithm::EdDSA]),
    ];
    for (key, algorithms) in cases {
        for &algorithm in algorithms {
            let name = format!("{algorithm:?}");
            let verifier = verifier(&pem_config(&files, key, &[&name]));
            let token = sign(algorithm, &signing_key(algorithm, key), None, &claims());
            let grant = verifier.verify(&token);
            assert_eq!(grant.unwrap().subject.as_deref(), Some("alice"), "{name}");
        }
    }
}

#[test]
fn a_token_signed_by_another_key_or_tampered_with_has_a_bad_signature() {
    let files = Files::new();
    let rs = verifier(&pem_config(&files, rsa(), &["RS256"]));
    let other = sign(
        Algorithm::RS256,
        &signing_key(Algorithm::RS256, rsa_other()),
        None,
        &claims(),
    );
    assert_eq!(refused(&rs, &other), JwtRejection::BadSignature);

    let hs = hs_verifier();
    let wrong_secret = EncodingKey::from_secret(b"another secret, 32 bytes long!!!");
    let token = sign(Algorithm::HS256, &wrong_secret, None, &claims());
    assert_eq!(refused(&hs, &token), JwtRejection::BadSignature);

    // Same header and signature, a payload granting more.
    let token = hs256(&claims());
    let parts: Vec<&str> = token.split('.').collect();
    let forged = URL_SAFE_NO_PAD.encode(with(json!({"topics": ["*"]})).to_string());
    let tampered = format!("{}.{}.{}", parts[0], forged, parts[2]);
    assert_eq!(refused(&hs, &tampered), JwtRejection::BadSignature);
}

#[test]
fn pkcs1_rsa_public_keys_are_accepted() {
    let files = Files::new();
    let pkcs1 = openssl(&["rsa", "-pubin", "-RSAPublicKey_out"], Some(&rsa().public));
    assert!(String::from_utf8_lossy(&pkcs1).contains("BEGIN RSA PUBLIC KEY"));
    let config = JwtConfig {
        algorithms: vec!["RS256".into()],
        public_key_file: Some(files.write("pkcs1.pem", pkcs1)),
        ..JwtConfig::default()
    };
    let token = sign(
        Algorithm::RS256,
        &signing_key(Algorithm::RS256, rsa()),
        None,
        &claims(),
    );
    assert!(verifier(&config).verify(&token).is_ok());
}

#[test]
fn hs256_signed_with_the_rsa_public_key_is_refused() {
    let files = Files::new();
    let rs = verifier(&pem_config(&files, rsa(), &["RS256"]));
    let confused = EncodingKey::from_secret(&rsa().public);
    let token = sign(Algorithm::HS256, &confused, None, &claims());
    assert_eq!(refused(&rs, &token), JwtRejection::AlgorithmNotAllowed);

    // Listing HS256 next to an RSA key is refused at start, naming both.
    let err = config_error(&pem_config(&files, rsa(), &["RS256", "HS256"]));
    assert!(matches!(err, JwtError::AlgorithmMismatch { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("HS256") && message.contains("key.pem"),
        "{message}"
    );
}

#[test]
fn alg_none_is_refused_and_cannot_be_configured() {
    let hs = hs_verifier();
    for alg in ["none", "None", "NONE"] {
        let header = URL_SAFE_NO_PAD.encode(json!({"alg": alg, "typ": "JWT"}).to_string());
        let payload = URL_SAFE_NO_PAD.encode(claims().to_string());
        for signature in ["", "c2ln"] {
            let token = format!("{header}.{payload}.{signature}");
            assert!(JwtVerifier::looks_like_jwt(&token));
            assert_eq!(refused(&hs, &token), JwtRejection::AlgorithmNotAllowed);
        }
    }
    let config = JwtConfig {
        algorithms: vec!["none".into()],
        ..secret_config()
    };
    assert!(matches!(config_error(&config), JwtError::UnknownAlgorithm(a) if a == "none"));
}

#[test]
fn algorithms_outside_the_configured_list_are_refused() {
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    let token = sign(Algorithm::HS512, &key, None, &claims());
    assert_eq!(
        refused(&hs_verifier(), &token),
        JwtRejection::AlgorithmNotAllowed
    );

    let files = Files::new();
    let rs = verifier(&pem_config(&files, rsa(), &["RS256"]));
    let pss = sign(
        Algorithm::PS256,
        &signing_key(Algorithm::PS256, rsa()),
        None,
        &claims(),
    );
    assert_eq!(refused(&rs, &pss), JwtRejection::AlgorithmNotAllowed);
}

#[test]
fn malformed_tokens_are_refused_as_such() {
    let hs = hs_verifier();
    let header = br#"{"alg":"HS256","typ":"JWT"}"#;
    let good = claims().to_string();
    let cases = [
        String::new(),
        "abc".into(),
        "a.b".into(),
        "a.b.c.d".into(),
        "!!!.x.y".into(),
        format!("{}.e30.", URL_SAFE_NO_PAD.encode("not json")),
        format!("{}.e30.", URL_SAFE_NO_PAD.encode(r#"{"typ":"JWT"}"#)),
        // Payloads that are signed but not a JSON object of claims.
        raw_hs256(header, b"not json"),
        raw_hs256(header, b"[1,2]"),
        // An extension the bridge does not understand.
        raw_hs256(
            br#"{"alg":"HS256","crit":["b64"],"b64":false}"#,
            good.as_bytes(),
        ),
        // Duplicate header fields (parsers could disagree on which wins).
        raw_hs256(br#"{"alg":"HS256","alg":"HS256"}"#, good.as_bytes()),
        hs256(&with(json!({"sub": 42}))),
        format!("{}.{}", hs256(&claims()), "x".repeat(MAX_TOKEN_LEN)),
    ];
    for token in &cases {
        assert_eq!(refused(&hs, token), JwtRejection::Malformed, "{token:.80}");
    }
}

#[test]
fn expired_tokens_are_refused_within_the_leeway_accepted() {
    let hs = hs_verifier();
    let expired = hs256(&with(json!({"exp": now() - 120})));
    assert_eq!(refused(&hs, &expired), JwtRejection::Expired);
    let within_leeway = hs256(&with(json!({"exp": now() - 30})));
    assert!(hs.verify(&within_leeway).is_ok(), "default leeway is 60s");

    let strict = verifier(&JwtConfig {
        leeway: Duration::ZERO,
        ..secret_config()
    });
    assert_eq!(refused(&strict, &within_leeway), JwtRejection::Expired);
}

#[test]
fn not_before_is_checked_with_the_leeway() {
    let hs = hs_verifier();
    let future = hs256(&with(json!({"nbf": now() + 300})));
    assert_eq!(refused(&hs, &future), JwtRejection::NotYetValid);
    let soon = hs256(&with(json!({"nbf": now() + 30})));
    assert!(hs.verify(&soon).is_ok());
    assert!(hs.verify(&hs256(&with(json!({"nbf": now() - 5})))).is_ok());
    let strict = verifier(&JwtConfig {
        leeway: Duration::ZERO,
        ..secret_config()
    });
    assert_eq!(refused(&strict, &soon), JwtRejection::NotYetValid);
}

#[test]
fn exp_is_required_unless_configured_otherwise() {
    let no_exp = hs256(&with(json!({"exp": null})));
    assert_eq!(refused(&hs_verifier(), &no_exp), JwtRejection::MissingExp);

    // jsonwebtoken counts an `exp` that is not a NumericDate as missing.
    let not_a_date = hs256(&with(json!({"exp": "tomorrow"})));
    assert_eq!(
        refused(&hs_verifier(), &not_a_date),
        JwtRejection::MissingExp
    );

    let lenient = verifier(&JwtConfig {
        require_exp: false,
        ..secret_config()
    });
    assert_eq!(lenient.verify(&no_exp).unwrap().expires_at, None);
    assert_eq!(refused(&lenient, &not_a_date), JwtRejection::Malformed);
    let expired = hs256(&with(json!({"exp": now() - 120})));
    assert_eq!(
        refused(&lenient, &expired),
        JwtRejection::Expired,
        "still checked when present"
    );
}

#[test]
fn an_exp_beyond_representable_time_never_expires() {
    let lenient = verifier(&JwtConfig {
        require_exp: false,
        ..secret_config()
    });
    for exp in [u64::MAX, i64::MAX as u64, i64::MAX as u64 - 10] {
        let grant = lenient
            .verify(&hs256(&with(json!({ "exp": exp }))))
            .unwrap();
        assert_eq!(grant.expires_at, None, "{exp}");
    }
}

#[test]
fn the_issuer_is_checked_only_when_configured() {
    let strict = verifier(&JwtConfig {
        issuer: Some("https://cms.example".into()),
        ..secret_config()
    });
    assert!(strict
        .verify(&hs256(&with(json!({"iss": "https://cms.example"}))))
        .is_ok());
    let other = hs256(&with(json!({"iss": "https://evil.example"})));
    assert_eq!(refused(&strict, &other), JwtRejection::WrongIssuer);
    assert_eq!(
        refused(&strict, &hs256(&claims())),
        JwtRejection::WrongIssuer,
        "missing"
    );
    assert!(hs_verifier().verify(&other).is_ok());
}

#[test]
fn the_audience_is_checked_only_when_configured() {
    let strict = verifier(&JwtConfig {
        audience: Some(vec!["push".into(), "bridge".into()]),
        ..secret_config()
    });
    assert!(strict.verify(&hs256(&with(json!({"aud": "push"})))).is_ok());
    assert!(strict
        .verify(&hs256(&with(json!({"aud": ["x", "bridge"]}))))
        .is_ok());
    let other = hs256(&with(json!({"aud": "x"})));
    assert_eq!(refused(&strict, &other), JwtRejection::WrongAudience);
    assert_eq!(
        refused(&strict, &hs256(&claims())),
        JwtRejection::WrongAudience,
        "missing"
    );
    // jsonwebtoken's default would refuse any `aud` when none is configured.
    assert!(hs_verifier().verify(&other).is_ok());
}

#[test]
fn the_topics_claim_is_a_list_or_one_pattern_else_refused() {
    let hs = hs_verifier();
    let topics = |value: Value| hs.verify(&hs256(&with(json!({"topics": value}))));
    assert_eq!(
        topics(json!("article:*")).unwrap().patterns,
        vec![p("article:*")]
    );
    assert_eq!(
        topics(json!(["a", "b:*"])).unwrap().patterns,
        vec![p("a"), p("b:*")]
    );
    assert_eq!(topics(json!([])).unwrap().patterns, Vec::<Pattern>::new());
    for bad in [
        json!("a b"),
        json!(""),
        json!(["a", "b::c"]),
        json!(5),
        json!(["a", 7]),
        json!({"a": 1}),
    ] {
        assert_eq!(
            topics(bad.clone()).unwrap_err(),
            JwtRejection::BadTopicsClaim,
            "{bad}"
        );
    }
    // `null` is refused, not read as "absent" (which would permit the default: all).
    let null = raw_hs256(
        br#"{"alg":"HS256"}"#,
        json!({"exp": now() + 60, "topics": null})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(refused(&hs, &null), JwtRejection::BadTopicsClaim);

    let missing = hs256(&with(json!({"topics": null})));
    assert_eq!(
        hs.verify(&missing).unwrap().patterns,
        vec![Pattern::everything()]
    );
    let custom = verifier(&JwtConfig {
        topics_claim: "scope".into(),
        default_topics: vec![p("public")],
        ..secret_config()
    });
    assert_eq!(custom.verify(&missing).unwrap().patterns, vec![p("public")]);
    let scoped = hs256(&with(json!({"scope": ["x:*"]})));
    assert_eq!(custom.verify(&scoped).unwrap().patterns, vec![p("x:*")]);
}

fn jwk(key: &TestKey, algorithm: Algorithm, kid: &str, declare_alg: bool) -> Jwk {
    let mut jwk = Jwk::from_encoding_key(&signing_key(algorithm, key), algorithm).unwrap();
    jwk.common.key_id = Some(kid.into());
    if !declare_alg {
        jwk.common.key_algorithm = None;
    }
    jwk
}

fn jwks_config(files: &Files, keys: Vec<Jwk>, algorithms: &[&str]) -> JwtConfig {
    let set = serde_json::to_string(&JwkSet { keys }).unwrap();
    JwtConfig {
        algorithms: algorithms.iter().map(|a| a.to_string()).collect(),
        jwks_file: Some(files.write("jwks.json", set)),
        ..JwtConfig::default()
    }
}

#[test]
fn jwks_keys_are_selected_by_kid() {
    let files = Files::new();
    let keys = vec![
        jwk(rsa(), Algorithm::RS256, "rsa-1", true),
        jwk(p256(), Algorithm::ES256, "ec-1", false),
    ];
    let config = jwks_config(&files, keys, &["RS256", "RS512", "ES256", "HS256"]);
    let jwks = verifier(&config);
    let rs = signing_key(Algorithm::RS256, rsa());
    let es = signing_key(Algorithm::ES256, p256());
    assert!(jwks
        .verify(&sign(Algorithm::RS256, &rs, Some("rsa-1"), &claims()))
        .is_ok());
    assert!(jwks
        .verify(&sign(Algorithm::ES256, &es, Some("ec-1"), &claims()))
        .is_ok());

    let unknown = sign(Algorithm::RS256, &rs, Some("rsa-2"), &claims());
    assert_eq!(refused(&jwks, &unknown), JwtRejection::UnknownKid);
    let no_kid = sign(Algorithm::RS256, &rs, None, &claims());
    assert_eq!(
        refused(&jwks, &no_kid),
        JwtRejection::UnknownKid,
        "two keys: kid needed"
    );
    // The kid names an RSA key, the token an EC algorithm.
    let crossed = sign(Algorithm::ES256, &es, Some("rsa-1"), &claims());
    assert_eq!(refused(&jwks, &crossed), JwtRejection::AlgorithmNotAllowed);
    // The JWK says RS256; RS512 is configured but conflicts with the key's alg.
    let rs512 = sign(Algorithm::RS512, &rs, Some("rsa-1"), &claims());
    assert_eq!(refused(&jwks, &rs512), JwtRejection::AlgorithmNotAllowed);
    // HS256 is configured, but never with an RSA key's bytes as the secret.
    let confused = EncodingKey::from_secret(&rsa().public);
    let token = sign(Algorithm::HS256, &confused, Some("rsa-1"), &claims());
    assert_eq!(refused(&jwks, &token), JwtRejection::AlgorithmNotAllowed);
}

#[test]
fn a_jwks_of_one_key_accepts_tokens_without_kid() {
    let files = Files::new();
    let config = jwks_config(
        &files,
        vec![jwk(ed25519(), Algorithm::EdDSA, "ed", true)],
        &["EdDSA"],
    );
    let jwks = verifier(&config);
    let key = signing_key(Algorithm::EdDSA, ed25519());
    assert!(jwks
        .verify(&sign(Algorithm::EdDSA, &key, None, &claims()))
        .is_ok());
    let other = sign(Algorithm::EdDSA, &key, Some("other"), &claims());
    assert_eq!(refused(&jwks, &other), JwtRejection::UnknownKid);
}

#[test]
fn jwks_files_are_checked_at_start() {
    let files = Files::new();
    let rsa_jwk = || jwk(rsa(), Algorithm::RS256, "k", true);
    let write = |json: Value| JwtConfig {
        algorithms: vec!["RS256".into()],
        jwks_file: Some(files.write("jwks.json", json.to_string())),
        ..JwtConfig::default()
    };
    let mut wrong_alg = serde_json::to_value(rsa_jwk()).unwrap();
    wrong_alg["alg"] = json!("ES256");
    let mut encryption = serde_json::to_value(rsa_jwk()).unwrap();
    encryption["use"] = json!("enc");
    let cases = [
        (json!("not a jwks"), "not a JWKS document"),
        (
            json!({"keys": [rsa_jwk(), rsa_jwk()]}),
            "two keys have the kid",
        ),
        (
            json!({"keys": [wrong_alg]}),
            "cannot be used with a RSA key",
        ),
        (json!({"keys": [encryption]}), "no key usable"),
        (
            json!({"keys": [{"kty": "RSA", "kid": "x"}]}),
            "not a valid RSA key",
        ),
        (
            json!({"keys": [jwk(p256(), Algorithm::ES256, "ec", true)]}),
            "no key in it can verify",
        ),
    ];
    for (json, expected) in cases {
        let err = config_error(&write(json));
        assert!(matches!(err, JwtError::InvalidJwks { .. }), "{err}");
        assert!(err.to_string().contains(expected), "{err}");
        assert!(err.to_string().contains("jwks.json"), "{err}");
    }
    // Keys of unknown types are skipped; a symmetric JWK works for HS256.
    let oct = json!({"kty": "oct", "kid": "s", "k": URL_SAFE_NO_PAD.encode(SECRET)});
    let config = JwtConfig {
        algorithms: vec!["HS256".into()],
        ..write(json!({"keys": [{"kty": "XYZ", "kid": "q"}, oct]}))
    };
    let token = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(SECRET.as_bytes()),
        Some("s"),
        &claims(),
    );
    assert!(verifier(&config).verify(&token).is_ok());
    let missing = JwtConfig {
        jwks_file: Some("/nonexistent/jwks.json".into()),
        ..JwtConfig::default()
    };
    assert!(config_error(&missing)
        .to_string()
        .contains("/nonexistent/jwks.json"));
}

#[test]
fn a_secret_file_loses_its_trailing_newline() {
    let files = Files::new();
    for contents in [
        format!("{SECRET}\n"),
        format!("{SECRET}\r\n"),
        SECRET.to_string(),
    ] {
        let config = JwtConfig {
            secret_file: Some(files.write("secret", &contents)),
            ..JwtConfig::default()
        };
        assert!(
            verifier(&config).verify(&hs256(&claims())).is_ok(),
            "{contents:?}"
        );
    }
}

#[test]
fn configuration_errors_name_the_key_and_file() {
    let files = Files::new();
    let garbage = files.write("garbage.pem", "hello");
    let private = files.write("private.pem", &rsa().private);
    let cases: Vec<(JwtConfig, &str)> = vec![
        (
            JwtConfig {
                algorithms: vec![],
                ..secret_config()
            },
            "auth.jwt.algorithms is empty",
        ),
        (
            JwtConfig {
                algorithms: vec!["HS999".into()],
                ..secret_config()
            },
            "\"HS999\" is not a supported",
        ),
        (JwtConfig::default(), "auth.jwt has no key"),
        (
            JwtConfig {
                jwks_file: Some("/x".into()),
                ..secret_config()
            },
            "more than one key source (secret, jwks_file)",
        ),
        (
            JwtConfig {
                secret_file: Some("/nonexistent/secret".into()),
                ..JwtConfig::default()
            },
            "cannot read auth.jwt.secret_file /nonexistent/secret",
        ),
        (
            JwtConfig {
                secret: Some(String::new()),
                ..JwtConfig::default()
            },
            "auth.jwt.secret is empty",
        ),
        (
            JwtConfig {
                secret_file: Some(files.write("empty", "\n")),
                ..JwtConfig::default()
            },
            "is empty",
        ),
        (
            JwtConfig {
                public_key_file: Some(garbage),
                algorithms: vec!["RS256".into()],
                ..JwtConfig::default()
            },
            "garbage.pem: no PEM block",
        ),
        (
            JwtConfig {
                public_key_file: Some(private),
                algorithms: vec!["RS256".into()],
                ..JwtConfig::default()
            },
            "is a private key",
        ),
        (
            pem_config(&files, rsa(), &["HS256"]),
            "lists HS256, which the key of auth.jwt.public_key_file",
        ),
        (pem_config(&files, p256(), &["ES384"]), "lists ES384"),
        (pem_config(&files, ed25519(), &["RS256"]), "it fits EdDSA"),
        (
            JwtConfig {
                algorithms: vec!["RS256".into()],
                ..secret_config()
            },
            "key of auth.jwt.secret",
        ),
        (
            JwtConfig {
                leeway: Duration::from_secs(7200),
                ..secret_config()
            },
            "auth.jwt.leeway is 2h",
        ),
        (
            JwtConfig {
                topics_claim: String::new(),
                ..secret_config()
            },
            "auth.jwt.topics_claim is empty",
        ),
        (
            JwtConfig {
                audience: Some(vec![]),
                ..secret_config()
            },
            "auth.jwt.audience",
        ),
        (
            JwtConfig {
                issuer: Some(String::new()),
                ..secret_config()
            },
            "auth.jwt.issuer is empty",
        ),
    ];
    for (config, expected) in cases {
        let message = config_error(&config).to_string();
        assert!(message.contains(expected), "{message:?} lacks {expected:?}");
    }
}

#[test]
fn minted_tokens_verify_under_the_same_configuration() {
    let config = JwtConfig {
        algorithms: vec!["HS512".into(), "HS256".into()],
        issuer: Some("push-bridge".into()),
        audience: Some(vec!["clients".into()]),
        ..secret_config()
    };
    let verifier = verifier(&config);
    let topics = [p("a"), p("b:*")];
    let token = verifier
        .mint(&topics, Duration::from_secs(3600), Some("ops"))
        .unwrap();
    assert_eq!(
        jsonwebtoken::decode_header(&token).unwrap().alg,
        Algorithm::HS512
    );
    let grant = verifier.verify(&token).unwrap();
    assert_eq!(grant.subject.as_deref(), Some("ops"));
    assert_eq!(grant.patterns, topics);
    let expires = grant
        .expires_at
        .unwrap()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        (now() + 3600 - 2..=now() + 3600).contains(&expires),
        "{expires}"
    );

    let short = verifier
        .mint(&topics, Duration::from_millis(10), None)
        .unwrap();
    assert!(verifier.verify(&short).unwrap().subject.is_none());
    assert!(matches!(
        verifier.mint(&topics, Duration::ZERO, None),
        Err(JwtError::ZeroTtl)
    ));

    let files = Files::new();
    let rs = JwtVerifier::from_config(&pem_config(&files, rsa(), &["RS256"])).unwrap();
    let err = rs.mint(&topics, Duration::from_secs(60), None).unwrap_err();
    assert!(matches!(err, JwtError::NoSecret(_)), "{err}");
    assert!(err.to_string().contains("auth.jwt.secret_file"), "{err}");
}

#[test]
fn looks_like_jwt_is_three_base64url_parts() {
    assert!(JwtVerifier::looks_like_jwt(&hs256(&claims())));
    assert!(JwtVerifier::looks_like_jwt("a.b."));
    for not in [
        "",
        "9f86d081884c7d659a2feaa0c55ad015",
        "a.b",
        "a.b.c.d",
        "a..c",
        ".b.c",
        "a+b.c.d",
        "a=.b.c",
        "a b.c.d",
    ] {
        assert!(!JwtVerifier::looks_like_jwt(not), "{not:?}");
    }
}

#[test]
fn rejection_reasons_are_distinct_metric_labels() {
    let all = [
        JwtRejection::Malformed,
        JwtRejection::BadSignature,
        JwtRejection::AlgorithmNotAllowed,
        JwtRejection::Expired,
        JwtRejection::NotYetValid,
        JwtRejection::MissingExp,
        JwtRejection::WrongIssuer,
        JwtRejection::WrongAudience,
        JwtRejection::UnknownKid,
        JwtRejection::BadTopicsClaim,
    ];
    let reasons: HashSet<&str> = all.iter().map(JwtRejection::reason).collect();
    assert_eq!(reasons.len(), all.len());
    assert!(reasons
        .iter()
        .all(|r| r.starts_with("jwt_") && r.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')));
    assert!(all.iter().all(|r| !r.message().is_empty()));
    assert_eq!(JwtRejection::Expired.reason(), "jwt_expired");
}

#[test]
fn debug_output_never_shows_the_secret() {
    let shown = format!("{:?}", hs_verifier());
    assert!(
        shown.contains("HS256") && !shown.contains(SECRET),
        "{shown}"
    );
}
