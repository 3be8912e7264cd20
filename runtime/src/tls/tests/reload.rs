//! Reload: a new pair is served without a restart; a broken pair keeps the last good one and
//! is tried again until fixed, whatever the files' time stamps and lengths say.

use std::fs::File;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use super::super::reload::{Check, Watcher};
use super::*;

fn modified(path: &Path) -> SystemTime {
    std::fs::metadata(path).unwrap().modified().unwrap()
}

fn set_modified(path: &Path, time: SystemTime) {
    File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(time)
        .unwrap();
}

fn dir_source(dir: &Path, poll: Option<Duration>) -> CertSource {
    CertSource::Dir {
        path: dir.to_owned(),
        poll,
    }
}

fn is_broken(check: &Check, repeated: bool) -> bool {
    matches!(check, Check::Broken { repeated: r, .. } if *r == repeated)
}

/// The case the (modification time, length) stamp of BBR's and the webhook's old copies
/// missed: the stamp was recorded when a half-written pair failed, and the fix (a key written
/// by a tool that keeps time stamps, of the same length as the old key, as two P-256 keys
/// are) left the stamp as it was, so the fix was never loaded.
#[tokio::test]
async fn a_broken_pair_keeps_the_last_good_one_and_is_retried_until_fixed() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (pair("first"), pair("second"));
    write_pair(dir.path(), &first);
    let certificates = Certificates::load(&dir_source(dir.path(), None), Alpn::H2).unwrap();
    let mut watcher = Watcher::following(&certificates);
    assert_eq!(watcher.check(&certificates, dir.path()), Check::Unchanged);
    let key_path = dir.path().join(KEY_FILE);
    let old_key_time = modified(&key_path);

    // Half a rotation: the new certificate next to the old key.
    std::fs::write(dir.path().join(CERT_FILE), &second.cert_pem).unwrap();
    let kept = certificates.current();
    assert!(is_broken(&watcher.check(&certificates, dir.path()), false));
    assert!(is_broken(&watcher.check(&certificates, dir.path()), true));
    assert!(
        Arc::ptr_eq(&kept, &certificates.current()),
        "last good pair kept"
    );
    assert!(served_by(&certificates, &first.ca_pem).await);

    // The rotation completes with a key of the same length and the old key's time stamp.
    assert_eq!(first.key_pem.len(), second.key_pem.len());
    std::fs::write(&key_path, &second.key_pem).unwrap();
    set_modified(&key_path, old_key_time);
    assert_eq!(watcher.check(&certificates, dir.path()), Check::Reloaded);
    assert!(served_by(&certificates, &second.ca_pem).await);
    assert!(!served_by(&certificates, &first.ca_pem).await);
    assert_eq!(watcher.check(&certificates, dir.path()), Check::Unchanged);
}

/// The case the EPP's old copy (modification times only) missed.
#[tokio::test]
async fn a_rotation_that_keeps_the_time_stamps_is_seen() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (pair("first"), pair("second"));
    write_pair(dir.path(), &first);
    let times = [CERT_FILE, KEY_FILE].map(|name| modified(&dir.path().join(name)));
    let certificates = Certificates::load(&dir_source(dir.path(), None), Alpn::H2).unwrap();
    let mut watcher = Watcher::following(&certificates);
    write_pair(dir.path(), &second);
    for (name, time) in [CERT_FILE, KEY_FILE].iter().zip(times) {
        set_modified(&dir.path().join(name), time);
    }
    assert_eq!(watcher.check(&certificates, dir.path()), Check::Reloaded);
    assert!(served_by(&certificates, &second.ca_pem).await);
}

#[tokio::test]
async fn missing_files_keep_the_last_good_pair() {
    let dir = tempfile::tempdir().unwrap();
    let first = pair("first");
    write_pair(dir.path(), &first);
    let config = load_dir(dir.path(), Alpn::H2).unwrap();
    let certificates = Certificates::new(config);
    let mut watcher = Watcher::following(&certificates);
    std::fs::remove_file(dir.path().join(KEY_FILE)).unwrap();
    let check = watcher.check(&certificates, dir.path());
    assert!(is_broken(&check, false), "{check:?}");
    assert!(served_by(&certificates, &first.ca_pem).await);
    write_pair(dir.path(), &first);
    assert_eq!(watcher.check(&certificates, dir.path()), Check::Reloaded);
}

