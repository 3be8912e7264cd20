use super::*;

fn write_pair(dir: &Path, name: &str) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec![name.to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    std::fs::write(dir.join(CERT_FILE), cert.pem()).unwrap();
    std::fs::write(dir.join(KEY_FILE), key.serialize_pem()).unwrap();
}

#[test]
fn self_signed_offers_h2() {
    let config = self_signed().unwrap();
    assert_eq!(config.alpn_protocols, [b"h2".to_vec()]);
}

#[test]
fn cert_path_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = from_dir(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains(CERT_FILE) && err.contains("--cert-path"),
        "{err}"
    );
    std::fs::write(dir.path().join(CERT_FILE), "not pem").unwrap();
    std::fs::write(dir.path().join(KEY_FILE), "not pem").unwrap();
    let err = from_dir(dir.path()).unwrap_err().to_string();
    assert!(err.contains(CERT_FILE), "{err}");
    write_pair(dir.path(), "a");
    std::fs::write(dir.path().join(KEY_FILE), "garbage").unwrap();
    let err = from_dir(dir.path()).unwrap_err().to_string();
    assert!(err.contains(KEY_FILE), "{err}");
    write_pair(dir.path(), "a");
    assert!(from_dir(dir.path()).is_ok());
}

#[tokio::test]
async fn a_changed_pair_is_reloaded_and_a_bad_one_ignored() {
    let dir = tempfile::tempdir().unwrap();
    write_pair(dir.path(), "first");
    let cancel = CancellationToken::new();
    let source = CertSource::Dir {
        path: dir.path().to_owned(),
        poll: Some(Duration::from_millis(20)),
    };
    let tls = Tls::load(&source, &cancel).unwrap();
    let first = tls.current();
    // A bad write is ignored: the old config stays.
    std::fs::write(dir.path().join(CERT_FILE), "half written").unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(Arc::ptr_eq(&first, &tls.current()));
    write_pair(dir.path(), "second");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while Arc::ptr_eq(&first, &tls.current()) {
        assert!(tokio::time::Instant::now() < deadline, "not reloaded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cancel.cancel();
}
