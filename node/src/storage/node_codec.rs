//! The stored form of state tree nodes: internal nodes in a compact encoding, leaves and the
//! null node in borsh, as `jmt` defines them.
//!
//! Internal nodes are most of the bytes a block writes: every update rewrites the internal
//! node at each level above the changed leaf. Their borsh form spends 18 bytes of each child
//! on a fixed-width version and leaf count, a byte on each empty slot, and 16 bytes on counts
//! that follow from the children. The compact form keeps the same content in about three
//! quarters of the bytes:
//!
//! ```text
//! 0x11                       tag (borsh's tags of Node are 0 null, 1 internal, 2 leaf)
//! u16 LE                     which of the 16 children are present
//! u16 LE                     which of the present children are leaves
//! per present child, in index order:
//!     [u8; 32]               its hash
//!     varint                 its version
//!     varint                 its leaf count, for an internal child only
//! varint                     the node's leaf count
//! ```
//!
//! Varints are unsigned LEB128 in their shortest form, so every node has exactly one
//! encoding. `jmt` exports no constructor of internal nodes, so a compact node is decoded by
//! writing its borsh form and decoding that: the two forms carry the same fields. Nodes stored
//! in borsh by earlier releases decode as they are.

use jmt::storage::Node;

/// Tag of a compact internal node.
const COMPACT_INTERNAL: u8 = 0x11;
/// Borsh's tag of `Node::Internal`.
const BORSH_INTERNAL: u8 = 1;
/// Children of an internal node.
const CHILDREN: usize = 16;
/// Bytes of a child's hash.
const HASH_BYTES: usize = 32;
/// Longest borsh form of an internal node: a tag, 16 children of a tag, a hash, a version, a
/// node-type tag and a leaf count, and the two counts of the node.
const BORSH_INTERNAL_MAX: usize = 1 + CHILDREN * (1 + HASH_BYTES + 8 + 1 + 8) + 8 + 8;

/// Why stored node bytes did not decode, or a node did not encode.
#[derive(Debug, thiserror::Error)]
pub enum NodeCodecError {
    /// The bytes end before the node does.
    #[error("node bytes end early, reading {0}")]
    Truncated(&'static str),
    /// A varint is longer than a u64 or not in its shortest form.
    #[error("bad varint in {what}: {reason}")]
    Varint {
        /// Which field.
        what: &'static str,
        /// What was wrong with it.
        reason: unsigned_varint::decode::Error,
    },
    /// A field holds a value no node has.
    #[error("bad node: {0}")]
    Invalid(&'static str),
    /// Bytes are left after the node.
    #[error("{0} bytes left after the node")]
    Trailing(usize),
    /// The borsh form of the node does not decode or encode.
    #[error("borsh: {0}")]
    Borsh(#[from] std::io::Error),
}

/// Reads from the front of a byte slice.
struct Cursor<'a> {
    bytes: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, count: usize, what: &'static str) -> Result<&'a [u8], NodeCodecError> {
        if self.bytes.len() < count {
            return Err(NodeCodecError::Truncated(what));
        }
        let (head, tail) = self.bytes.split_at(count);
        self.bytes = tail;
        Ok(head)
    }

    fn byte(&mut self, what: &'static str) -> Result<u8, NodeCodecError> {
        Ok(self.take(1, what)?[0])
    }

    fn u16_le(&mut self, what: &'static str) -> Result<u16, NodeCodecError> {
        let bytes = self.take(2, what)?;
        Ok(u16::from_le_bytes([bytes[0], bytes[1]]))
    }

    fn u64_le(&mut self, what: &'static str) -> Result<u64, NodeCodecError> {
        let mut array = [0u8; 8];
        array.copy_from_slice(self.take(8, what)?);
        Ok(u64::from_le_bytes(array))
    }

    fn varint(&mut self, what: &'static str) -> Result<u64, NodeCodecError> {
        let (value, rest) = unsigned_varint::decode::u64(self.bytes).map_err(|reason| {
            if matches!(reason, unsigned_varint::decode::Error::Insufficient) {
                NodeCodecError::Truncated(what)
            } else {
                NodeCodecError::Varint { what, reason }
            }
        })?;
        self.bytes = rest;
        Ok(value)
    }

    fn finish(self) -> Result<(), NodeCodecError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(NodeCodecError::Trailing(self.bytes.len()))
        }
    }
}

fn put_varint(out: &mut Vec<u8>, value: u64) {
    let mut buffer = unsigned_varint::encode::u64_buffer();
    out.extend_from_slice(unsigned_varint::encode::u64(value, &mut buffer));
}

