//! raft-core writes conf changes into entries with a hand-written protobuf
//! encoder; it must agree with `raft.proto` as compiled by prost, both ways.

use bytes::Bytes;
use proptest::prelude::*;
use raft_core::{
    ConfChange, ConfChangeKind, ConfChangeSingle, ConfChangeTransition, ConfChangeV2, NodeId,
};

fn kind() -> impl Strategy<Value = ConfChangeKind> {
    prop_oneof![
        Just(ConfChangeKind::AddNode),
        Just(ConfChangeKind::RemoveNode),
        Just(ConfChangeKind::AddLearnerNode),
        Just(ConfChangeKind::AddWitness),
    ]
}

fn node() -> impl Strategy<Value = NodeId> {
    prop_oneof![
        1u64..10,
        Just(u64::MAX),
        any::<u64>().prop_map(|v| v.max(1))
    ]
    .prop_map(|v| NodeId::new(v).expect("non-zero"))
}

fn context() -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..20).prop_map(Bytes::from)
}

fn v2() -> impl Strategy<Value = ConfChangeV2> {
    let transition = prop_oneof![
        Just(ConfChangeTransition::Auto),
        Just(ConfChangeTransition::JointImplicit),
        Just(ConfChangeTransition::JointExplicit),
    ];
    let change = (kind(), node()).prop_map(|(kind, node_id)| ConfChangeSingle { kind, node_id });
    (
        transition,
        proptest::collection::vec(change, 0..5),
        context(),
    )
        .prop_map(|(transition, changes, context)| ConfChangeV2 {
            transition,
            changes,
            context,
        })
}

proptest! {
    #[test]
    fn core_v1_encoding_matches_prost(kind in kind(), node_id in node(), context in context()) {
        let cc = ConfChange { kind, node_id, context };
        let core_bytes = cc.encode();
        prop_assert_eq!(raft_proto::encode_conf_change(&cc), core_bytes.clone());
        prop_assert_eq!(raft_proto::decode_conf_change(&core_bytes).expect("prost decodes"), cc.clone());
        prop_assert_eq!(ConfChange::decode(&raft_proto::encode_conf_change(&cc)).expect("core decodes"), cc);
    }

    #[test]
    fn core_v2_encoding_matches_prost(cc in v2()) {
        let core_bytes = cc.encode();
        prop_assert_eq!(raft_proto::encode_conf_change_v2(&cc), core_bytes.clone());
        prop_assert_eq!(raft_proto::decode_conf_change_v2(&core_bytes).expect("prost decodes"), cc.clone());
        prop_assert_eq!(ConfChangeV2::decode(&raft_proto::encode_conf_change_v2(&cc)).expect("core decodes"), cc);
    }
}
