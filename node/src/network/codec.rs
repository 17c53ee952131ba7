//! The wire codec of the block-sync protocol `/yrd/sync/1`.
//!
//! Each message is one frame: a 4-byte big-endian length, then that many bytes of protobuf
//! (`v1::BlocksRequest` one way, `v1::BlocksResponse` the other). Invariants: a frame longer than
//! its cap ([`REQUEST_BYTES_MAX`], [`RESPONSE_BYTES_MAX`]) is refused from its length prefix alone,
//! before any byte of it is read or allocated; buffers grow only as bytes actually arrive; a
//! response is kept as the exact encoded bytes of each `CommittedBlock`, never re-encoded.

use std::io;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use prost::Message as _;
use yrd_proto::{limits, v1};

/// The protocol name of block sync.
pub const SYNC_PROTOCOL: StreamProtocol = StreamProtocol::new("/yrd/sync/1");
/// Largest encoded `BlocksRequest` frame body, in bytes: room for the hashes of a whole block's
/// transactions (34 bytes each with their field key and length).
pub const REQUEST_BYTES_MAX: usize = 1024 + limits::BLOCK_TRANSACTIONS_MAX * 34;
/// Largest encoded `BlocksResponse` frame body, in bytes.
pub const RESPONSE_BYTES_MAX: usize = limits::MESSAGE_BYTES_MAX;
/// Bytes of the length prefix of a frame.
const LENGTH_PREFIX_BYTES: usize = 4;
/// Largest first allocation for a frame body; the buffer grows as bytes arrive.
const READ_CHUNK_BYTES: usize = 64 * 1024;
/// Protobuf field number of `BlocksResponse.blocks`.
const BLOCKS_FIELD_NUMBER: u32 = 1;

const _: () = assert!(RESPONSE_BYTES_MAX <= u32::MAX as usize);
const _: () = assert!(limits::BLOCK_BYTES_MAX < RESPONSE_BYTES_MAX);

/// The block-sync codec: requests are `v1::BlocksRequest`, responses the encoded
/// `v1::CommittedBlock` values of a `v1::BlocksResponse`, in height order.
#[derive(Debug, Clone, Copy, Default)]
pub struct SyncCodec;

/// Bytes one encoded block takes inside an encoded `BlocksResponse` (key, length, body).
pub fn response_entry_bytes(block_bytes: usize) -> usize {
    1 + prost::encoding::encoded_len_varint(block_bytes as u64) + block_bytes
}

/// Encodes blocks as a `BlocksResponse`; fails when the result would exceed
/// [`RESPONSE_BYTES_MAX`].
pub fn encode_response(blocks: &[Vec<u8>]) -> io::Result<Vec<u8>> {
    let length: usize = blocks.iter().map(|b| response_entry_bytes(b.len())).sum();
    if length > RESPONSE_BYTES_MAX {
        return Err(invalid_data(format!(
            "blocks response of {length} bytes exceeds the limit of {RESPONSE_BYTES_MAX} bytes"
        )));
    }
    let mut out = Vec::with_capacity(length);
    for block in blocks {
        prost::encoding::encode_key(
            BLOCKS_FIELD_NUMBER,
            prost::encoding::WireType::LengthDelimited,
            &mut out,
        );
        prost::encoding::encode_varint(block.len() as u64, &mut out);
        out.extend_from_slice(block);
    }
    Ok(out)
}

/// Splits an encoded `BlocksResponse` into the encoded bytes of its blocks. Any field other
/// than `blocks` is refused, as is a length running past the end.
pub fn decode_response(bytes: &[u8]) -> io::Result<Vec<Vec<u8>>> {
    let mut rest = bytes;
    let mut blocks = Vec::new();
    while !rest.is_empty() {
        let (field, wire_type) = prost::encoding::decode_key(&mut rest)
            .map_err(|e| invalid_data(format!("blocks response: bad field key: {e}")))?;
        if field != BLOCKS_FIELD_NUMBER || wire_type != prost::encoding::WireType::LengthDelimited {
            return Err(invalid_data(format!(
                "blocks response: unexpected field {field} of wire type {wire_type:?}"
            )));
        }
        let length = prost::encoding::decode_varint(&mut rest)
            .map_err(|e| invalid_data(format!("blocks response: bad block length: {e}")))?;
        let length = usize::try_from(length)
            .ok()
            .filter(|&l| l <= rest.len())
            .ok_or_else(|| {
                invalid_data(format!(
                    "blocks response: block of {length} bytes runs past the {} bytes left",
                    rest.len()
                ))
            })?;
        let (block, tail) = rest.split_at(length);
        blocks.push(block.to_vec());
        rest = tail;
    }
    Ok(blocks)
}

fn invalid_data(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Reads one frame whose body may be at most `max_bytes`; refuses a longer one from its prefix.
pub async fn read_frame<T>(io: &mut T, max_bytes: usize) -> io::Result<Vec<u8>>
where
    T: AsyncRead + Unpin + Send,
{
    let mut prefix = [0u8; LENGTH_PREFIX_BYTES];
    io.read_exact(&mut prefix).await?;
    let length = u32::from_be_bytes(prefix) as usize;
    if length > max_bytes {
        return Err(invalid_data(format!(
            "frame of {length} bytes exceeds the limit of {max_bytes} bytes"
        )));
    }
    let mut body = Vec::with_capacity(length.min(READ_CHUNK_BYTES));
    let read = io.take(length as u64).read_to_end(&mut body).await?;
    if read != length {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("frame announced {length} bytes but the stream ended after {read}"),
        ));
    }
    Ok(body)
}

