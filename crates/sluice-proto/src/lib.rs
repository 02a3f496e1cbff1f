//! Code generated from `proto/sluice/v1` (tonic + prost); nothing else lives here.

#[allow(clippy::all, missing_debug_implementations)]
pub mod v1 {
    tonic::include_proto!("sluice.v1");
}

/// Encoded `FileDescriptorSet` of the API, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/sluice_descriptor.bin"));
