//! The history key layouts re-stated in `yrd_verify::keys` are the chaincode's.

#[test]
fn history_keys_match_the_chaincode() {
    for key in [&b""[..], b"c/r/R1", b"m/91310000000000001X", &[0, 255, 7]] {
        assert_eq!(
            yrd_verify::keys::history_count(key),
            yrd_chaincode::keys::history_count(key)
        );
        for index in [0, 1, 255, 256, u32::MAX] {
            assert_eq!(
                yrd_verify::keys::history_entry(key, index),
                yrd_chaincode::keys::history_entry(key, index)
            );
        }
    }
}