/// Appends the stored form of `node` to `out`; `scratch` is a buffer the call may reuse.
pub fn encode_node(
    node: &Node,
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
) -> Result<(), NodeCodecError> {
    if !matches!(node, Node::Internal(_)) {
        borsh::to_writer(out, node)?;
        return Ok(());
    }
    scratch.clear();
    borsh::to_writer(&mut *scratch, node)?;
    compact_from_borsh(scratch, out)
}

/// Turns the borsh form of an internal node into its compact form.
fn compact_from_borsh(borsh: &[u8], out: &mut Vec<u8>) -> Result<(), NodeCodecError> {
    let mut input = Cursor { bytes: borsh };
    if input.byte("node tag")? != BORSH_INTERNAL {
        return Err(NodeCodecError::Invalid("not an internal node"));
    }
    let start = out.len();
    out.extend_from_slice(&[COMPACT_INTERNAL, 0, 0, 0, 0]);
    let (mut present, mut leaves) = (0u16, 0u16);
    for index in 0..CHILDREN {
        match input.byte("child tag")? {
            0 => continue,
            1 => {}
            _ => return Err(NodeCodecError::Invalid("child tag")),
        }
        present |= 1 << index;
        out.extend_from_slice(input.take(HASH_BYTES, "child hash")?);
        put_varint(out, input.u64_le("child version")?);
        match input.byte("child type")? {
            0 => leaves |= 1 << index,
            1 => put_varint(out, input.u64_le("child leaf count")?),
            _ => return Err(NodeCodecError::Invalid("child type")),
        }
    }
    if input.u64_le("child count")? != u64::from(present.count_ones()) {
        return Err(NodeCodecError::Invalid("child count"));
    }
    put_varint(out, input.u64_le("leaf count")?);
    input.finish()?;
    out[start + 1..start + 3].copy_from_slice(&present.to_le_bytes());
    out[start + 3..start + 5].copy_from_slice(&leaves.to_le_bytes());
    Ok(())
}

/// Decodes stored node bytes: the compact form of an internal node, or any node in borsh.
pub fn decode_node(bytes: &[u8]) -> Result<Node, NodeCodecError> {
    if bytes.first() != Some(&COMPACT_INTERNAL) {
        return Ok(borsh::from_slice(bytes)?);
    }
    let mut borsh = Vec::with_capacity(BORSH_INTERNAL_MAX);
    borsh_from_compact(bytes, &mut borsh)?;
    Ok(borsh::from_slice(&borsh)?)
}

