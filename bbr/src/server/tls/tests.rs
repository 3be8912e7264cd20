//! Loading certificates: good pairs, and errors that name the file and the fix.

use super::*;

fn write_pair(dir: &Path, names: &[&str]) -> String {
    let pair =
        rcgen::generate_simple_self_signed(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
    std::fs::write(dir.join(CERT_FILE), pair.cert.pem()).unwrap();
    std::fs::write(dir.join(KEY_FILE), pair.signing_key.serialize_pem()).unwrap();
    pair.cert.pem()
}

#[test]
fn a_self_signed_certificate_speaks_h2() {
    let config = self_signed().unwrap();
    assert_eq!(config.alpn_protocols, [b"h2".to_vec()]);
}

#[test]
fn a_valid_pair_loads() {
    let dir = tempfile::tempdir().unwrap();
    write_pair(dir.path(), &["localhost"]);
    let config = load_dir(dir.path()).unwrap();
    assert_eq!(config.alpn_protocols, [b"h2".to_vec()]);
}

#[test]
fn missing_or_broken_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let err = load_dir(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains(CERT_FILE) && err.contains("--cert-path"),
        "{err}"
    );

    write_pair(dir.path(), &["localhost"]);
    std::fs::write(dir.path().join(KEY_FILE), "not a key").unwrap();
    let err = load_dir(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains(KEY_FILE) && err.contains("PRIVATE KEY"),
        "{err}"
    );

    std::fs::write(dir.path().join(CERT_FILE), "").unwrap();
    let err = load_dir(dir.path()).unwrap_err().to_string();
    assert!(err.contains("no PEM CERTIFICATE"), "{err}");
}

#[test]
fn a_key_from_another_pair_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_pair(dir.path(), &["localhost"]);
    let other = tempfile::tempdir().unwrap();
    write_pair(other.path(), &["localhost"]);
    std::fs::copy(other.path().join(KEY_FILE), dir.path().join(KEY_FILE)).unwrap();
    let err = load_dir(dir.path()).unwrap_err().to_string();
    assert!(err.contains("do not match"), "{err}");
}