/// The reload task on a paused clock: nothing changes before a tick, a broken pair is
/// retried on every tick, and the fixed pair is served from the next tick on.
#[tokio::test(start_paused = true)]
async fn the_watch_task_reloads_on_its_ticks() {
    let poll = Duration::from_secs(10);
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (pair("first"), pair("second"));
    write_pair(dir.path(), &first);
    let cancel = CancellationToken::new();
    let certificates =
        Certificates::load_and_watch(&dir_source(dir.path(), Some(poll)), Alpn::H2, &cancel)
            .unwrap();
    let loaded = certificates.current();

    std::fs::write(dir.path().join(CERT_FILE), &second.cert_pem).unwrap();
    tokio::time::sleep(poll * 3 + Duration::from_secs(1)).await;
    assert!(
        Arc::ptr_eq(&loaded, &certificates.current()),
        "broken pair kept out"
    );

    std::fs::write(dir.path().join(KEY_FILE), &second.key_pem).unwrap();
    tokio::time::sleep(poll).await;
    assert!(
        served_by(&certificates, &second.ca_pem).await,
        "reloaded on the next tick"
    );
    cancel.cancel();
}

#[tokio::test(start_paused = true)]
async fn without_a_poll_interval_nothing_is_reloaded() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (pair("first"), pair("second"));
    write_pair(dir.path(), &first);
    let cancel = CancellationToken::new();
    let certificates =
        Certificates::load_and_watch(&dir_source(dir.path(), None), Alpn::H2, &cancel).unwrap();
    write_pair(dir.path(), &second);
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert!(served_by(&certificates, &first.ca_pem).await);
}

#[test]
fn a_reloaded_pair_offers_the_protocols_of_the_first() {
    let dir = tempfile::tempdir().unwrap();
    write_pair(dir.path(), &pair("first"));
    let certificates = Certificates::load(&dir_source(dir.path(), None), Alpn::Http1).unwrap();
    let mut watcher = Watcher::following(&certificates);
    write_pair(dir.path(), &pair("second"));
    assert_eq!(watcher.check(&certificates, dir.path()), Check::Reloaded);
    assert_eq!(
        certificates.current().alpn_protocols,
        [b"http/1.1".to_vec()]
    );
}

/// L2: the old copies stamped a version before loading it (BBR, the webhook) or watched the
/// modification time only (the EPP), and warned every second while a pair stayed bad. The
/// shared reload records a version only once it is served, sees content whatever the time
/// stamps say, and warns once per distinct failure: a key briefly missing in the middle of a
/// rotation (then put back exactly as it was, time stamp included) is picked up on the next
/// look.
#[tokio::test]
async fn l2_a_transient_failure_is_retried_and_reported_once() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (pair("first"), pair("second"));
    write_pair(dir.path(), &first);
    let certificates = Certificates::load(&dir_source(dir.path(), None), Alpn::H2).unwrap();
    let mut watcher = Watcher::following(&certificates);

    // The rotation lands, but the key is unreadable for a moment (moved aside here).
    write_pair(dir.path(), &second);
    let key_path = dir.path().join(KEY_FILE);
    let aside = dir.path().join("key.aside");
    let key_time = modified(&key_path);
    std::fs::rename(&key_path, &aside).unwrap();
    assert!(is_broken(&watcher.check(&certificates, dir.path()), false));
    // The same failure again is reported quietly (no warning per tick).
    assert!(is_broken(&watcher.check(&certificates, dir.path()), true));
    assert!(served_by(&certificates, &first.ca_pem).await);

    // Put back untouched: same bytes, same time stamp. It is loaded on the next look.
    std::fs::rename(&aside, &key_path).unwrap();
    assert_eq!(modified(&key_path), key_time);
    assert_eq!(watcher.check(&certificates, dir.path()), Check::Reloaded);
    assert!(served_by(&certificates, &second.ca_pem).await);
    assert_eq!(watcher.check(&certificates, dir.path()), Check::Unchanged);
}
