//! Wire bytes → `ChatRequest` → the gateway's request and its checks: every step either
//! accepts or names what was wrong, and the mapping to a gRPC status never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use sluice_proto::v1 as pb;
use sluice_server::gateway::types::ChatInput;

fuzz_target!(|data: &[u8]| {
    let Ok(req) = pb::ChatRequest::decode(data) else {
        return;
    };
    match ChatInput::try_from(req) {
        Ok(input) => {
            if let Err(e) = sluice_server::gateway::validate(&input) {
                let status = tonic::Status::from(e);
                assert_eq!(status.code(), tonic::Code::InvalidArgument);
            }
        }
        Err(e) => {
            let status = tonic::Status::from(e);
            assert_eq!(status.code(), tonic::Code::InvalidArgument);
        }
    }
});