/// Turns the compact form of an internal node into its borsh form.
fn borsh_from_compact(compact: &[u8], out: &mut Vec<u8>) -> Result<(), NodeCodecError> {
    let mut input = Cursor { bytes: compact };
    if input.byte("node tag")? != COMPACT_INTERNAL {
        return Err(NodeCodecError::Invalid("not a compact internal node"));
    }
    let present = input.u16_le("children")?;
    let leaves = input.u16_le("leaf children")?;
    if leaves & !present != 0 {
        return Err(NodeCodecError::Invalid("a leaf child that is not present"));
    }
    out.push(BORSH_INTERNAL);
    for index in 0..CHILDREN {
        if present & (1 << index) == 0 {
            out.push(0);
            continue;
        }
        out.push(1);
        out.extend_from_slice(input.take(HASH_BYTES, "child hash")?);
        out.extend_from_slice(&input.varint("child version")?.to_le_bytes());
        if leaves & (1 << index) != 0 {
            out.push(0);
        } else {
            out.push(1);
            out.extend_from_slice(&input.varint("child leaf count")?.to_le_bytes());
        }
    }
    out.extend_from_slice(&u64::from(present.count_ones()).to_le_bytes());
    out.extend_from_slice(&input.varint("leaf count")?.to_le_bytes());
    input.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jmt::storage::LeafNode;
    use jmt::{KeyHash, ValueHash};
    use proptest::prelude::*;

    /// A child: its hash byte, version, and leaf count (`None` for a leaf).
    type TestChild = (u8, u64, Option<u64>);

    /// The borsh form of an internal node with these children (`jmt` builds internal nodes
    /// only inside the crate).
    fn borsh_internal(children: &[Option<TestChild>; 16], leaf_count: u64) -> Vec<u8> {
        let mut bytes = vec![BORSH_INTERNAL];
        for child in children {
            match child {
                None => bytes.push(0),
                Some((hash, version, count)) => {
                    bytes.push(1);
                    bytes.extend_from_slice(&[*hash; 32]);
                    bytes.extend_from_slice(&version.to_le_bytes());
                    match count {
                        None => bytes.push(0),
                        Some(count) => {
                            bytes.push(1);
                            bytes.extend_from_slice(&count.to_le_bytes());
                        }
                    }
                }
            }
        }
        let present = children.iter().flatten().count() as u64;
        bytes.extend_from_slice(&present.to_le_bytes());
        bytes.extend_from_slice(&leaf_count.to_le_bytes());
        bytes
    }

    fn encode(node: &Node) -> Vec<u8> {
        let mut out = Vec::new();
        encode_node(node, &mut out, &mut Vec::new()).expect("encode");
        out
    }

    /// Versions and leaf counts: mostly of the sizes a chain reaches, some of any size.
    fn count() -> impl Strategy<Value = u64> {
        prop_oneof![4 => 0..1u64 << 24, 1 => any::<u64>()]
    }

    fn children() -> impl Strategy<Value = [Option<TestChild>; 16]> {
        prop::array::uniform16(prop::option::of((
            any::<u8>(),
            count(),
            prop::option::of(count()),
        )))
    }

    proptest! {
        #[test]
        fn internal_nodes_round_trip_in_fewer_bytes(
            children in children(),
            leaf_count in count(),
        ) {
            let borsh = borsh_internal(&children, leaf_count);
            let node: Node = borsh::from_slice(&borsh).expect("a node");
            let stored = encode(&node);
            prop_assert_eq!(stored[0], COMPACT_INTERNAL);
            // A varint of a value below 2^56 takes at most the 8 bytes of its fixed form.
            let small = children
                .iter()
                .flatten()
                .flat_map(|(_, version, count)| [Some(*version), *count])
                .flatten()
                .chain([leaf_count])
                .all(|value| value < 1 << 56);
            if small {
                prop_assert!(stored.len() < borsh.len());
            }
            prop_assert_eq!(decode_node(&stored).expect("decode"), node);
        }

        #[test]
        fn cut_or_extended_compact_nodes_are_refused(
            children in children(),
            leaf_count in any::<u64>(),
            cut in any::<prop::sample::Index>(),
            extra in any::<u8>(),
        ) {
            let node: Node =
                borsh::from_slice(&borsh_internal(&children, leaf_count)).expect("a node");
            let stored = encode(&node);
            let cut = cut.index(stored.len());
            prop_assert!(decode_node(&stored[..cut]).is_err());
            let mut longer = stored.clone();
            longer.push(extra);
            prop_assert!(decode_node(&longer).is_err());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..700)) {
            let mut tagged = vec![COMPACT_INTERNAL];
            tagged.extend_from_slice(&bytes);
            let _ = decode_node(&tagged);
            let _ = decode_node(&bytes);
        }
    }

    #[test]
    fn a_full_node_of_recent_versions_shrinks_by_a_quarter() {
        let children: [Option<TestChild>; 16] =
            std::array::from_fn(|index| Some((index as u8, 300_000, Some(40))));
        let borsh = borsh_internal(&children, 640);
        let node: Node = borsh::from_slice(&borsh).expect("a node");
        let stored = encode(&node);
        assert_eq!(borsh.len(), 817);
        // 5 bytes of header, 16 children of 32 + 3 + 1 bytes, and a leaf count of 2 bytes.
        assert_eq!(stored.len(), 5 + 16 * 36 + 2);
    }

    #[test]
    fn leaves_and_the_null_node_stay_in_borsh() {
        let leaf = Node::Leaf(LeafNode::new(KeyHash([3; 32]), ValueHash([4; 32])));
        for node in [leaf, Node::Null] {
            let stored = encode(&node);
            assert_eq!(stored, borsh::to_vec(&node).expect("borsh"));
            assert_eq!(decode_node(&stored).expect("decode"), node);
        }
    }

    #[test]
    fn internal_nodes_stored_in_borsh_still_decode() {
        let mut children: [Option<TestChild>; 16] = Default::default();
        children[2] = Some((9, 5, None));
        children[11] = Some((8, 4, Some(3)));
        let borsh = borsh_internal(&children, 4);
        let node: Node = borsh::from_slice(&borsh).expect("a node");
        assert_eq!(decode_node(&borsh).expect("decode"), node);
    }

    #[test]
    fn non_minimal_varints_and_stray_leaf_bits_are_refused() {
        let mut children: [Option<TestChild>; 16] = Default::default();
        children[0] = Some((1, 5, None));
        let node: Node = borsh::from_slice(&borsh_internal(&children, 1)).expect("a node");
        let stored = encode(&node);
        assert_eq!(
            stored,
            [&[COMPACT_INTERNAL, 1, 0, 1, 0][..], &[1; 32], &[5, 1]].concat()
        );

        let mut padded = stored[..37].to_vec();
        padded.extend_from_slice(&[0x85, 0x00, 1]);
        assert!(matches!(
            decode_node(&padded),
            Err(NodeCodecError::Varint { .. })
        ));

        let mut stray = stored.clone();
        stray[3] = 0b11;
        assert!(matches!(
            decode_node(&stray),
            Err(NodeCodecError::Invalid(_))
        ));
    }
}
