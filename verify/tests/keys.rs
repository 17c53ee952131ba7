//! The key layouts re-stated in `yrd_verify` are the chaincode's.

#[test]
fn history_keys_match_the_chaincode() {
    for key in [&b""[..], b"c/r/R1", b"m/91310000000000001X", &[0, 255, 7]] {
        for index in [0, 1, 255, 256, u32::MAX] {
            assert_eq!(
                yrd_verify::keys::history_entry(key, index),
                yrd_chaincode::keys::history_entry(key, index)
            );
        }
    }
}

#[test]
fn unauthenticated_prefixes_match_the_chaincode() {
    let keys: [&[u8]; 9] = [
        b"x/h/0123",
        b"x/e/99",
        b"h/c/c/r/R1",
        b"h/v/c/r/R1\0\0\0\0",
        b"c/r/R1",
        b"s/freeze",
        b"m/91310000000000001X",
        b"h/",
        b"x",
    ];
    for key in keys {
        let refused = yrd_verify::UNAUTHENTICATED_PREFIXES
            .iter()
            .any(|prefix| key.starts_with(prefix));
        assert_eq!(
            refused,
            !yrd_chaincode::keys::is_authenticated(key),
            "{}",
            String::from_utf8_lossy(key)
        );
    }
}

#[test]
fn keys_proven_by_history_match_the_chaincode() {
    let keys: [&[u8]; 16] = [
        b"m/91310000000000001X",
        b"k/0123",
        b"v/current",
        b"v/pending",
        b"c/r/R1",
        b"c/v/R1/\0\0\0\x01",
        b"c/s/S/R1",
        b"c/a/S/G/\x01",
        b"r/r/AR-1",
        b"r/i/0123",
        b"f/h/F/H",
        b"s/freeze",
        b"h/v/c/r/R1\0\0\0\0",
        b"h/c/c/r/R1",
        b"x/h/0123",
        b"",
    ];
    for key in keys {
        assert_eq!(
            yrd_verify::keys::is_proven_by_history(key),
            yrd_chaincode::keys::is_proven_by_history(key),
            "{}",
            String::from_utf8_lossy(key)
        );
    }
    assert!(yrd_verify::keys::is_proven_by_history(b"c/r/R1"));
    assert!(!yrd_verify::keys::is_proven_by_history(b"v/current"));
    assert!(!yrd_verify::keys::is_proven_by_history(
        b"h/v/c/r/R1\0\0\0\0"
    ));
    assert_eq!(
        yrd_verify::keys::UNVERSIONED_PREFIXES,
        yrd_chaincode::keys::UNVERSIONED_PREFIXES
    );
}