/// Writes one frame; refuses a body longer than `max_bytes`.
pub async fn write_frame<T>(io: &mut T, body: &[u8], max_bytes: usize) -> io::Result<()>
where
    T: AsyncWrite + Unpin + Send,
{
    if body.len() > max_bytes {
        return Err(invalid_data(format!(
            "frame of {} bytes exceeds the limit of {max_bytes} bytes",
            body.len()
        )));
    }
    let length = u32::try_from(body.len())
        .map_err(|_| invalid_data(format!("frame of {} bytes is too long", body.len())))?;
    io.write_all(&length.to_be_bytes()).await?;
    io.write_all(body).await?;
    // The request-response handler closes the stream after this.
    io.flush().await
}

impl libp2p::request_response::Codec for SyncCodec {
    type Protocol = StreamProtocol;
    type Request = v1::BlocksRequest;
    type Response = Vec<Vec<u8>>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Self::Request>
    where
        T: AsyncRead + Unpin + Send,
    {
        let body = read_frame(io, REQUEST_BYTES_MAX).await?;
        v1::BlocksRequest::decode(body.as_slice())
            .map_err(|e| invalid_data(format!("blocks request: {e}")))
    }

    async fn read_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Self::Response>
    where
        T: AsyncRead + Unpin + Send,
    {
        let body = read_frame(io, RESPONSE_BYTES_MAX).await?;
        decode_response(&body)
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: Self::Request,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &request.encode_to_vec(), REQUEST_BYTES_MAX).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: Self::Response,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &encode_response(&response)?, RESPONSE_BYTES_MAX).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use futures::executor::block_on;
    use libp2p::request_response::Codec as _;

    fn frame(length: u32, body: &[u8]) -> Vec<u8> {
        let mut bytes = length.to_be_bytes().to_vec();
        bytes.extend_from_slice(body);
        bytes
    }

    #[test]
    fn response_round_trips_exact_block_bytes() {
        let blocks = vec![vec![1, 2, 3], Vec::new(), vec![7; 300]];
        let mut wire = Vec::new();
        block_on(SyncCodec.write_response(&SYNC_PROTOCOL, &mut wire, blocks.clone())).unwrap();
        let read = block_on(SyncCodec.read_response(&SYNC_PROTOCOL, &mut wire.as_slice())).unwrap();
        assert_eq!(read, blocks);
    }

    #[test]
    fn response_encoding_matches_prost() {
        let response = v1::BlocksResponse {
            blocks: vec![v1::CommittedBlock::default(), v1::CommittedBlock::default()],
        };
        let encoded: Vec<Vec<u8>> = response.blocks.iter().map(|b| b.encode_to_vec()).collect();
        assert_eq!(encode_response(&encoded).unwrap(), response.encode_to_vec());
        assert_eq!(decode_response(&response.encode_to_vec()).unwrap(), encoded);
    }

    #[test]
    fn oversize_response_is_refused_from_its_prefix() {
        // Announces one byte more than the cap and carries nothing: refused without reading.
        let wire = frame(RESPONSE_BYTES_MAX as u32 + 1, &[]);
        let error =
            block_on(SyncCodec.read_response(&SYNC_PROTOCOL, &mut wire.as_slice())).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(error.to_string().contains("exceeds the limit"), "{error}");

        let wire = frame(u32::MAX, &[]);
        let error =
            block_on(SyncCodec.read_response(&SYNC_PROTOCOL, &mut wire.as_slice())).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn oversize_response_is_not_written() {
        let blocks = vec![vec![0u8; RESPONSE_BYTES_MAX]];
        let mut wire = Vec::new();
        let error =
            block_on(SyncCodec.write_response(&SYNC_PROTOCOL, &mut wire, blocks)).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(wire.is_empty());
    }

    #[test]
    fn oversize_request_is_refused() {
        let wire = frame(REQUEST_BYTES_MAX as u32 + 1, &[0; REQUEST_BYTES_MAX + 1]);
        let error =
            block_on(SyncCodec.read_request(&SYNC_PROTOCOL, &mut wire.as_slice())).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn request_round_trips() {
        let request = v1::BlocksRequest {
            from_height: 42,
            max_blocks: 7,
            transaction_hashes: Vec::new(),
        };
        let mut wire = Vec::new();
        block_on(SyncCodec.write_request(&SYNC_PROTOCOL, &mut wire, request.clone())).unwrap();
        let read = block_on(SyncCodec.read_request(&SYNC_PROTOCOL, &mut wire.as_slice())).unwrap();
        assert_eq!(read, request);
    }

    #[test]
    fn a_request_for_a_whole_blocks_transactions_fits_and_round_trips() {
        let request = v1::BlocksRequest {
            from_height: 0,
            max_blocks: 0,
            transaction_hashes: vec![vec![0xab; 32]; limits::BLOCK_TRANSACTIONS_MAX],
        };
        let mut wire = Vec::new();
        block_on(SyncCodec.write_request(&SYNC_PROTOCOL, &mut wire, request.clone())).unwrap();
        assert!(wire.len() <= REQUEST_BYTES_MAX + LENGTH_PREFIX_BYTES);
        let read = block_on(SyncCodec.read_request(&SYNC_PROTOCOL, &mut wire.as_slice())).unwrap();
        assert_eq!(read, request);
    }

    #[test]
    fn truncated_frames_and_bad_fields_are_refused() {
        let wire = frame(10, &[1, 2, 3]);
        let error =
            block_on(SyncCodec.read_response(&SYNC_PROTOCOL, &mut wire.as_slice())).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);

        // Field 2, varint: not a field of BlocksResponse.
        assert!(decode_response(&[0x10, 0x01]).is_err());
        // Field 1 announcing 5 bytes with 1 left.
        assert!(decode_response(&[0x0a, 0x05, 0x00]).is_err());
    }
}
